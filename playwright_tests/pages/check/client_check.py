"""Exercise every method of ``durably_web.client`` on a page (check/client.html).

Runs under MicroPython or Pyodide (``?py=1``); the results land in ``window.__check`` as
``{"done", "interpreter", "mode", "results": [[name, ok, detail], ...]}`` for the Playwright
test, and in the page as a list. Each check names the behaviour it expects.

``?server=/api/durably`` runs the same checks against a server (``durably-web serve-api
.build/site/jobs.py --static .build/site``) instead of a worker: only ``connect(...)`` differs, and the few
checks whose answer differs over HTTP say how (``SERVER`` below). ``?db=NAME`` uses the database
``/NAME.db`` (default: a fresh one) and ``?role=follower`` expects another tab to run its engine:
then every check goes through that tab.
"""

import asyncio
import json
import sys

import js  # noqa: TID251 - page code

from durably_web import errors
from durably_web.client import connect

RESULTS = []
PARAMS = js.URLSearchParams.new(js.location.search)
SERVER = str(PARAMS.get("server")) if PARAMS.has("server") else None
DATABASE = "/" + str(PARAMS.get("db")) + ".db" if PARAMS.has("db") else None
ROLE = str(PARAMS.get("role")) if PARAMS.has("role") else ("server" if SERVER else "leader")
try:
    TIMEOUT_TYPES = (TimeoutError, asyncio.TimeoutError)
except NameError:  # MicroPython has no builtin TimeoutError
    TIMEOUT_TYPES = (asyncio.TimeoutError,)


def check(name, ok, detail=""):
    """Record one result, on the page and in ``window.__check``."""
    RESULTS.append([name, bool(ok), str(detail)])
    item = js.document.createElement("li")
    item.textContent = ("PASS " if ok else "FAIL ") + name + (": " + str(detail) if detail else "")
    js.document.getElementById("results").append(item)


async def expect_error(name, cls, code, make):
    """Check that awaiting ``make()`` raises ``cls`` (with ``code``, unless None)."""
    try:
        await make()
    except Exception as exc:  # noqa: BLE001 - the class is what is checked
        ok = isinstance(exc, cls) and (code is None or exc.code == code)
        check(name, ok, type(exc).__name__ + " " + str(getattr(exc, "code", "")) + " " + str(exc))
        return
    check(name, False, "no error raised")


