"""The app's page (PyScript; MicroPython by default): trigger the job, show runs live.

``index.html`` starts the engine's worker and the offline support, then this file. The page
lists the stored runs with their last progress (so a reload shows where each run got to),
follows the engine's events to update them live, and offers a button that triggers
``count_primes`` (defined in ``jobs.py``). Every element the page updates has an id; each
run's item carries ``data-run-id`` and ``data-status``.
"""

import asyncio

import js
from pyscript.ffi import create_proxy

from durably_web.client import connect

JOB = "count-primes"  # the job's name= in jobs.py
EVENTS = [
    "run:trigger",
    "run:start",
    "run:progress",
    "run:complete",
    "run:fail",
    "run:cancel",
    "worker:error",
]
STATUS_TEXT = {
    "booting": "Starting…",
    "ready": "Ready",
    "restarting": "Restarting…",
    "failed": "Failed",
    "closed": "Stopped",
}
ROLE_TEXT = {"follower": " · via another tab"}  # that tab runs the engine; this one uses it

durably = None
items = {}  # run id -> its <li>
events_seen = {}  # run id -> how many of its events the page has shown
reading = set()  # run ids whose stored state is being read
tasks = set()  # background tasks, referenced until they finish


def grouped(number):
    """Write an integer with thousands separators: 2000000 -> "2,000,000"."""
    digits = str(abs(number))
    groups = []
    while digits:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    return ("-" if number < 0 else "") + ",".join(groups)


def el(element_id):
    """Return the element with that id."""
    return js.document.getElementById(element_id)


def spawn(coroutine):
    """Run ``coroutine`` in the background; a failure is shown on the page."""

    async def guarded():
        try:
            await coroutine
        except Exception as exc:  # every failure is shown to the user
            show_error(exc)
        finally:
            tasks.discard(task)

    task = asyncio.create_task(guarded())
    tasks.add(task)


def show_error(exc):
    """Show an error with its code (``validation_error``, ``quota_exceeded``, ...)."""
    box = el("error")
    code = getattr(exc, "code", "") or type(exc).__name__
    box.textContent = code + ": " + str(exc)
    box.dataset.code = code
    box.hidden = False


def on_status(info):
    """Show the engine's status and this tab's role (called on every change).

    One tab of the app runs the engine (role ``leader``); every other tab is a ``follower``
    that works through it, and one of them takes over when that tab closes.
    """
    badge = el("status")
    badge.dataset.status = info.status
    badge.dataset.role = info.get("role") or ""
    stage = info.get("stage")
    text = STATUS_TEXT.get(info.status, info.status)
    if info.status == "booting" and stage:
        text += " (" + stage + ")"
    elif info.status == "ready":
        text += ROLE_TEXT.get(info.get("role"), "")
    badge.textContent = text
    if info.get("error"):
        show_error(info.error)


def render(run):
    """Add or update a run's item: status, progress bar and message, result."""
    item = items.get(run.id)
    if item is None:
        item = js.document.createElement("li")
        item.className = "run"
        item.dataset.runId = run.id
        item.innerHTML = (
            "<div class=run-head><span class=run-title></span><span class=chip></span></div>"
            "<progress max=1 value=0></progress><div class=run-text></div>"
        )
        item.querySelector(".run-title").textContent = "Primes below " + grouped(run.input["limit"])
        el("runs").prepend(item)
        items[run.id] = item
        el("empty").hidden = True
    set_status(run.id, run.status)
    if run.progress is not None:
        set_progress(run.id, run.progress)
    if run.status == "completed" and run.output is not None:
        show_output(run.id, run.output)
    if run.status == "failed":
        item.querySelector(".run-text").textContent = str(run.error)


def set_status(run_id, status):
    """Show a run's status on its item."""
    item = items[run_id]
    item.dataset.status = status
    item.querySelector(".chip").textContent = "running" if status == "leased" else status


def set_progress(run_id, progress):
    """Show a run's progress: ``current`` of ``total`` and the job's message."""
    item = items[run_id]
    bar = item.querySelector("progress")
    bar.max = progress.total or 1
    bar.value = progress.current
    item.querySelector(".run-text").textContent = progress.message or ""


def show_output(run_id, output):
    """Show a finished run's result."""
    item = items[run_id]
    bar = item.querySelector("progress")
    bar.value = bar.max
    text = grouped(output["primes"]) + " primes"
    if output["largest"] is not None:
        text += " · the largest is " + grouped(output["largest"])
    item.querySelector(".run-text").textContent = text


def on_event(event):
    """Update the page from an engine event."""
    if event.type == "worker:error":
        # The database failed under the engine (a full quota, say): it stopped running runs,
        # keeps their checkpoints, and resumes them at the next boot. The badge says so too.
        if event.context == "worker-stopped":
            box = el("error")
            box.textContent = (
                "The engine stopped: " + str(event.error) + ". Finished steps are kept: "
                "reload the page once there is room again to resume."
            )
            box.dataset.code = "engine_stopped"
            box.hidden = False
            badge = el("status")
            badge.dataset.status = "stopped"
            badge.textContent = (
                "Stopped: storage full" if "quota" in str(event.error) else "Stopped"
            )
        return
    if event.get("job_name") != JOB:
        return
    events_seen[event.run_id] = events_seen.get(event.run_id, 0) + 1
    if event.type == "run:trigger" or event.run_id not in items:
        spawn(show_run(event.run_id))
    elif event.type == "run:start":
        set_status(event.run_id, "leased")
    elif event.type == "run:progress":
        set_progress(event.run_id, event.progress)
    elif event.type == "run:complete":
        set_status(event.run_id, "completed")
        show_output(event.run_id, event.output)
    else:  # run:fail, run:cancel: read the stored run (its error)
        spawn(show_run(event.run_id))


async def show_run(run_id):
    """Read a run from the engine and show it.

    Events keep coming while the answer is on its way, and the page may show some of them
    before it: an answer read before an event it has shown would set the run back (a finished
    run shown as running forever). So read again until no event of the run came in meanwhile.
    """
    if run_id in reading:  # the read under way reads again if needed
        return
    reading.add(run_id)
    try:
        while True:
            seen = events_seen.get(run_id, 0)
            run = await durably.get_run(run_id)
            if events_seen.get(run_id, 0) == seen:
                break
    finally:
        reading.discard(run_id)
    if run is not None:
        render(run)


async def start():
    """Trigger the job with the limit from the form."""
    el("error").hidden = True
    text = str(el("limit").value).strip()
    run = await durably.jobs.count_primes.trigger({"limit": int(text) if text else 0})
    await show_run(run.id)  # not the trigger's answer: events may have overtaken it


def on_submit(event):
    """Trigger the job when the form is submitted (the page does not navigate)."""
    event.preventDefault()
    spawn(start())


async def main():
    """Connect to the engine, list the stored runs, follow their events, enable the form."""
    global durably
    try:
        durably = await connect(
            jobs="./jobs.py", database="/app.db", on_status=on_status, listen=EVENTS
        )
    except Exception as exc:  # a boot failure: no OPFS here, the job module failed, ...
        show_error(exc)
        return
    for kind in EVENTS:
        durably.on(kind, on_event)
    for run in reversed(await durably.get_runs(job_name=JOB, limit=20)):
        if run.id not in items:  # else an event showed it already, newer than this list
            render(run)
    el("run").disabled = False


el("start").addEventListener("submit", create_proxy(on_submit))
js.document.body.dataset.app = "running"
await main()
