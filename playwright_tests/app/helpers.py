"""Drive the starter app's page (``durably-web new``) the way a user does, and read it."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import Error as PlaywrightError

from playwright_tests.demo.helpers import BOOT_TIMEOUT_MS

__all__ = ["StarterPage"]


class StarterPage:
    """The starter app in one tab: its engine status, runs, and offline summary."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[str] = []
        page.on("console", lambda message: self.console.append(message.text))
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

    def goto(self, url: str) -> StarterPage:
        """Open the app and wait until its engine is ready."""
        self.page.goto(url)
        return self.wait_ready()

    def reload(self) -> StarterPage:
        """Reload and wait until the engine is ready (across a reload the page does itself)."""
        self.page.reload()
        return self.wait_ready()

    def wait_ready(self) -> StarterPage:
        """Wait for ``#status[data-status=ready]`` and the stored runs listed (the button is
        enabled then), riding out navigations on the way."""
        self.until(
            "document.getElementById('status')?.dataset.status === 'ready'"
            " && !document.getElementById('run').disabled"
        )
        return self

    def until(self, expression: str, timeout_ms: float = BOOT_TIMEOUT_MS) -> Any:
        """Wait until ``expression`` is truthy in the page, even if the page reloads meanwhile."""
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            try:
                left = max(1.0, (deadline - time.monotonic()) * 1000)
                return self.page.wait_for_function(expression, timeout=left).json_value()
            except PlaywrightError as exc:  # a navigation destroyed the page's context: retry
                if "context was destroyed" not in str(exc) and "navigat" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise
                self.page.wait_for_load_state()

    def run_ids(self) -> list[str]:
        """The runs listed, newest first."""
        ids = self.page.eval_on_selector_all("#runs li", "items => items.map(i => i.dataset.runId)")
        return [str(i) for i in ids]

    def completed_ids(self) -> list[str]:
        """The completed runs listed, newest first."""
        ids = self.page.eval_on_selector_all(
            '#runs li[data-status="completed"]', "items => items.map(i => i.dataset.runId)"
        )
        return [str(i) for i in ids]

    def count_primes(self, limit: int) -> str:
        """Type ``limit``, press the button; return the id of the run that appears."""
        before = set(self.run_ids())
        self.page.fill("#limit", str(limit))
        self.page.click("#run")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            new = [run_id for run_id in self.run_ids() if run_id not in before]
            if new:
                return new[0]
            self.page.wait_for_timeout(50)
        error = self.page.text_content("#error")
        raise AssertionError(f"no run appeared; the page says {error!r}")

    def wait_completed(self, run_id: str, timeout_ms: float = 120_000) -> dict[str, Any]:
        """Wait until the run shows ``completed``; return what its item shows."""
        selector = f'#runs li[data-run-id="{run_id}"][data-status="completed"]'
        self.page.wait_for_selector(selector, timeout=timeout_ms)
        return self.run(run_id)

    def run(self, run_id: str) -> dict[str, Any]:
        """What the run's item shows: status, progress bar, text."""
        shown = self.page.eval_on_selector(
            f'#runs li[data-run-id="{run_id}"]',
            """item => ({
                status: item.dataset.status,
                max: item.querySelector('progress').max,
                value: item.querySelector('progress').value,
                text: item.querySelector('.run-text').textContent,
            })""",
        )
        return dict(shown)

    def offline(self) -> dict[str, Any]:
        """``offline.mjs``'s state (``window.durablyOffline.state``)."""
        return dict(self.page.evaluate("window.durablyOffline?.state ?? {}"))

    def wait_offline(self, key: str, value: str) -> dict[str, Any]:
        """Wait until the offline state's ``key`` is ``value``; return the state."""
        self.until(f"window.durablyOffline?.state?.{key} === {value!r}")
        return self.offline()

    def caches(self) -> list[str]:
        """The service worker's Cache Storage names (``durably-site-<build>``), sorted.

        The engine worker's cache of memory snapshots (``durably-snapshots``) is not the
        service worker's: left out.
        """
        names = self.page.evaluate("caches.keys()")
        return sorted(name for name in names if name.startswith("durably-site-"))
