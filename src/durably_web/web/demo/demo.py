"""The demo page's Python (index.html beside it), for MicroPython or Pyodide on the main thread.

Built on the live views (``durably_web.client.live``, see docs/bindings.md): the current
import (``live.job``: after a reload it shows the running import with its stored progress at
once), the imports (``live.runs``, drawn by demo_table.py), their buttons (``live.actions``)
and a run's log lines (``live.logs``: stored ones, then live; they survive a reload).

The page is usable at once: the form can be filled while the engine boots in its worker (the
boot stages are shown); Import is enabled once connected, so nothing clicked before starts
later by surprise. Open the page in several tabs: one runs the engine, the others work
through it (the status badge says which), and one of them takes over when that tab closes.
Query: ``?db=NAME`` picks the database (``/NAME.db`` in the origin's OPFS pool);
``?server=/api/durably`` connects to a server's Durably endpoint instead of starting a worker
(``durably-web serve-api .build/site/jobs.py --static .build/site``). Only the
``connect(...)`` call differs between the two modes (and a few labels).

For the tests, the page mirrors what it shows into ``window.__demo`` (JSON: statuses, runs,
the events each run got, ...) and offers ``window.durablyKillWorker()`` (terminates the
worker behind the client's back; nothing in server mode).
"""

import json

import js  # noqa: TID251 - page code
from demo_form import field_errors
from demo_table import RunTable

from durably_web.client import connect, live
from durably_web.client.dispatch import js_callable, spawn
from durably_web.client.values import plain

PARAMS = js.URLSearchParams.new(js.location.search)
NAME = str(PARAMS.get("db")) if PARAMS.has("db") else "demo"
DATABASE = NAME if NAME.startswith("/") else "/" + NAME + ".db"
SERVER = str(PARAMS.get("server")) if PARAMS.has("server") else None
# The event types the page follows. Listened for from the connect (worker mode: from the
# worker's boot; index.html's preconnect names the same), so the events of a run the engine
# reclaims at boot reach the page even though the views are made after connect().
EVENTS = [
    "run:trigger",
    "run:start",
    "run:progress",
    "run:complete",
    "run:fail",
    "run:cancel",
    "run:retry",
    "run:delete",
    "run:wait",
    "log:write",
    "worker:error",
]
STATE = {
    "mode": "server" if SERVER else "worker",
    "status": "loading",
    "stages": [],
    "error": None,
    "runs": {},
    "progress_seen": {},
    "resumed": [],
    "events": {},
    "statuses": [],
    "page_ready_ms": js.performance.now(),
}
STATUS_WORDS = {
    "booting": "Starting the engine…",
    "ready": "Ready",
    "restarting": "Restarting the engine…",
    "failed": "Engine failed",
    "closed": "Engine stopped",
}
ROLE_WORDS = {"leader": " · in this tab", "follower": " · in another tab"}
FORM_FIELDS = ("rows", "file", "batch", "delay", "fail")
# A finished import keeps its steps and log lines (the log panel after a reload, the
# dashboard's steps); index.html's preconnect names the same options.
ENGINE_OPTIONS = {"preserve_steps": True}
durably = None
views = {}  # job, runs, actions, logs: made once connected


def el(element_id):
    """Return the element with that id."""
    return js.document.getElementById(element_id)


def publish(_view=None):
    """Mirror the page's state into ``window.__demo`` (read by the tests)."""
    js.window.__demo = js.JSON.parse(json.dumps(STATE))


def on_click(element_id, handler):
    """Run ``handler()`` (a coroutine function) when the element is clicked."""
    el(element_id).addEventListener(
        "click", js_callable(lambda _event: spawn(guarded(handler()), element_id))
    )


async def guarded(coroutine):
    """Await ``coroutine``; show its failure under the form."""
    try:
        await coroutine
    except Exception as exc:  # noqa: BLE001 - every failure is shown to the user
        show_form_error(exc)


def show_form_error(exc, text=None):
    """Show a failure under the form (``data-code``: the error's code)."""
    code = getattr(exc, "code", "") or type(exc).__name__
    box = el("form-error")
    box.textContent = text or str(exc)
    box.dataset.code = code
    box.hidden = False


def clear_form_errors():
    """Hide the form's messages."""
    el("form-error").hidden = True
    for name in FORM_FIELDS:
        el(name + "-error").textContent = ""
        el(name).removeAttribute("aria-invalid")


def show_refusal(exc):
    """Show a refused input next to the fields at fault, and a line under the form."""
    rest = []
    for field, text in field_errors(str(exc)):
        if field == "form":
            rest.append(text)
            continue
        box = el(field + "-error")
        box.textContent = (box.textContent + " " if box.textContent else "") + text
        el(field).setAttribute("aria-invalid", "true")
    summary = "Nothing was imported: " + ("; ".join(rest) if rest else "check the fields marked.")
    show_form_error(exc, summary)


def on_status(info):
    """Show the engine's status and boot stages; called by the client on every change."""
    STATE["status"] = info.status
    STATE["statuses"].append(info.status)
    STATE["role"] = info.get("role")
    badge = el("status")
    badge.dataset.status = info.status
    badge.dataset.role = info.get("role") or ""
    live_now = info.status in ("booting", "ready", "restarting")
    where = ROLE_WORDS.get(info.get("role"), "") if live_now else ""
    badge.textContent = STATUS_WORDS.get(info.status, info.status) + where
    stage = info.get("stage")
    at = info.get("at") or js.performance.now()  # when it happened (replayed after preconnect)
    if stage:
        STATE["stages"].append([stage, at])
        item = el("stage-" + stage)
        if item:
            item.dataset.done = "1"
    if info.status == "ready":
        STATE["ready_ms"] = at
        el("boot").hidden = True
    if info.status in ("booting", "restarting"):
        el("boot").hidden = False
    if info.get("error"):
        fail(info.error)
    publish()