async def main(durably):
    """Check every method of the client against the engine worker."""
    jobs = durably.jobs
    check(
        "jobs are listed by key",
        sorted(jobs.keys()) == ["audit_ledger", "bench_steps", "import_csv"],
        list(jobs.keys()),
    )
    try:
        check("an unknown job is an AttributeError", jobs.nope is None)
    except AttributeError as exc:
        check("an unknown job is an AttributeError", "import_csv" in str(exc), exc)

    try:
        durably.on("run:bogus", print)
        check("on() with an unknown event type raises ValidationError", False)
    except errors.ValidationError as exc:
        check("on() with an unknown event type raises ValidationError", "run:bogus" in str(exc))
    events = []
    unsubscribe = durably.on("*", events.append)
    run = await jobs.import_csv.trigger(
        {"rows": 30, "batch_size": 10}, idempotency_key="k1", labels={"team": "a"}
    )
    # Over HTTP the run is read back after the trigger: the server may have started it.
    started = ("pending", "leased", "completed") if SERVER else ("pending",)
    check(
        "trigger returns a created run",
        run.disposition == "created" and run.status in started and run.idempotency_key == "k1",
        run,
    )
    again = await jobs.import_csv.trigger({"rows": 30, "batch_size": 10}, idempotency_key="k1")
    check(
        "the same idempotency key returns the same run",
        again.id == run.id and again.disposition == "idempotent",
        again.disposition,
    )

    seen = []
    async for event in durably.subscribe(run.id):
        seen.append(event.type)
    check(
        "subscribe: current state first, ends after run:complete",
        seen[-1] == "run:complete" and seen[0] in ("run:trigger", "run:start", "run:complete"),
        seen,
    )
    done = await durably.wait_for_run(run.id, timeout=30)
    check(
        "wait_for_run returns the completed run",
        done.status == "completed" and done.output.rows == 30 and done.output["batches"] == 3,
        done.output,
    )
    fetched = await durably.get_run(run.id)
    check(
        "get_run: snake_case attributes",
        fetched.job_name == "import-csv"
        and fetched.labels.team == "a"
        and fetched.completed_step_count >= 3,
        fetched.completed_step_count,
    )
    listed = await durably.get_runs(status="completed", labels={"team": "a"})
    check("get_runs filters by status and labels", [r.id for r in listed] == [run.id], len(listed))
    check("get_run of an unknown id is None", await durably.get_run("01NOPE") is None)
    types = set(e.type for e in events)
    check(
        "on('*') gets run:start (not run:leased) and step events",
        "run:start" in types and "step:complete" in types and "run:leased" not in types,
        sorted(types),
    )
    progress_events = [e for e in events if e.type == "run:progress"]
    check(
        "events have snake_case fields",
        progress_events
        and progress_events[-1].run_id == run.id
        and progress_events[-1].progress.current == 30,
        len(progress_events),
    )
    unsubscribe()
    count = len(events)

    progress, logs, async_calls = [], [], []

    async def async_progress(p):
        await asyncio.sleep(0)
        async_calls.append(p.current)

    def on_progress(p):
        progress.append(p.current)
        return async_progress(p)

    result = await jobs.import_csv.trigger_and_wait(
        {"rows": 20, "batch_size": 5}, timeout=30, on_progress=on_progress, on_log=logs.append
    )
    await asyncio.sleep(0.05)
    check(
        "trigger_and_wait returns id, output, disposition",
        result.output.rows == 20 and result.disposition == "created" and result.id,
        result.output,
    )
    if SERVER:  # the server's stream sends at most one progress per run every 0.1 s
        check(
            "on_progress gets the progress, in order, up to the last",
            progress and progress[-1] == 20 and progress == sorted(set(progress)),
            progress,
        )
    else:
        check("on_progress gets each progress", progress == [5, 10, 15, 20], progress)
    check("async handlers are awaited", sorted(async_calls) == sorted(progress), async_calls)
    check(
        "on_log gets log:write events",
        len(logs) == 4 and logs[0].message.startswith("batch 0"),
        [log.message for log in logs],
    )
    check("no event after unsubscribe", len(events) == count, len(events) - count)

    runs = await jobs.import_csv.batch_trigger(
        [{"rows": 5}, {"input": {"rows": 6}, "options": {"idempotency_key": "b1"}}]
    )
    check(
        "batch_trigger creates every run",
        len(runs) == 2 and runs[1].idempotency_key == "b1",
        [r.idempotency_key for r in runs],
    )

    await expect_error(
        "invalid input raises ValidationError (400)",
        errors.ValidationError,
        "validation_error",
        lambda: jobs.import_csv.trigger({"rows": 0}),
    )
    await expect_error(
        "an unknown run raises NotFoundError",
        errors.NotFoundError,
        "not_found",
        lambda: durably.cancel("01NOPE"),
    )
    await expect_error(
        "invalid labels raise ValidationError",
        errors.ValidationError,
        None,
        lambda: jobs.import_csv.trigger({"rows": 1}, labels={"bad key!": "x"}),
    )

    failing = await jobs.import_csv.trigger({"rows": 20, "batch_size": 10, "fail_at_batch": 1})
    await expect_error(
        "a failed run raises RunFailed",
        errors.RunFailed,
        "run_failed",
        lambda: durably.wait_for_run(failing.id, timeout=30),
    )
    retried = await durably.retry(failing.id)
    check(
        "retry re-runs in place",
        retried.id == failing.id and retried.status in started,
        retried.status,
    )
    done = await durably.wait_for_run(failing.id, timeout=30)
    check("the retried run completes", done.status == "completed", done.status)
    new = await durably.retrigger(failing.id)
    check("retrigger starts a new run", new.id != failing.id, new.id)
    await expect_error(
        "the new run runs from scratch (fails again)",
        errors.RunFailed,
        None,
        lambda: durably.wait_for_run(new.id, timeout=30),
    )
    deleted = await durably.delete_run(new.id)
    check("delete_run removes it", deleted.id == new.id and await durably.get_run(new.id) is None)

    slow = await jobs.import_csv.trigger({"rows": 1000, "batch_size": 10, "delay_ms": 100})
    await expect_error(
        "wait_for_run times out",
        TIMEOUT_TYPES,
        None,
        lambda: durably.wait_for_run(slow.id, timeout=0.3),
    )
    await asyncio.sleep(0.5)
    steps = await durably.get_steps(slow.id)
    check(
        "get_steps lists checkpoints",
        steps and steps[0].name == "count" and steps[0].status == "completed",
        [s.name for s in steps][:3],
    )
    run_logs = await durably.get_logs(slow.id)
    check(
        "get_logs lists log records",
        run_logs and run_logs[0].step_name.startswith("batch-"),
        len(run_logs),
    )
    await durably.cancel(slow.id)
    await expect_error(
        "a cancelled run raises RunCancelled",
        errors.RunCancelled,
        "run_cancelled",
        lambda: durably.wait_for_run(slow.id, timeout=30),
    )
    future = "9999-01-01T00:00:00+00:00"  # (MicroPython truncates big JS numbers: no Date.now())
    if SERVER:  # no HTTP endpoint: purging is the server's business
        await expect_error(
            "purge_runs is not available over HTTP",
            errors.DurablyError,
            "not_supported",
            lambda: durably.purge_runs(future),
        )
    else:
        purged = await durably.purge_runs(future)
        check(
            "purge_runs deletes finished runs",
            isinstance(purged, int) and purged >= 3,
            str(purged) + " " + future,
        )
    check("status is ready", durably.status == "ready", durably.status)


async def run_all():
    """Connect, run the checks, close; publish the results."""
    statuses = []
    try:
        if SERVER:
            durably = await connect(
                url=SERVER,
                client="../_durably/client/index.mjs",
                on_status=lambda s: statuses.append(s.status),
            )
        else:
            durably = await connect(
                jobs="../jobs.py",
                client="../_durably/client/index.mjs",
                database=DATABASE or "/check-" + str(js.Math.random())[2:12] + ".db",
                on_status=lambda s: statuses.append(s.status),
            )
        check(
            "connect reports boot then ready",
            statuses[0] == "booting" and statuses[-1] == "ready",
            statuses,
        )
        check("role is " + ROLE, durably.role == ROLE, durably.role)
        await main(durably)
        await durably.close()
        check("close stops the engine", durably.status == "closed", durably.status)
    except Exception as exc:  # noqa: BLE001 - reported as a failed check
        check("no unexpected error", False, type(exc).__name__ + ": " + str(exc))
    js.window.__check = js.JSON.parse(
        json.dumps(
            {
                "done": True,
                "interpreter": sys.implementation.name,
                "mode": "server" if SERVER else "worker",
                "results": RESULTS,
            }
        )
    )


await run_all()  # noqa: F704 - PyScript runs this file with top-level await
