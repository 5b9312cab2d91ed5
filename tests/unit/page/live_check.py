"""The live views over a page client, as a page runs them: under MicroPython and CPython.

``test_live_micropython.py`` runs ``main()`` under MicroPython's WebAssembly build in Node
(the page package laid out as pages get it) and under CPython; both must pass. The engine is
:class:`fake_page.FakeEngine` (the JS adapter's answers and pushes), so every ordering of
reads and events can be set up by hand. Raises AssertionError on a failure.
"""

import asyncio
import sys

try:  # noqa: SIM105 - MicroPython has no contextlib
    from typing import Any
except ImportError:  # MicroPython never evaluates annotations
    pass

sys.path.append("/pkg")
sys.path.append("/page")

try:
    from fake_page import FakeDocument, FakeEngine  # type: ignore[import-not-found]
except ImportError:  # CPython, from the repository
    from tests.unit.page.fake_page import FakeDocument, FakeEngine

from durably_web import errors
from durably_web.client import PageClient, live
from durably_web.client.dispatch import Dispatcher


async def settle() -> None:
    """Let the views' reads (tasks) run to their end."""
    for _ in range(20):
        await asyncio.sleep(0)


def client_over(engine: FakeEngine) -> PageClient:
    """A page client over the fake adapter."""
    dispatcher = Dispatcher(None)
    engine.dispatcher = dispatcher
    return PageClient(engine, dispatcher, [{"key": "work", "name": "work"}])


async def check_job() -> None:
    """auto-resume with stored progress, follow-latest, trigger, refused input, reset."""
    engine = FakeEngine()
    client = client_over(engine)
    engine.add(status="pending")
    running = engine.add(status="leased", progress={"current": 40, "total": 100})
    engine.add(status="completed")
    seen: list[Any] = []
    job: Any = live.job(client, "work", on_change=lambda view: seen.append(view.status))
    await job.loaded()
    assert job.current_run_id == running["id"], job.current_run_id
    assert (job.status, job.progress.current, job.progress.total) == ("leased", 40, 100)
    assert job.is_running and job.is_active and not job.is_terminal and seen[-1] == "leased"
    assert engine.calls.count("getRuns") == 1, engine.calls  # found at the first query

    engine.emit("run:progress", running["id"], progress={"current": 41, "total": 100})
    assert job.progress.current == 41
    engine.set(running["id"], status="completed", output={"rows": 100})
    engine.emit("run:complete", running["id"], output={"rows": 100})
    assert job.is_completed and job.output.rows == 100

    outside = engine.add(status="pending")  # triggered elsewhere: followed
    engine.emit("run:trigger", outside["id"])
    assert job.current_run_id == outside["id"] and job.status == "pending"
    await settle()

    run = await job.trigger({"rows": 3})
    assert job.current_run_id == run.id and job.status == "pending" and not job.triggering
    refused: Any = None
    try:
        await job.trigger({"bad": True})
    except errors.ValidationError as exc:
        refused = exc
    assert refused is not None and "bad is not allowed" in str(refused), refused
    assert job.current_run_id == run.id, "a refused trigger changed the run shown"
    job.reset()
    assert job.current_run_id is None and job.status is None
    job.close()
    assert not engine.listeners, engine.listeners  # the last view gone: no listener left


async def check_job_finds_pending_and_waiting_fallback() -> None:
    """No running run: the newest pending one; an engine without `waiting` is asked once."""
    engine = FakeEngine()
    client = client_over(engine)
    engine.add(status="pending")
    newest = engine.add(status="pending")
    job = live.job(client, "work")
    await job.loaded()
    assert job.current_run_id == newest["id"] and job.is_pending
    second = live.job(client, "work")
    await second.loaded()
    asked = [call for call in engine.calls if call == "getRuns"]
    assert len(asked) == 5, engine.calls  # leased, waiting (refused), pending; then no waiting


