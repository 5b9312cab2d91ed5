"""The self-check pages (pages/check, at /check/): the whole client API, in every page runtime.

``client.html`` exercises every method of ``durably_web.client`` under MicroPython and under
Pyodide; ``client-js.html`` the lifecycle of the JS client (watchdog, restarts, a second
client following the first). Each page reports ``[name, ok, detail]`` rows in ``window.__check``.
"""

from __future__ import annotations

import pytest

from playwright_tests.demo.helpers import Browser, Demo, Server, fresh_db


@pytest.mark.parametrize(
    ("path", "interpreter"),
    [
        ("check/client.html", "micropython"),
        ("check/client.html?py=1", "cpython"),
        ("check/client-js.html", "js"),
    ],
)
def test_client_self_check(server: Server, browser: Browser, path: str, interpreter: str) -> None:
    page = browser.open().new_page()
    page.goto(f"{server.url}/{path}")
    page.wait_for_function("window.__check && window.__check.done", timeout=180_000)
    report = page.evaluate("window.__check")
    assert report["interpreter"] == interpreter
    failed = [row for row in report["results"] if not row[1]]
    assert not failed, failed
    assert len(report["results"]) >= 14


def test_client_self_check_in_a_follower_tab(server: Server, browser: Browser) -> None:
    """Every method of the Python client, in a tab that forwards through another tab's engine."""
    context = browser.open()
    db = fresh_db()
    leader = Demo(context.new_page()).goto(server.demo(db))  # the demo's jobs are /jobs.py too
    assert leader.wait_status("ready", "failed") == "ready"
    page = context.new_page()
    workers: list[str] = []
    page.on("worker", lambda worker: workers.append(worker.url))
    page.goto(f"{server.url}/check/client.html?db={db}&role=follower")
    page.wait_for_function("window.__check && window.__check.done", timeout=180_000)
    report = page.evaluate("window.__check")
    failed = [row for row in report["results"] if not row[1]]
    assert not failed, failed
    assert len(report["results"]) >= 14
    assert workers == [], "the follower ran no engine of its own"
    assert leader.state()["status"] == "ready"
