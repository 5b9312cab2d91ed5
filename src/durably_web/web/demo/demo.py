"""The demo page's Python (index.html beside it), for MicroPython or Pyodide on the main thread.

The page is usable at once: the form can be filled while the engine boots in its worker
(the boot stages are shown); its Import button is enabled once connected, so nothing clicked
before starts later by surprise. Runs are listed live from engine events, with cancel /
retry / delete, and survive reloads. Open the page in several tabs: one runs the engine,
the others work through it (the status badge says which), and one of them takes over, with
the others following it, when that tab closes.
Query: ``?db=NAME`` picks the database (``/NAME.db`` in the origin's OPFS pool);
``?server=/api/durably`` connects to a server's Durably endpoint instead of starting a worker
(``durably-web serve-api .build/site/jobs.py --static .build/site``). Only the
``connect(...)`` call differs between the two modes (and a few labels): everything else below
is the same code.

For the tests, the page mirrors what it shows into ``window.__demo`` (JSON: statuses, runs,
the events each run got, ...) and offers ``window.durablyKillWorker()`` (terminates the
worker behind the client's back; nothing in server mode).
"""

import asyncio
import json

import js  # noqa: TID251 - page code
from demo_table import RunTable
from pyscript.ffi import create_proxy

from durably_web.client import connect

