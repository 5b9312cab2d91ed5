"""Drive the demo page (the built site's index.html) the way a user does, and read what it shows."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright_tests.browser import is_local, launch_options

BOOT_TIMEOUT_MS = 90_000  # a cold engine boot takes ~3-8 s here; leave room for a busy CI


@dataclass(frozen=True)
class Server:
    """A running server of the demo's built site (with the test pages)."""

    url: str

    def demo(self, db: str, **params: str) -> str:
        """The demo page's URL for database ``db``."""
        query = "&".join(f"{key}={value}" for key, value in {"db": db, **params}.items())
        return f"{self.url}/?{query}"


@dataclass(frozen=True)
class ApiServer:
    """``durably-web serve-api SITE/jobs.py --static SITE``: the demo's files and its jobs' API."""

    url: str
    api: str
    log: Path

    def demo(self, **params: str) -> str:
        """The demo page's URL in server mode."""
        query = "&".join(f"{key}={value}" for key, value in {"server": self.api, **params}.items())
        return f"{self.url}/?{query}"

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """Call the API directly (not through the page); return the JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{self.api}{path}",
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())


def fresh_db() -> str:
    """A database name no other test uses."""
    return "t" + uuid.uuid4().hex[:10]


@dataclass
class Browser:
    """Persistent Chromium contexts, each on a profile directory, every request recorded."""

    playwright: Any
    executable: Path
    tmp: Path
    requests: list[str] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)
    server_prefixes: tuple[str, ...] = ("http://127.0.0.1:",)

    def open(self, profile: str = "profile", **options: Any) -> Any:
        """Open (or reopen) the context of profile ``profile`` (``options``: Playwright's
        context options, such as ``timezone_id`` or ``viewport``)."""
        context = self.playwright.chromium.launch_persistent_context(
            str(self.tmp / profile), **{**launch_options(self.executable), **options}
        )
        # A lambda: a bound builtin like list.append cannot carry Playwright's wrapper.
        context.on("request", lambda request: self.requests.append(request.url))
        self.contexts.append(context)
        return context

    def close(self, context: Any) -> None:
        """Close one context (its profile stays on disk for a reopen)."""
        context.close()
        self.contexts.remove(context)

    def close_all(self) -> None:
        """Close every context still open."""
        for context in list(self.contexts):
            self.close(context)

    def is_local(self, url: str) -> bool:
        """Tell whether a request stayed on this machine (data: and blob: never leave it)."""
        return is_local(url, self.server_prefixes)


class Demo:
    """The demo page in one tab."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[str] = []
        page.on("console", lambda message: self.console.append(message.text))
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))
        page.on("dialog", lambda dialog: dialog.accept())  # "Delete this import ...?"

    def goto(self, url: str) -> Demo:
        """Navigate and wait until the page's Python runs (the UI is usable)."""
        self.page.goto(url)
        self.page.wait_for_function("document.body.dataset.app === 'running'", timeout=60_000)
        return self

    def state(self) -> dict[str, Any]:
        """What the page mirrors into ``window.__demo``."""
        return dict(self.page.evaluate("window.__demo || {}"))

    def wait_status(self, *statuses: str, timeout: float = BOOT_TIMEOUT_MS) -> str:
        """Wait until the engine status is one of ``statuses``; return it."""
        self.page.wait_for_function(
            "wanted => wanted.includes(document.getElementById('status').dataset.status)",
            arg=list(statuses),
            timeout=timeout,
        )
        return str(self.page.get_attribute("#status", "data-status"))

    def run_ids(self) -> list[str]:
        """The runs listed, newest first."""
        ids = self.page.eval_on_selector_all("#runs tr", "rows => rows.map(r => r.dataset.runId)")
        return [str(i) for i in ids]

    def start_import(
        self, rows: int, batch: int = 100, delay_ms: int = 0, *, fail: bool = False
    ) -> str:
        """Fill the form, click Import, return the id of the run that appears."""
        before = set(self.run_ids())
        self.page.fill("#rows", str(rows))
        self.page.fill("#batch", str(batch))
        self.page.fill("#delay", str(delay_ms))
        self.page.set_checked("#fail", fail)
        self.page.click("#import")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            new = [run_id for run_id in self.run_ids() if run_id not in before]
            if new:
                return new[0]
            self.page.wait_for_timeout(50)
        raise AssertionError(f"no run appeared; form error: {self.form_error()!r}")

    def cancel_running_import(self, rows: int = 2000) -> str:
        """Start a slow import, cancel it after its first batch; return its id.

        Checks that the run stays cancelled, short of ``rows``, a second later.
        """
        run_id = self.start_import(rows=rows, batch=100, delay_ms=200)
        self.wait_progress(run_id, 100)
        self.click(run_id, "cancel")
        self.wait_run(run_id, "cancelled")
        self.page.wait_for_timeout(1000)
        assert self.run_status(run_id) == "cancelled"
        assert self.progress(run_id) < rows
        return run_id

    def form_error(self) -> str:
        """The form's error text, or "" when it shows none."""
        if self.page.is_hidden("#form-error"):
            return ""
        return str(self.page.text_content("#form-error"))

    def field_error(self, field: str) -> str:
        """The message next to a form field (``rows``, ``batch``, ``file``, ...), or ""."""
        return str(self.page.text_content(f"#{field}-error") or "")

    def row(self, run_id: str) -> Any:
        """The run's table row."""
        return self.page.locator(f'#runs tr[data-run-id="{run_id}"]')

    def run_status(self, run_id: str) -> str:
        """The status the row shows."""
        return str(self.row(run_id).get_attribute("data-status"))

    def progress(self, run_id: str) -> int:
        """The rows imported so far, as the row shows."""
        return int(self.row(run_id).get_attribute("data-progress") or 0)

    def wait_run(self, run_id: str, status: str, timeout: float = 120_000) -> None:
        """Wait until the run's row shows ``status``."""
        self.page.wait_for_selector(
            f'#runs tr[data-run-id="{run_id}"][data-status="{status}"]', timeout=timeout
        )

    def wait_progress(self, run_id: str, at_least: int, timeout: float = 60_000) -> None:
        """Wait until the row shows at least ``at_least`` rows imported."""
        self.page.wait_for_function(
            """([id, n]) => {
                const row = document.querySelector(`#runs tr[data-run-id="${id}"]`);
                return row && Number(row.dataset.progress || 0) >= n;
            }""",
            arg=[run_id, at_least],
            timeout=timeout,
        )

    def click(self, run_id: str, action: str) -> None:
        """Click the row's cancel / retry / delete / audit button."""
        self.row(run_id).locator(f"button.{action}").click()

    def audit(self, run_id: str) -> dict[str, Any]:
        """Click audit; return the ledger audit the page shows."""
        self.click(run_id, "audit")
        self.page.wait_for_selector(f'#runs tr[data-run-id="{run_id}"][data-audit]', timeout=60_000)
        return dict(json.loads(str(self.row(run_id).get_attribute("data-audit"))))