async def check_run() -> None:
    """Stored state first; callbacks; a read never undoes a newer event; trimmed events."""
    engine = FakeEngine()
    client = client_over(engine)
    stored = engine.add(status="leased", progress={"current": 7, "total": 10})
    calls: list[str] = []
    gate = engine.hold("getRun")
    view: Any = live.run(
        client,
        stored["id"],
        on_start=lambda v: calls.append("start"),
        on_complete=lambda v: calls.append("complete " + str(v.output.n)),
        on_fail=lambda v: calls.append("fail " + str(v.error)),
    )
    assert view.loading and not view.status  # nothing until the read answers
    engine.emit("run:progress", stored["id"], progress={"current": 8, "total": 10})
    gate.set()  # the read answers with the stored progress, 7: older than the event
    await view.loaded()
    assert (view.status, view.progress.current) == ("leased", 8), (view.status, view.progress)
    assert calls == ["start"], calls

    gate = engine.hold("getRun")
    view.refresh()  # a read asked before the run completes, answered after
    engine.set(stored["id"], status="completed", output={"n": 1})
    engine.emit("run:complete", stored["id"], output={"n": 1})
    engine.set(stored["id"], status="leased")  # what the late read will say
    gate.set()
    await view.loaded()
    assert view.status == "completed", "a late read took the run back in time"
    engine.set(stored["id"], status="completed")

    engine.set(stored["id"], status="failed", error="boom\ntrace")
    engine.emit("run:fail", stored["id"], sequence=None)  # trimmed: no error, read it
    await view.loaded()
    assert view.is_failed and view.error == "boom\ntrace", view.error
    assert live.status_text(view.status, view.error) == "failed: boom"
    engine.set(stored["id"], status="pending", error=None)
    engine.emit("run:retry", stored["id"])
    assert view.is_pending and view.error is None
    assert calls == ["start", "complete 1", "fail boom\ntrace", "start"], calls

    done = engine.add(status="completed", output={"n": 2})
    finished: list[Any] = []
    late = live.run(client, done["id"], on_complete=lambda v: finished.append(v.output.n))
    await late.loaded()
    assert finished == [2], finished  # a run finished before the page: on_complete once


async def check_logs() -> None:
    """Stored lines first, then live; a line both stored and in flight shown once; cap."""
    engine = FakeEngine()
    client = client_over(engine)
    run = engine.add(status="leased")
    line = {"runId": run["id"], "stepName": None, "level": "info", "data": None}
    engine.logs[run["id"]] = [dict(line, message="m" + str(i), createdAt="t") for i in range(3)]
    gate = engine.hold("getLogs")
    logs = live.logs(client, run["id"], max_logs=4)
    engine.emit("log:write", run["id"], level="info", message="m2", stepName=None)  # stored
    engine.emit("log:write", run["id"], level="warn", message="m3", stepName=None)  # new
    gate.set()
    await logs.loaded()
    assert [entry.message for entry in logs] == ["m0", "m1", "m2", "m3"], list(logs)
    engine.emit("log:write", run["id"], level="info", message="m4", stepName="s")
    assert [entry.message for entry in logs] == ["m1", "m2", "m3", "m4"]
    assert logs.lines[-1].step_name == "s" and logs.lines[0].timestamp == "t"
    logs.clear()
    assert len(logs) == 0
    engine.emit("log:write", run["id"], level="info", message="m5", stepName=None)
    assert [entry.message for entry in logs] == ["m5"]


async def check_runs() -> None:
    """Paging, filters, progress in place, refetch on lifecycle events, bursts coalesced."""
    engine = FakeEngine()
    client = client_over(engine)
    for index in range(25):
        engine.add(status="completed" if index % 2 else "failed", labels={"i": str(index % 3)})
    engine.add(job="other")
    runs = live.runs(client, job_name="work", page_size=10)
    await runs.loaded()
    assert len(runs) == 10 and runs.has_more and runs.page == 0
    first = [run.id for run in runs]
    await runs.next_page()
    await runs.next_page()
    assert runs.page == 2 and len(runs) == 5 and not runs.has_more
    assert runs.next_page() is None and runs.page == 2
    await runs.go_to_page(0)
    assert [run.id for run in runs] == first
    await runs.set_filter(job_name="work", status="failed", labels={"i": "0"})
    assert runs.runs and all(r.status == "failed" and r.labels.i == "0" for r in runs)

    await runs.set_filter(job_name="work")
    before = engine.calls.count("getRuns")
    gate = engine.hold("getRuns")
    engine.emit("run:trigger", engine.add()["id"])
    await settle()  # that read is in flight
    for _ in range(30):  # a burst of triggers meanwhile: one more read, not thirty
        engine.emit("run:trigger", engine.add()["id"])
    gate.set()
    await runs.loaded()
    assert engine.calls.count("getRuns") - before == 2, engine.calls.count("getRuns") - before
    newest = runs.runs[0]
    engine.emit("run:progress", newest.id, progress={"current": 5})
    assert runs.runs[0].progress.current == 5 and engine.calls.count("getRuns") - before == 2
    engine.emit("run:trigger", engine.runs[engine.order[25]]["id"])  # job "other": ignored
    await settle()
    assert engine.calls.count("getRuns") - before == 2

    engine.fail_next["getRuns"] = {"error": "the server is unreachable", "code": "network_error"}
    await runs.refresh()
    assert runs.error is not None and runs.error.code == "network_error" and len(runs) == 10