PARAMS = js.URLSearchParams.new(js.location.search)
NAME = str(PARAMS.get("db")) if PARAMS.has("db") else "demo"
DATABASE = NAME if NAME.startswith("/") else "/" + NAME + ".db"
SERVER = str(PARAMS.get("server")) if PARAMS.has("server") else None
# The event types the page shows. Listened for from the connect (worker mode: from the
# worker's boot; index.html's preconnect names the same), so the run:start of a run the
# engine reclaims at boot reaches on_event even though the handlers come after connect().
EVENTS = [
    "run:trigger",
    "run:start",
    "run:progress",
    "run:complete",
    "run:fail",
    "run:cancel",
    "run:retry",
    "run:delete",
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
durably = None
tasks = set()  # running background tasks (kept referenced until they finish)


def el(element_id):
    """Return the element with that id."""
    return js.document.getElementById(element_id)


def publish():
    """Mirror the page's state into ``window.__demo`` (read by the tests)."""
    js.window.__demo = js.JSON.parse(json.dumps(STATE))


def spawn(coroutine):
    """Run ``coroutine`` in the background; its failure is shown in the form's error box."""

    async def guarded():
        try:
            await coroutine
        except Exception as exc:  # noqa: BLE001 - every failure is shown to the user
            show_error("form-error", exc)
        finally:
            tasks.discard(task)

    task = asyncio.create_task(guarded())
    tasks.add(task)


def on_click(element, handler):
    """Run ``handler()`` (a coroutine function) when ``element`` (or its id) is clicked."""
    target = el(element) if isinstance(element, str) else element
    target.addEventListener("click", create_proxy(lambda event: spawn(handler())))


def show_error(element_id, exc):
    """Show ``exc`` (with its code) in the error box ``element_id``."""
    code = getattr(exc, "code", "") or type(exc).__name__
    box = el(element_id)
    box.textContent = code + ": " + str(exc)
    box.hidden = False
    box.dataset.code = code


def on_status(info):
    """Show the engine's status and boot stages; called by the client on every change."""
    STATE["status"] = info.status
    STATE["statuses"].append(info.status)
    STATE["role"] = info.get("role")
    badge = el("status")
    badge.dataset.status = info.status
    badge.dataset.role = info.get("role") or ""
    labels = {
        "booting": "Engine starting…",
        "ready": "Engine ready",
        "restarting": "Engine restarting…",
        "failed": "Engine failed",
        "closed": "Engine stopped",
    }
    where = {"leader": " (in this tab)", "follower": " (in another tab)"}
    live = info.status in ("booting", "ready", "restarting")
    badge.textContent = labels.get(info.status, info.status) + (
        where.get(info.get("role"), "") if live else ""
    )
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
    show_error("engine-error", exc)
    el("engine-error-help").hidden = False
    el("boot").hidden = True
    el("import").disabled = True
    el("bench").disabled = True
    publish()


def form_input():
    """Return the import's input from the form (the engine validates it)."""
    rows_value = str(el("rows").value).strip()
    batch = str(el("batch").value).strip()
    delay = str(el("delay").value).strip()
    payload = {
        "rows": int(rows_value) if rows_value else 0,
        "batch_size": int(batch) if batch else 100,
        "delay_ms": int(delay) if delay else 0,
    }
    if el("fail").checked:
        payload["fail_at_batch"] = 1
    return payload


async def start_import():
    """Import the chosen file or the generated rows (the button is enabled once connected)."""
    el("form-error").hidden = True
    payload = form_input()
    files = el("file").files
    if files.length:
        chosen = files.item(0)
        payload["csv"] = str(await chosen.text())
        payload["filename"] = str(chosen.name)
        payload["rows"] = 0
    await trigger(payload)


async def trigger(payload):
    """Trigger an import; on a refused input, show why and that nothing was stored."""
    try:
        run = await durably.jobs.import_csv.trigger(payload)
    except Exception as exc:  # noqa: BLE001 - shown to the user
        show_error("form-error", exc)
        await refresh()  # the list shows that nothing was stored
        return
    runs.render(run)
    publish()


def on_event(event):
    """Update the page from an engine event."""
    kind = event.type
    if kind == "worker:error":
        if event.context == "worker-stopped":  # the database failed (a full quota, say)
            box = el("engine-error")
            box.textContent = (
                "engine_stopped: the engine stopped: " + str(event.error) + ". Runs keep "
                "their checkpoints and resume after a reload once the database is healthy."
            )
            box.dataset.code = "engine_stopped"
            box.hidden = False
        return
    run_id = event.run_id
    STATE["events"].setdefault(run_id, []).append(kind)
    if kind == "log:write":
        line = js.document.createElement("li")
        line.textContent = run_id[-8:] + " " + event.level + ": " + event.message
        el("logs").prepend(line)
        return
    if event.job_name != "import-csv" and run_id not in runs:
        return
    if kind == "run:delete":
        runs.remove(run_id)
    elif kind == "run:trigger":
        spawn(fetch_and_render(run_id))
    elif kind == "run:progress":
        runs.set_progress(run_id, event.progress)
    elif kind == "run:start":
        spawn(mark_resumed(run_id))
    else:
        status = {
            "run:complete": "completed",
            "run:fail": "failed",
            "run:cancel": "cancelled",
            "run:retry": "pending",
        }.get(kind)
        if status:
            runs.set_status(run_id, status, None, event.get("output"), event.get("error"))
            if kind in ("run:complete", "run:fail") and run_id in runs:
                # A server's event stream carries no output or error: show the stored ones.
                spawn(fetch_and_render(run_id))
    publish()


async def fetch_and_render(run_id):
    """Show a run that was just triggered (from this page or not)."""
    run = await durably.get_run(run_id)
    if run is not None:
        runs.render(run)
        publish()


async def mark_resumed(run_id):
    """Show a run that started, and whether it resumes after checkpointed steps."""
    run = await durably.get_run(run_id)
    if run is not None:
        runs.render(run)
        runs.note_resumed(run)
        publish()


async def refresh():
    """List the stored runs (after `on()`: what happened before is in this snapshot)."""
    for run in reversed(await durably.get_runs(job_name="import-csv", limit=20)):
        if run.id not in runs:
            runs.render(run)
            runs.note_resumed(run)
    runs.count()
    publish()


async def benchmark():
    """Run 1000 trivial checkpointed steps; show steps per second."""
    el("bench-result").textContent = "running 1000 steps…"
    result = await durably.jobs.bench_steps.trigger_and_wait({"steps": 1000}, timeout=300)
    out = result.output
    el("bench-result").textContent = str(int(out.steps_per_s)) + " steps/s"
    el("bench-result").dataset.result = json.dumps(out.to_dict())


async def start_engine():
    """Connect to the engine (boot its worker), then list runs and follow their events."""
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
                jobs="./jobs.py", database=DATABASE, on_status=on_status, listen=EVENTS
            )
    except Exception as exc:  # noqa: BLE001 - every boot failure is shown
        fail(exc)
        return
    runs.durably = durably
    js.window.durablyKillWorker = create_proxy(lambda: durably._kill_worker())
    for kind in EVENTS:
        durably.on(kind, on_event)
    await refresh()
    el("import").disabled = False
    el("bench").disabled = False


runs = RunTable(STATE, on_click)
on_click("import", start_import)
on_click("bench", benchmark)
on_click("try-again", start_engine)
el("db-name").textContent = DATABASE
if SERVER:
    el("db-label").textContent = "server"
    el("db-name").textContent = SERVER
    el("mode-hint").textContent = (
        "A CSV import runs as a durable job in the server at "
        + SERVER
        + " (SQLite on its disk); this page follows it over HTTP and server-sent events. "
        + "Each batch of rows is a checkpointed step: a restarted server resumes the import "
        + "where it stopped, without importing a finished batch again."
    )
js.document.body.dataset.app = "running"
el("status").textContent = "Engine starting…"
STATE["status"] = "booting"
STATE["page_ready_ms"] = js.performance.now()
publish()
await start_engine()  # noqa: F704 - PyScript runs this file with top-level await
