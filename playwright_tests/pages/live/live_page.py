"""The live views' test page (/live/): every view and DOM helper of durably_web.client.live.

Query: ``?py=1`` (Pyodide), ``?server=/api/durably`` (server mode), ``?db=NAME``,
``?watch=RUN_ID`` (the run and logs views follow that run from the start), ``?page_size=N``.
After every change of a view, what the views hold is mirrored into ``window.__live`` (JSON),
with times (``performance.now()``): the engine's ready status, and the first progress the
job and run views showed.
"""

import json

import js  # noqa: TID251 - page code
from pyscript import when

from durably_web.client import connect, live
from durably_web.client.values import plain

PARAMS = js.URLSearchParams.new(js.location.search)


def param(name, default=None):
    """Return a query parameter, or ``default``."""
    return str(PARAMS.get(name)) if PARAMS.has(name) else default


def value(element_id):
    """Return an input's value."""
    return str(js.document.getElementById(element_id).value).strip()


SERVER = param("server")
WATCH = param("watch")
CLIENT = "../_durably/client/index.mjs"
STATE = {"ready_at": None, "callbacks": [], "errors": [], "first": {}, "batch": []}
VIEWS = []  # set once every view exists (a view's first change comes while it is made)


def on_status(info):
    """Note when the engine is ready (the time it happened)."""
    if info.status == "ready" and STATE["ready_at"] is None:
        STATE["ready_at"] = info.get("at") or js.performance.now()


def view_state(view, name):
    """A run or job view's state, as JSON data; note its first progress."""
    if view.progress is not None and name not in STATE["first"]:
        STATE["first"][name] = {"at": js.performance.now(), "current": view.progress.current}
    return {
        "run_id": view.run_id,
        "status": view.status,
        "progress": None if view.progress is None else view.progress.to_dict(),
        "output": plain(view.output),
        "error": view.error,
        "logs": [line.message for line in view.logs],
        "loading": view.loading,
    }


def publish(_view=None):
    """Mirror every view into ``window.__live``."""
    if not VIEWS:
        return
    STATE["job"] = view_state(job, "job")
    STATE["triggering"] = job.triggering
    STATE["watched"] = view_state(watched, "watched")
    STATE["logs"] = [line.message for line in logs]
    STATE["runs"] = {
        "page": runs.page,
        "has_more": runs.has_more,
        "ids": [run.id for run in runs],
        "statuses": [run.status for run in runs],
        "loading": runs.loading,
        "error": None if runs.error is None else str(runs.error),
    }
    STATE["actions_pending"] = actions.pending
    js.window.__live = js.JSON.parse(json.dumps(STATE))


def failed(where, exc):
    """Keep an error of a button's handler for the test."""
    STATE["errors"].append(where + ": " + type(exc).__name__ + ": " + str(exc))
    publish()


def callback(name):
    """Return a run-view callback that records its name."""

    def record(view):
        STATE["callbacks"].append(name)
        publish()

    return record


if SERVER:
    durably = await connect(url=SERVER, client=CLIENT, on_status=on_status)  # noqa: F704
else:
    database = "/" + param("db", "live") + ".db"
    durably = await connect(  # noqa: F704
        jobs="./jobs.py", database=database, client=CLIENT, on_status=on_status
    )
STATE["connected_at"] = js.performance.now()
job = live.job(durably, "slow", on_change=publish)
watched = live.run(
    durably,
    WATCH,
    on_start=callback("start"),
    on_complete=callback("complete"),
    on_fail=callback("fail"),
    on_cancel=callback("cancel"),
    on_change=publish,
)
logs = live.logs(durably, WATCH, max_logs=3, on_change=publish)
runs = live.runs(durably, page_size=int(param("page_size", "10")), on_change=publish)
actions = live.actions(durably, on_change=publish)
live.bind_status("#job-status", job)
live.bind_progress("#job-progress", job)
live.bind_logs("#job-logs", job)
live.bind_status("#run-status", watched)
live.bind_progress("#run-progress", watched)
live.bind_logs("#logs", logs)
live.bind_runs_table("#runs", runs, actions)
live.bind_text("#page", runs, lambda view: view.page)
VIEWS.extend([job, watched, logs, runs, actions])


@when("click", "#trigger")
async def trigger(event):
    """Trigger the job from the form."""
    payload = {"steps": int(value("steps")), "delay_ms": int(value("delay"))}
    if value("fail-at"):
        payload["fail_at"] = int(value("fail-at"))
    try:
        await job.trigger(payload)
    except Exception as exc:  # noqa: BLE001 - kept for the test
        failed("trigger", exc)


@when("click", "#batch")
async def batch(event):
    """Trigger many quick runs in one transaction."""
    items = [{"steps": 1, "delay_ms": 0} for _ in range(int(value("batch-count")))]
    STATE["batch"] = [run.id for run in await durably.jobs.slow.batch_trigger(items)]
    publish()


@when("click", "#watch")
def watch(event):
    """Follow another run in the run and logs views."""
    watched.follow(value("watch-id"))
    logs.follow(value("watch-id"))


@when("click", "#clear-logs")
def clear_logs(event):
    """Clear the logs view."""
    logs.clear()


@when("click", "#next")
def next_page(event):
    """Older runs."""
    runs.next_page()


@when("click", "#prev")
def prev_page(event):
    """Newer runs."""
    runs.prev_page()


@when("click", "#goto")
def goto(event):
    """Go to the page typed."""
    runs.go_to_page(int(value("goto-page")))


@when("click", "#refresh")
def refresh(event):
    """Read the page of runs again."""
    runs.refresh()


@when("change", "#filter-status")
def filter_status(event):
    """Filter the runs by status."""
    runs.set_filter(status=value("filter-status") or None)


@when("click", "#act-get-run")
async def get_run(event):
    """Show a run read through the actions."""
    run = await actions.get_run(value("act-id"))
    js.document.getElementById("act-result").textContent = json.dumps(plain(run))


@when("click", "#act-get-steps")
async def get_steps(event):
    """Show a run's steps read through the actions."""
    steps = await actions.get_steps(value("act-id"))
    js.document.getElementById("act-result").textContent = json.dumps(plain(steps))


@when("click", "#bind-delete")
def bind_delete(event):
    """Make the delete button delete the job view's current run."""
    live.bind_action("#act-delete", actions.delete_run, job.current_run_id)


publish()
