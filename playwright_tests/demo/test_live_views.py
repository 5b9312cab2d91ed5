"""The live views (durably_web.client.live) on real pages, under MicroPython and Pyodide.

The test page ``/live/`` (``pages/live``) makes every view and binds every DOM helper; it
mirrors what the views hold into ``window.__live``. The shipped example (``/example/`` of a
built site, shown in docs/bindings.md) is run as a user would.

- a reload mid-run shows the run's stored progress (and stored log lines) within 300 ms of
  the engine being ready (job view: auto-resume; run view: from its stored state);
- the runs view pages over 120 runs, live;
- every action button, with the run view's callbacks along the way;
- follow-latest across a trigger from outside the page (server mode: another client) and
  across two tabs (worker mode: a leader and a follower tab; server mode).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from playwright_tests.demo.helpers import BOOT_TIMEOUT_MS, ApiServer, Browser, Server, fresh_db

INTERPRETERS = [pytest.param({}, id="mpy"), pytest.param({"py": "1"}, id="py")]
READY_TO_PROGRESS_MS = 300  # from the engine's ready status to the stored progress shown


class LivePage:
    """The live views' test page in one tab."""

    def __init__(self, page: Any, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.console: list[str] = []
        page.on("console", lambda message: self.console.append(message.text))
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

    def open(self, **params: str) -> LivePage:
        """Navigate to the page (a reload when already there) and wait for the views."""
        query = "&".join(f"{key}={value}" for key, value in params.items())
        self.page.goto(f"{self.origin}/live/?{query}")
        self.wait("s.job && s.runs", timeout=BOOT_TIMEOUT_MS)
        return self

    def state(self) -> dict[str, Any]:
        """What the views hold (``window.__live``)."""
        return dict(self.page.evaluate("window.__live"))

    def wait(self, predicate: str, timeout: float = 60_000) -> dict[str, Any]:
        """Wait until ``predicate`` (JS over ``s``, the views' state) holds; return the state."""
        script = f"() => {{ const s = window.__live; return Boolean(s && ({predicate})); }}"
        try:
            self.page.wait_for_function(script, timeout=timeout)
        except Exception as exc:
            state = self.page.evaluate("window.__live")
            raise AssertionError(
                f"{predicate} never held; state: {json.dumps(state)[:3000]}; console: "
                f"{self.console[-20:]}"
            ) from exc
        return self.state()

    def trigger(self, steps: int, delay_ms: int, fail_at: int | None = None) -> str:
        """Trigger the job from the form; return the id of the run the job view shows."""
        before = self.state()["job"]["run_id"]
        self.page.fill("#steps", str(steps))
        self.page.fill("#delay", str(delay_ms))
        self.page.fill("#fail-at", "" if fail_at is None else str(fail_at))
        self.page.click("#trigger")
        state = self.wait(f"s.job.run_id && s.job.run_id !== {json.dumps(before)}")
        return str(state["job"]["run_id"])

    def row(self, run_id: str, action: str | None = None) -> str:
        """The selector of a run's row in the runs table (or of one of its buttons)."""
        row = f'#runs tr[data-run-id="{run_id}"]'
        return row if action is None else f'{row} button[data-action="{action}"]'

    def row_status(self, run_id: str, *statuses: str) -> None:
        """Wait until the run's row shows one of ``statuses``."""
        self.page.wait_for_function(
            "([selector, wanted]) => wanted.includes(document.querySelector(selector)?.dataset.status)",
            arg=[self.row(run_id), list(statuses)],
            timeout=60_000,
        )

    def table_ids(self) -> list[str]:
        """The run ids of the table's rows, in order."""
        ids = self.page.eval_on_selector_all("#runs tr", "rows => rows.map(r => r.dataset.runId)")
        return [str(run_id) for run_id in ids]


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_a_reload_mid_run_shows_the_stored_progress_at_once(
    server: Server, browser: Browser, interpreter: dict[str, str]
) -> None:
    live = LivePage(browser.open().new_page(), server.url)
    db = fresh_db()
    live.open(db=db, **interpreter)
    run_id = live.trigger(steps=200, delay_ms=250)
    before = live.wait("s.job.progress && s.job.progress.current >= 4")["job"]
    shown, lines = before["progress"]["current"], before["logs"]
    live.page.wait_for_timeout(300)  # what was shown is stored by now (a flush within 50 ms)

    live.open(db=db, watch=run_id, **interpreter)  # pagehide ends the worker: a reload
    # The stored log lines come from their own read, answered apart from the run's.
    after = live.wait(
        f"s.first.job && s.first.watched && s.logs.length && s.job.logs.length >= {len(lines)}"
    )
    assert after["job"]["run_id"] == run_id  # auto-resume
    for name in ("job", "watched"):
        first = after["first"][name]
        assert first["current"] >= shown, (name, first, shown)
        took = first["at"] - after["ready_at"]
        assert took < READY_TO_PROGRESS_MS, (
            f"{name}: stored progress shown {took:.0f} ms after ready"
        )
    assert after["job"]["logs"][: len(lines)] == lines  # the stored lines, first, once each
    assert after["job"]["status"] == "leased" and after["watched"]["status"] == "leased"
    assert live.page.get_attribute("#job-status", "data-status") == "leased"
    assert live.page.inner_text("#job-status") == "running"
    assert int(str(live.page.get_attribute("#job-progress", "data-current"))) >= shown

    resumed = after["first"]["job"]["current"]
    state = live.wait(f"s.job.progress.current >= {resumed + 2} && s.logs.length === 3")
    job_lines = state["job"]["logs"]
    assert len(job_lines) == len(set(job_lines)), "a log line shown twice"
    assert state["logs"] == job_lines[-3:]  # the logs view keeps the newest 3 (max_logs)
    items = live.page.eval_on_selector_all("#logs li", "items => items.map(i => i.textContent)")
    assert items == [f"info [s{int(line.split()[1]) - 1}]: {line}" for line in state["logs"]]
    live.page.click("#clear-logs")
    live.wait("s.logs.length === 0")
    live.wait("s.logs.length === 1")  # the next live line
    assert not live.state()["errors"]


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_the_runs_view_pages_over_120_runs(
    server: Server, browser: Browser, interpreter: dict[str, str]
) -> None:
    live = LivePage(browser.open().new_page(), server.url)
    live.open(db=fresh_db(), page_size="25", **interpreter)
    live.page.click("#batch")
    live.wait("s.batch.length === 120 && s.runs.ids.length === 25 && s.runs.has_more")
    batch = live.state()["batch"]
    pages: list[list[str]] = []
    while True:
        runs = live.wait(f"s.runs.page === {len(pages)} && !s.runs.loading")["runs"]
        assert live.table_ids() == runs["ids"]
        pages.append(runs["ids"])
        if not runs["has_more"]:
            break
        live.page.click("#next")
    assert [len(ids) for ids in pages] == [25, 25, 25, 25, 20]
    shown = [run_id for ids in pages for run_id in ids]
    assert sorted(shown) == sorted(batch) and len(set(shown)) == 120
    live.page.click("#next")  # no older page: stays
    live.page.click("#prev")
    assert live.wait("s.runs.page === 3 && !s.runs.loading")["runs"]["ids"] == pages[3]
    live.page.fill("#goto-page", "1")
    live.page.click("#goto")
    assert live.wait("s.runs.page === 1 && !s.runs.loading")["runs"]["ids"] == pages[1]
    live.page.fill("#goto-page", "0")
    live.page.click("#goto")
    # Live: the quick runs complete in the background; the page shows it without a refresh.
    live.wait("s.runs.page === 0 && s.runs.statuses.every(status => status === 'completed')")
    for _ in range(50):  # the state leads; the table is redrawn from it a moment later
        if live.table_ids() == pages[0]:
            break
        live.page.wait_for_timeout(100)
    assert live.table_ids() == pages[0], (live.state()["runs"]["ids"], pages[0])
    live.page.select_option("#filter-status", "cancelled")
    assert live.wait("!s.runs.loading && s.runs.ids.length === 0")["runs"]["page"] == 0
    live.page.select_option("#filter-status", "completed")
    assert live.wait("!s.runs.loading && s.runs.ids.length === 25")["runs"]["ids"] == pages[0]
    assert not live.state()["errors"]


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_every_action_button(server: Server, browser: Browser, interpreter: dict[str, str]) -> None:
    live = LivePage(browser.open().new_page(), server.url)
    live.page.on("dialog", lambda dialog: dialog.accept())  # "Delete this run ...?"
    live.open(db=fresh_db(), **interpreter)

    # A run that fails once, watched by a run view: retry (in place) makes it complete.
    failing = live.trigger(steps=3, delay_ms=400, fail_at=1)
    live.page.fill("#watch-id", failing)
    live.page.click("#watch")
    live.row_status(failing, "failed")
    assert live.wait("s.callbacks.length === 2")["callbacks"] == ["start", "fail"]
    assert "step 1 failed once" in live.page.inner_text(live.row(failing) + " td.status")
    live.page.click(live.row(failing, "retry"))
    live.row_status(failing, "completed")
    callbacks = live.wait("s.callbacks.length === 4")["callbacks"]
    assert callbacks == ["start", "fail", "start", "complete"]
    assert live.state()["watched"]["output"] == {"counted": 3}

    # Cancel a running run, run it again (a new run), delete the cancelled one.
    running = live.trigger(steps=500, delay_ms=200)
    live.row_status(running, "leased")
    assert live.page.is_disabled(live.row(running, "delete_run"))
    live.page.click(live.row(running, "cancel"))
    live.row_status(running, "cancelled")
    assert live.wait("s.job.status === 'cancelled'")["job"]["run_id"] == running
    live.page.click(live.row(running, "retrigger"))
    again = live.wait(f"s.job.run_id !== {json.dumps(running)}")["job"]["run_id"]
    live.row_status(again, "pending", "leased")
    live.page.click(live.row(running, "delete_run"))
    live.page.wait_for_selector(live.row(running), state="detached")
    assert running not in live.table_ids() and failing in live.table_ids()

    # get_run and get_steps, through the actions view.
    live.page.fill("#act-id", failing)
    live.page.click("#act-get-run")
    live.page.wait_for_function(
        "document.getElementById('act-result').textContent.includes('completed')"
    )
    assert json.loads(live.page.inner_text("#act-result"))["id"] == failing
    live.wait("s.job.progress && s.job.progress.current >= 2")
    live.page.fill("#act-id", again)
    live.page.click("#act-get-steps")
    live.page.wait_for_function("document.getElementById('act-result').textContent.startsWith('[')")
    steps = json.loads(live.page.inner_text("#act-result"))
    assert [step["name"] for step in steps][:2] == ["s0", "s1"]

    # A refused action: the button shows why (deleting a run that still runs).
    live.page.click("#bind-delete")
    live.page.click("#act-delete")
    live.page.wait_for_function("document.getElementById('act-delete').dataset.error")
    error = str(live.page.get_attribute("#act-delete", "data-error"))
    assert again in error or "not finished" in error or "leased" in error, error
    assert not live.page.is_disabled("#act-delete")
    assert not live.state()["errors"]


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_the_job_view_follows_a_trigger_from_another_client(
    live_api_server: ApiServer, browser: Browser, interpreter: dict[str, str]
) -> None:
    live = LivePage(browser.open().new_page(), live_api_server.url)
    live.open(server=live_api_server.api, **interpreter)
    assert live.state()["job"]["run_id"] is None
    for _ in range(2):  # each trigger from outside the page: the job view switches to it
        answer = live_api_server.call(
            "POST", "/trigger", {"jobName": "slow", "input": {"steps": 50, "delay_ms": 100}}
        )
        run_id = answer["runId"]
        state = live.wait(
            f"s.job.run_id === {json.dumps(run_id)} && s.job.status === 'leased'"
            " && s.job.progress && s.job.progress.current >= 2"
        )
        assert run_id in state["runs"]["ids"]
        live_api_server.call("POST", f"/cancel?runId={run_id}")
        live.wait("s.job.status === 'cancelled' && s.runs.statuses[0] === 'cancelled'")
    assert not live.state()["errors"]


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_the_example_app(server: Server, browser: Browser, interpreter: dict[str, str]) -> None:
    page = browser.open().new_page()
    query = "&".join(f"{key}={value}" for key, value in interpreter.items())
    page.goto(f"{server.url}/example/?{query}")
    page.wait_for_function(
        "document.getElementById('page').textContent === 'page 1'", timeout=BOOT_TIMEOUT_MS
    )
    page.fill("#steps", "3")
    page.click("#start")
    page.wait_for_function(
        "document.getElementById('output').textContent === 'counted 3'", timeout=60_000
    )
    assert page.get_attribute("#status", "data-status") == "completed"
    assert page.get_attribute("#progress", "data-current") == "3"
    lines = page.eval_on_selector_all("#logs li", "items => items.map(i => i.textContent)")
    assert lines == [f"info [tick-{i}]: step {i + 1} done" for i in range(3)]
    assert page.eval_on_selector_all("#runs tr", "rows => rows.map(r => r.dataset.status)") == [
        "completed"
    ]
    # One page of runs: neither page button leads anywhere, so both are disabled.
    assert page.is_disabled("#newer") and page.is_disabled("#older")


@pytest.mark.parametrize("interpreter", INTERPRETERS)
@pytest.mark.parametrize("mode", ["worker", "server"])
def test_the_job_view_follows_a_trigger_from_another_tab(
    request: pytest.FixtureRequest, browser: Browser, interpreter: dict[str, str], mode: str
) -> None:
    # Two tabs of one database (worker mode: the second forwards to the first's engine) or of
    # one server: a run started in either tab is shown by the other's job view.
    if mode == "worker":
        server: Server | ApiServer = request.getfixturevalue("server")
        params = {"db": fresh_db(), **interpreter}
    else:
        api: ApiServer = request.getfixturevalue("live_api_server")
        server, params = api, {"server": api.api, **interpreter}
    context = browser.open()
    first = LivePage(context.new_page(), server.url).open(**params)
    second = LivePage(context.new_page(), server.url).open(**params)
    for starter, follower in ((first, second), (second, first)):
        starter.page.bring_to_front()
        run_id = starter.trigger(steps=200, delay_ms=100)
        state = follower.wait(
            f"s.job.run_id === {json.dumps(run_id)} && s.job.progress"
            " && s.job.progress.current >= 2"
        )
        assert state["job"]["status"] == "leased"
        assert follower.page.inner_text("#job-status") == "running"
        follower.page.bring_to_front()  # a user switches tabs (a hidden tab has no frames)
        follower.page.click(follower.row(run_id, "cancel"))  # the follower's button
        starter.wait(f"s.job.status === 'cancelled' && s.job.run_id === {json.dumps(run_id)}")
    assert not first.state()["errors"] and not second.state()["errors"]
