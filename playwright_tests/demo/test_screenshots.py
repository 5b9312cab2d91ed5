"""Screenshots of the runs dashboard and the demo for docs/screenshots/, desktop and phone.

Made against a server (``durably-web serve-api`` of the demo's jobs) holding runs in every
state a user meets: completed, failed, cancelled and one still running. Each screenshot is
checked for what it must show before it is written, so a broken page fails the test instead
of landing in the docs. They are written to ``docs/screenshots/`` when
``DURABLY_UPDATE_SCREENSHOTS=1`` is set (so a plain test run leaves the checkout clean), else to
the test's temporary directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from playwright_tests.demo.helpers import ApiServer, Browser, Demo
from playwright_tests.demo.test_dashboard import Dashboard

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORTS = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}
IMPORT = "import-csv"


def seed(api: ApiServer) -> dict[str, str]:
    """Runs in each state; return their ids by what they show."""

    def trigger(payload: dict[str, Any], labels: dict[str, str] | None = None) -> str:
        body: dict[str, Any] = {"jobName": IMPORT, "input": payload}
        if labels:
            body["labels"] = labels
        return str(api.call("POST", "/trigger", body)["runId"])

    ids = {
        "failed": trigger(
            {"filename": "march.csv", "rows": 600, "batch_size": 200, "fail_at_batch": 2}
        ),
        "done": trigger(
            {"filename": "orders.csv", "rows": 1200, "batch_size": 200, "delay_ms": 60}
        ),
        "cancelled": trigger(
            {"filename": "big.csv", "rows": 5000, "batch_size": 100, "delay_ms": 400}
        ),
    }
    for _ in range(100):  # the cancelled one: once it has started
        run = api.call("GET", f"/run?runId={ids['cancelled']}")
        if run["status"] == "leased" and run.get("progress"):
            break
        api.call("GET", "/runs")  # (a cheap request while we wait)
    api.call("POST", f"/cancel?runId={ids['cancelled']}")
    ids["running"] = trigger(
        {"filename": "customers.csv", "rows": 100_000, "batch_size": 100, "delay_ms": 300},
        {"team": "sales"},
    )
    return ids


def shoot(page: Any, name: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)


def test_screenshots(api_server: ApiServer, browser: Browser, tmp_path: Path) -> None:
    out = DOCS if os.environ.get("DURABLY_UPDATE_SCREENSHOTS") == "1" else tmp_path
    ids = seed(api_server)
    for kind, viewport in VIEWPORTS.items():
        context = browser.open(f"profile-{kind}", viewport=viewport, timezone_id="Europe/Berlin")
        board = Dashboard(context.new_page(), api_server.url).open(server=api_server.api)
        board.wait_rows(4)
        board.wait(
            'id => Number(document.querySelector(`#runs tr[data-run-id="${id}"]`).dataset.progress) >= 200',
            ids["running"],
        )
        statuses = {row["id"]: row["status"] for row in board.rows()}
        assert statuses[ids["failed"]] == "failed" and statuses[ids["cancelled"]] == "cancelled"
        shoot(board.page, f"dashboard-runs-{kind}", out)

        board.page.click(f'#runs tr[data-run-id="{ids["running"]}"] td.run a')
        board.run_status("leased")
        board.wait("document.querySelectorAll('#timeline g').length >= 3")
        board.wait("document.querySelectorAll('#run-logs li').length >= 2")
        shoot(board.page, f"dashboard-run-{kind}", out)

        board.page.evaluate(f"location.hash = 'run={ids['failed']}'")
        board.run_status("failed")
        board.wait("document.querySelectorAll('#timeline g').length >= 3")
        shoot(board.page, f"dashboard-failed-run-{kind}", out)

        demo = Demo(context.new_page()).goto(api_server.demo())
        demo.wait_status("ready")
        demo.page.wait_for_function("document.querySelectorAll('#runs tr').length >= 4")
        shoot(demo.page, f"demo-{kind}", out)
        browser.close(context)
    written = sorted(path.name for path in DOCS.glob("*.png"))
    for kind in VIEWPORTS:
        for page in ("dashboard-runs", "dashboard-run", "dashboard-failed-run", "demo"):
            assert f"{page}-{kind}.png" in written