def fail(exc):
    """Show a boot failure (no OPFS, a broken job module, ...); disable Import until "Try again"."""
    STATE["error"] = {"code": getattr(exc, "code", ""), "message": str(exc)}
    box = el("engine-error")
    box.textContent = str(exc)
    box.dataset.code = getattr(exc, "code", "") or type(exc).__name__
    box.hidden = False
    el("engine-error-help").hidden = False
    el("boot").hidden = True
    el("import").disabled = True
    publish()


def on_event(event):
    """Note what each run went through (for the tests) and show a stopped engine."""
    if event.type == "worker:error":
        if event.context == "worker-stopped":  # the database failed (a full quota, say)
            box = el("engine-error")
            box.textContent = (
                "The engine stopped: " + str(event.error) + ". Imports keep their "
                "checkpoints and resume after a reload once the database is healthy."
            )
            box.dataset.code = "engine_stopped"
            box.hidden = False
        return
    STATE["events"].setdefault(event.run_id, []).append(event.type)
    if event.type == "run:progress":
        seen = STATE["progress_seen"].setdefault(event.run_id, [])
        seen.append(event.progress.current)
    publish()


def form_input():
    """Return the import's input from the form (the engine validates it)."""
    rows_value = str(el("rows").value).strip()
    batch = str(el("batch").value).strip()
    delay = str(el("delay").value).strip()
    payload = {
        "rows": int(rows_value) if rows_value.lstrip("-").isdigit() else rows_value or 0,
        "batch_size": int(batch) if batch.lstrip("-").isdigit() else batch or 100,
        "delay_ms": int(delay) if delay.lstrip("-").isdigit() else delay or 0,
    }
    if el("fail").checked:
        payload["fail_at_batch"] = 1
    return payload


async def start_import():
    """Import the chosen file or the generated rows (the button is enabled once connected)."""
    clear_form_errors()
    payload = form_input()
    files = el("file").files
    if files.length:
        chosen = files.item(0)
        payload["csv"] = str(await chosen.text())
        payload["filename"] = str(chosen.name)
        payload["rows"] = 0
    try:
        run = await views["job"].trigger(payload)
    except Exception as exc:  # noqa: BLE001 - shown next to the fields
        show_refusal(exc)
        views["runs"].refresh()  # the list shows that nothing was stored
        return
    show_logs(run.id)


def show_logs(run_id):
    """Show a run's log lines (stored, then live) in the log panel."""
    views["logs"].follow(run_id)
    el("logs-of").textContent = run_id[-8:]
    el("logs-panel").hidden = False


def follow_current(view):
    """Show the log lines of the current import unless the user picked another run."""
    if view.run_id and views["logs"].run_id is None:
        show_logs(view.run_id)


async def audit(run_id):
    """Return the ledger's audit of a finished import (a job of its own)."""
    run = await durably.jobs.audit_ledger.trigger_and_wait({"run_id": run_id}, timeout=60)
    return plain(run.output)


async def start_engine():
    """Connect to the engine (boot its worker), then make the views."""
    global durably
    el("stage-list").hidden = bool(SERVER)  # no worker, no boot stages
    el("engine-error").hidden = True
    el("engine-error-help").hidden = True
    STATE["error"] = None
    try:
        if SERVER:  # the engine runs in a server: HTTP + server-sent events
            durably = await connect(url=SERVER, on_status=on_status, listen=EVENTS)
        else:  # the engine runs in a Web Worker of this page, on OPFS
            durably = await connect(
                jobs="./jobs.py",
                database=DATABASE,
                on_status=on_status,
                listen=EVENTS,
                options=ENGINE_OPTIONS,
            )
    except Exception as exc:  # noqa: BLE001 - every boot failure is shown
        fail(exc)
        return
    js.window.durablyKillWorker = js_callable(lambda: durably._kill_worker())
    for kind in EVENTS:
        durably.on(kind, on_event)
    views["actions"] = live.actions(durably)
    views["logs"] = live.logs(durably, None, max_logs=500)
    views["job"] = live.job(durably, "import_csv", on_change=follow_current)
    views["runs"] = live.runs(durably, job_name="import-csv", page_size=20)
    live.bind_status("#current-status", views["job"])
    live.bind_progress("#current-progress", views["job"])
    live.bind_text("#current-text", views["job"], current_text)
    live.bind_logs("#logs", views["logs"])
    RunTable(STATE, views["runs"], views["actions"], show_logs, audit, publish)
    await views["runs"].loaded()
    el("import").disabled = False
    publish()


def current_text(view):
    """Return the current import's progress in words (and show its card once there is one)."""
    el("current").hidden = view.run_id is None
    if view.is_completed:
        return "Done."
    return live.progress_text(view.progress)


on_click("import", start_import)
on_click("try-again", start_engine)
el("db-name").textContent = DATABASE
el("dashboard-link").href = "./_durably/dashboard/?" + (
    "server=" + SERVER if SERVER else "db=" + DATABASE + "&jobs=../../jobs.py"
)
if SERVER:
    el("db-label").textContent = "server"
    el("db-name").textContent = SERVER
    el("mode-hint").textContent = (
        "Each import runs as a durable job in the server at "
        + SERVER
        + " (SQLite on its disk); this page follows it live. Each batch of rows is a "
        + "checkpoint: a restarted server resumes an import where it stopped, without "
        + "importing a finished batch again."
    )
js.document.body.dataset.app = "running"
el("status").textContent = STATUS_WORDS["booting"]
STATE["status"] = "booting"
STATE["page_ready_ms"] = js.performance.now()
publish()
await start_engine()  # noqa: F704 - PyScript runs this file with top-level await
