"""The runs dashboard (/_durably/dashboard/ of every built site), as a user drives it.

Worker mode (the live test page's jobs and database, ``?jobs=`` and ``?db=``) under
MicroPython and Pyodide, and server mode (``?server=``, ``durably-web serve-api --static``):

- the runs list shows the stored runs, pages over them, filters by job, status and labels,
  and follows runs live;
- a run's page shows its input, progress, output or error, its steps as a table and an SVG
  timeline, and its logs; cancel (confirmed), retry, run again and delete (confirmed);
- stored times are shown in the browser's time zone (the context's, Asia/Tokyo here).
"""

from __future__ import annotations

import json
import urllib.error
from typing import Any

import pytest

from playwright_tests.demo.helpers import BOOT_TIMEOUT_MS, ApiServer, Browser, Server, fresh_db
from playwright_tests.demo.test_live_views import INTERPRETERS, LivePage

DASHBOARD = "/_durably/dashboard/"


class Dashboard:
    """The dashboard in one tab."""

    def __init__(self, page: Any, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.console: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda message: self.console.append(message.text))
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

        def answer(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.accept()

        page.on("dialog", answer)

    def open(self, fragment: str = "", **params: str) -> Dashboard:
        query = "&".join(f"{key}={value}" for key, value in params.items())
        self.page.goto(f"{self.origin}{DASHBOARD}?{query}{fragment}")
        try:
            self.page.wait_for_selector("body[data-app=ready]", timeout=BOOT_TIMEOUT_MS)
        except Exception as exc:
            raise AssertionError(f"dashboard never ready; console: {self.console[-20:]}") from exc
        return self

    def wait(self, script: str, arg: Any = None, timeout: float = 60_000) -> None:
        try:
            self.page.wait_for_function(script, arg=arg, timeout=timeout)
        except Exception as exc:
            raise AssertionError(
                f"{script} never held; console: {self.console[-20:]}; "
                f"state: {self.page.evaluate('window.__dashboard')}"
            ) from exc

    def rows(self) -> list[dict[str, str]]:
        return list(
            self.page.eval_on_selector_all(
                "#runs tr",
                "rows => rows.map(r => ({id: r.dataset.runId, status: r.dataset.status,"
                " job: r.querySelector('td.job').textContent,"
                " created: r.querySelector('td.created').textContent}))",
            )
        )

    def wait_rows(self, count: int, status: str | None = None) -> list[dict[str, str]]:
        self.wait(
            "([count, status]) => { const rows = [...document.querySelectorAll('#runs tr')];"
            " return window.__dashboard && !window.__dashboard.loading && rows.length === count"
            " && (!status || rows.every(r => r.dataset.status === status)); }",
            [count, status],
        )
        return self.rows()

    def run_status(self, *statuses: str) -> None:
        self.wait(
            "wanted => wanted.includes(document.getElementById('run-status').dataset.status)",
            list(statuses),
        )

    def text(self, selector: str) -> str:
        return str(self.page.inner_text(selector))


def local_time(page: Any, iso: str) -> str:
    """What the browser shows for a stored time: its local date and time."""
    return str(page.evaluate("iso => new Date(iso).toLocaleString()", iso))


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_the_dashboard_against_a_server(
    live_api_server: ApiServer, browser: Browser, interpreter: dict[str, str]
) -> None:
    api = live_api_server
    slow = {"jobName": "slow"}
    failing = api.call(
        "POST", "/trigger", {**slow, "input": {"steps": 3, "delay_ms": 50, "fail_at": 1}}
    )["runId"]
    labelled = api.call(
        "POST", "/trigger", {**slow, "input": {"steps": 2, "delay_ms": 0}, "labels": {"team": "a"}}
    )["runId"]
    context = browser.open(timezone_id="Asia/Tokyo")
    board = Dashboard(context.new_page(), api.url).open(server=api.api, **interpreter)
    assert board.text("#engine") == "server"
    rows = board.wait_rows(2)
    assert {row["id"] for row in rows} == {failing, labelled}
    stored = api.call("GET", f"/run?runId={labelled}")
    shown = next(row for row in rows if row["id"] == labelled)["created"]
    assert shown == local_time(board.page, stored["createdAt"])
    assert "+09" not in shown and shown.startswith(local_time(board.page, stored["createdAt"])[:4])

    # Filters: labels (a bad one is named), status, job.
    board.page.fill("#filter-labels", "team")
    board.page.dispatch_event("#filter-labels", "change")
    board.wait("document.getElementById('filter-error').textContent.includes('team')")
    board.page.fill("#filter-labels", "team=a")
    board.page.dispatch_event("#filter-labels", "change")
    assert [row["id"] for row in board.wait_rows(1)] == [labelled]
    board.page.fill("#filter-labels", "")
    board.page.dispatch_event("#filter-labels", "change")
    board.page.select_option("#filter-status", "failed")
    assert [row["id"] for row in board.wait_rows(1, "failed")] == [failing]
    assert "failed: step 1 failed once" in board.text(
        f'#runs tr[data-run-id="{failing}"] td.status'
    )
    board.page.select_option("#filter-status", "")
    board.page.select_option("#filter-job", "slow")
    board.wait_rows(2)

    # The failed run's page: input, error, steps (table and timeline), logs; retry it.
    board.page.click(f'#runs tr[data-run-id="{failing}"] td.run a')
    board.run_status("failed")
    assert json.loads(board.text("#run-input")) == {"steps": 3, "delay_ms": 50, "fail_at": 1}
    assert "step 1 failed once" in board.text("#run-error")
    assert board.page.is_visible("#run-error-box") and not board.page.is_visible("#run-output-box")
    board.wait("document.querySelectorAll('#steps tr').length === 2")
    steps = board.page.eval_on_selector_all(
        "#steps tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert [step[1:3] for step in steps] == [["s0", "completed"], ["s1", "failed"]]
    assert board.page.eval_on_selector_all(
        "#timeline g", "gs => gs.map(g => [g.dataset.step, g.dataset.status])"
    ) == [["s0", "completed"], ["s1", "failed"]]
    assert board.page.is_disabled("#run-cancel") and not board.page.is_disabled("#run-retry")
    board.page.click("#run-retry")
    board.run_status("completed")
    # preserve_steps=False (the default): the engine drops a completed run's steps and logs;
    # the page keeps those it read and says so.
    board.wait("!document.getElementById('steps-dropped').hidden")
    assert len(board.page.query_selector_all("#timeline g")) >= 2
    assert json.loads(board.text("#run-output")) == {"counted": 3}
    assert board.text("#run-status") == "completed"
    assert board.text("#run-completed-at") != ""

    # Run again: a new run; cancel it (confirmed) on its page; delete it (confirmed).
    api.call("POST", "/trigger", {**slow, "input": {"steps": 400, "delay_ms": 100}})
    board.page.click("text=All runs")
    board.wait_rows(3)
    running = board.rows()[0]["id"]
    board.page.click(f'#runs tr[data-run-id="{running}"] td.run a')
    board.run_status("leased")
    board.wait("Number(document.getElementById('run-progress').dataset.current) >= 2")
    board.page.click("#run-cancel")
    board.run_status("cancelled")
    assert board.dialogs[-1].startswith("Cancel this run?")
    board.page.click("#run-retrigger")
    board.page.click("text=All runs")
    board.wait_rows(4)
    board.page.click(f'#runs tr[data-run-id="{running}"] td.run a')
    board.run_status("cancelled")
    board.page.click("#run-delete_run")
    board.wait("!location.hash.startsWith('#run=')")
    assert board.dialogs[-1].startswith("Delete this run with its steps")
    ids = [row["id"] for row in board.wait_rows(3)]
    assert running not in ids and failing in ids
    with pytest.raises(urllib.error.HTTPError, match="404"):
        api.call("GET", f"/run?runId={running}")
    assert not [line for line in board.console if "pageerror" in line or "Traceback" in line]


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_the_dashboard_in_worker_mode(
    server: Server, browser: Browser, interpreter: dict[str, str]
) -> None:
    # Runs made by an app's page (the live test page), then the dashboard on the same database.
    db = fresh_db()
    context = browser.open()
    app = LivePage(context.new_page(), server.url).open(db=db, **interpreter)
    failing = app.trigger(steps=3, delay_ms=50, fail_at=1)
    app.wait("s.job.status === 'failed'")
    app.page.fill("#batch-count", "25")
    app.page.click("#batch")
    app.wait(
        "s.batch.length === 25 && s.runs.statuses.every(s => s === 'completed' || s === 'failed')"
    )
    batch = app.state()["batch"]
    app.page.close()  # the app's tab (and its engine) goes: the dashboard's engine takes over

    board = Dashboard(context.new_page(), server.url).open(
        jobs="../../live/jobs.py", db=db, **interpreter
    )
    assert board.text("#engine") == "this tab's worker"
    rows = board.wait_rows(20)
    assert {row["job"] for row in rows} == {"slow"} and failing not in [r["id"] for r in rows]
    assert board.text("#page") == "page 1" and board.page.is_disabled("#newer")
    board.page.click("#older")
    assert board.wait_rows(6)[-1]["id"] == failing and board.page.is_disabled("#older")
    board.page.click("#newer")
    board.wait_rows(20)
    board.page.select_option("#filter-status", "failed")
    assert [row["id"] for row in board.wait_rows(1, "failed")] == [failing]

    # Its page; retry it here (this worker's job passes); the list follows live.
    board.page.click(f'#runs tr[data-run-id="{failing}"] td.run a')
    board.run_status("failed")
    board.wait("document.querySelectorAll('#steps tr').length === 2")
    board.wait("document.querySelectorAll('#run-logs li').length === 1")  # s0's stored line
    failed_at = board.text("#run-completed-at")
    board.page.click("#run-retry")  # step 1 fails once in each worker: in this one too
    board.wait(
        "before => document.getElementById('run-completed-at').textContent !== before"
        " && document.getElementById('run-status').dataset.status === 'failed'",
        failed_at,
    )
    board.page.click("#run-retry")
    board.run_status("completed")
    assert json.loads(board.text("#run-output")) == {"counted": 3}
    board.page.click("#run-retrigger")
    board.page.go_back()  # the list, as the browser's Back button shows it
    board.page.select_option("#filter-status", "")
    rows = board.wait_rows(20)
    again = rows[0]["id"]  # the new run, on top
    assert again != failing and again not in batch
    # Same input: its step 1 fails once; the list shows it live, without a refresh.
    board.wait(
        f"document.querySelector('#runs tr[data-run-id=\"{again}\"]').dataset.status === 'failed'"
    )
    board.page.click(f'#runs tr[data-run-id="{again}"] button[data-action="delete_run"]')
    board.wait(f"!document.querySelector('#runs tr[data-run-id=\"{again}\"]')")
    assert board.dialogs[-1].startswith("Delete this run with its steps")
    assert not [line for line in board.console if "pageerror" in line or "Traceback" in line]


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_the_dashboard_in_a_follower_tab(
    server: Server, browser: Browser, interpreter: dict[str, str]
) -> None:
    # The app's tab runs the engine; the dashboard, opened beside it, forwards to it.
    db = fresh_db()
    context = browser.open()
    app = LivePage(context.new_page(), server.url).open(db=db, **interpreter)
    done = app.trigger(steps=2, delay_ms=0)
    app.wait("s.job.status === 'completed'")
    board = Dashboard(context.new_page(), server.url).open(
        jobs="../../live/jobs.py", db=db, **interpreter
    )
    assert board.text("#engine") == "another tab's worker"
    assert [row["id"] for row in board.wait_rows(1, "completed")] == [done]

    app.page.bring_to_front()
    running = app.trigger(steps=300, delay_ms=100)  # in the app's tab: live in the dashboard
    board.page.bring_to_front()
    board.wait(
        'id => Number(document.querySelector(`#runs tr[data-run-id="${id}"]`)?.dataset.progress) >= 2',
        running,
    )
    board.page.click(f'#runs tr[data-run-id="{running}"] button[data-action="cancel"]')
    assert board.dialogs[-1].startswith("Cancel this run?")
    app.wait(f"s.job.run_id === {json.dumps(running)} && s.job.status === 'cancelled'")
    board.wait(
        "id => document.querySelector(`#runs tr[data-run-id=\"${id}\"]`).dataset.status === 'cancelled'",
        running,
    )
    assert not [line for line in board.console if "pageerror" in line or "Traceback" in line]