async def check_actions_and_dom() -> None:
    """Every action with its pending / error state; the DOM helpers draw the views."""
    engine = FakeEngine()
    client = client_over(engine)
    failed = engine.add(status="failed", error="boom")
    running = engine.add(status="leased", progress={"current": 1, "total": 4})
    actions = live.actions(client)
    gate = engine.hold("cancel")
    call = asyncio.create_task(actions.cancel(running["id"]))
    await settle()
    assert actions.cancel.is_pending(running["id"]) and actions.pending
    gate.set()
    assert (await call).status == "cancelled" and not actions.pending
    try:
        await actions.cancel(running["id"])  # cancelled already: refused
    except errors.ConflictError:
        pass
    else:
        raise AssertionError("cancelling a cancelled run did not raise")
    assert actions.cancel.error_for(running["id"]).code == "conflict"
    assert (await actions.retry(failed["id"])).status == "pending"
    assert (await actions.get_run(failed["id"])).id == failed["id"]
    assert (await actions.get_steps(failed["id"]))[0].name == "s0"
    copy = await actions.retrigger(failed["id"])
    assert copy.id != failed["id"]

    document = FakeDocument()
    body = document.createElement("tbody")
    runs = live.runs(client, page_size=5)
    live.bind_runs_table(body, runs, actions, confirm={})
    await runs.loaded()
    assert [row.dataset.runId for row in body.children] == [run.id for run in runs]
    row = body.children[1]  # the cancelled run: delete, retry and retrigger enabled
    assert row.dataset.status == "cancelled"
    by_action = {b.dataset.action: b for b in row.find("actions").children if b.tagName == "BUTTON"}
    assert by_action["cancel"].disabled and not by_action["delete_run"].disabled
    by_action["delete_run"].click()
    await settle()
    await runs.loaded()
    assert running["id"] not in [r.dataset.runId for r in body.children]

    linked = document.createElement("tbody")  # link=: the run's id links to its page
    live.bind_runs_table(linked, runs, link=lambda run: "#run=" + run.id)
    anchor = linked.children[0].find("run").children[0]
    assert (anchor.tagName, anchor.href) == ("A", "#run=" + runs.runs[0].id)
    assert (
        anchor.textContent == runs.runs[0].id[-8:]
        and not linked.children[0].find("actions").children
    )

    button = document.createElement("button")  # bind_action(view=): the status refuses too
    watched = live.run(client, copy.id)
    await watched.loaded()
    live.bind_action(button, actions.cancel, copy.id, None, watched)
    assert watched.status == "pending" and not button.disabled
    engine.set(copy.id, status="cancelled")
    engine.emit("run:cancel", copy.id)
    assert watched.status == "cancelled" and button.disabled
    button.click()  # a disabled button does nothing
    await settle()
    assert actions.cancel.error_for(copy.id) is None

    job = live.job(client, "work")
    badge, bar, items = (document.createElement(tag) for tag in ("span", "progress", "ul"))
    live.bind_status(badge, job)
    live.bind_progress(bar, job)
    live.bind_logs(items, job)
    await job.trigger({"rows": 1})
    await settle()
    run_id = job.current_run_id
    engine.set(run_id, status="leased")
    engine.emit("run:leased", run_id)
    engine.emit("run:progress", run_id, progress={"current": 2, "total": 8})
    engine.emit("log:write", run_id, level="warn", message="slow", stepName="s1")
    assert (badge.textContent, badge.dataset.status) == ("running", "leased"), badge.textContent
    assert (bar.value, bar.max, bar.dataset.current) == (2, 8, "2")
    assert [(li.dataset.level, li.textContent) for li in items.children] == [
        ("warn", "warn [s1]: slow")
    ]
    engine.emit("run:progress", run_id, progress={"current": 3})  # no total: indeterminate
    assert bar.value is None


async def main() -> None:
    """Run every check."""
    await check_job()
    await check_job_finds_pending_and_waiting_fallback()
    await check_run()
    await check_logs()
    await check_runs()
    await check_actions_and_dom()
    print("live views checked", sys.implementation.name)
