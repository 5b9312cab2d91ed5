"""The engine's Store contract and semantics tests in Chromium: Pyodide, databases on OPFS.

The same runner as ``tests/pyodide/test_in_pyodide.py`` (Node, in-memory sqlite-wasm), but
in a real browser worker (``pages/tests/runner.html`` + ``runner-worker.mjs``): the opfs-sahpool
VFS, the vendored Pyodide and durably-web wheel of ``durably-web build``, one fresh OPFS
database per test (deleted after it), with two backends (``BACKENDS`` in
``tests/pyodide/runner.py``):

- ``opfs``: one connection, the browser engine's own pragmas (WAL, exclusive locking);
- ``opfs-full``: a new connection per ``connect()``, DELETE journal, synchronous FULL.

Served by ``durably_web.sitebuild``'s server on 127.0.0.1 (the built site with the test
pages, :mod:`playwright_tests.site`); Debian's Chromium through Playwright with a fresh
profile. Every request is recorded, the worker's too: one to any other host fails the test.

    .venv/bin/pytest playwright_tests/test_pyodide_opfs.py -s
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.pyodide import assets

from playwright_tests.browser import CHROMIUM, foreign, launch_options
from playwright_tests.site import serve_site, staged_site

pytestmark = pytest.mark.browser

BACKENDS = ["opfs", "opfs-full"]
# Two OPFS backends x (contract + integration) + unit tests: ~250 pass.
MIN_PASSED = 200
RUN_TIMEOUT_MS = 300_000


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """The built site with the test pages and the staged test assets, on 127.0.0.1."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"the browser tests need Debian's Chromium at {CHROMIUM}: apt-get install chromium"
        )
    with staged_site() as site:
        assets.stage_browser_assets(site / "tests" / "assets", wheels=assets.ensure_test_wheels())
        with serve_site(site) as url:
            yield url


def format_failures(summary: dict[str, Any]) -> str:
    """Every failure with its traceback, for the assertion message."""
    return "\n\n".join(
        f"FAILED {f['name']} ({f['phase']}): {f['error']}\n{f['traceback']}"
        for f in summary["failed"]
    )


def test_suite_passes_on_pyodide_in_chromium_on_opfs(base_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    console: list[str] = []
    started = time.monotonic()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), **launch_options()
        )
        try:
            # Context-wide (the worker's fetches too); a lambda, not list.append (a builtin
            # cannot carry Playwright's wrapper attribute).
            context.on("request", lambda request: requests.append(request.url))
            page = context.pages[0] if context.pages else context.new_page()
            page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            page.goto(f"{base_url}/tests/runner.html?backends={','.join(BACKENDS)}")
            try:
                page.wait_for_function(
                    "window.__pyodideTests && window.__pyodideTests.status !== 'running'",
                    timeout=RUN_TIMEOUT_MS,
                )
            except Exception as exc:  # noqa: BLE001 - say which test hung, then fail
                state = page.evaluate("window.__pyodideTests")
                pytest.fail(
                    f"the run did not finish: {exc}\nstate: {state}\n" + "\n".join(console[-20:])
                )
            state = page.evaluate("window.__pyodideTests")
        finally:
            context.close()
    seconds = time.monotonic() - started

    assert not foreign(requests), f"requests left 127.0.0.1: {foreign(requests)}"
    assert state["status"] == "done", f"{state['error']}\n" + "\n".join(console[-20:])
    summary = state["summary"]
    counts = summary["counts"]
    print(
        f"chromium/OPFS: {counts} in {seconds:.1f} s (page to summary; worker stages in ms: "
        f"{state['stages']}, {len(requests)} requests)"
    )
    for skipped in summary["skipped"]:
        print(f"skipped {skipped['name']}: {skipped['reason']}")
    assert not summary["failed"], format_failures(summary)
    assert counts["passed"] >= MIN_PASSED, f"only {counts['passed']} tests passed: {counts}"
    assert summary["python"].startswith("3.14"), summary["python"]
    assert summary["backends"] == BACKENDS
    assert summary["journal_modes"] == {"opfs": "wal", "opfs-full": "delete"}
    assert state["poolFiles"] == [], f"test databases left in the OPFS pool: {state['poolFiles']}"
