"""The durably_web browser benchmark: its job and its workloads, run inside the engine worker.

Loaded by ``bench/browser/worker.mjs`` into Pyodide (and, as a plain job module, by the
product worker ``_durably/runtime/worker.mjs`` in the ``start`` workload: the ``jobs``
mapping below).
The workloads are ``bench/systems/durably_cpython.py``'s, measured by the same code
(``bench/systems/bench_workloads.py``, which the worker writes beside this file); every timing
is taken here, inside the worker, with ``time.perf_counter`` (``performance.now()`` underneath:
5 us resolution on the cross-origin-isolated bench page). The workloads import
``bench_workloads`` when they run: the product worker loads this file alone, as a job module.

The engine is built as ``durably_web.browser.boot.boot`` builds it, from the same pieces: the
``PyodideConnection`` over the worker's SQLite bridge with boot's pragmas for the durability
setting, an exclusive ``SQLiteStore`` (the OPFS pool belongs to this worker), the page
defaults ``max_concurrent_runs=1`` and ``polling_interval=1.0``. Only the page host is left
out: the workloads call the engine directly and register their event handlers before the
worker starts, which boot does not allow.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from durably_web import Durably, StepContext, create_durably, define_job
from durably_web.adapters.pyodide import PyodideConnection
from durably_web.browser.boot import PRAGMAS
from durably_web.storage.queries import queries as engine_queries
from durably_web.storage.sqlite import SQLiteStore

__all__ = ["bench_steps", "engine_sql_setup", "jobs", "pragmas", "run_workload"]

DATABASE = "/bench.db"
#: The benchmark's durability setting -> boot's key: WAL and NORMAL, or WAL and FULL.
DURABILITY = {"NORMAL": "NORMAL", "FULL": "WAL_FULL"}
_CRASH: dict[str, Any] = {"at": -1, "hook": None}  # resume: the step that "kills" the worker


@define_job(name="bench-steps", input=dict)
async def bench_steps(step: StepContext, payload: dict[str, Any]) -> int:
    """Run ``payload["steps"]`` checkpointed steps, each returning a small JSON value."""
    steps = int(payload["steps"])
    for i in range(steps):
        await step.run(f"step-{i}", lambda i=i: _step(i))
    return steps


jobs = {"bench": bench_steps}


def _step(i: int) -> Any:
    if i == _CRASH["at"]:
        # Tell the page, then never finish this step: the page kills the worker, so exactly
        # ``i`` checkpoints exist (steps 0 .. i-1), as after the CPython benchmark's SIGKILL.
        _CRASH["hook"]()
        return asyncio.get_running_loop().create_future()
    return {"i": i, "ok": True}


def pragmas(synchronous: str) -> list[str]:
    """Return the engine's pragmas for a benchmark durability setting (the raw floor uses them)."""
    return list(PRAGMAS[DURABILITY[synchronous]])


def _engine(
    bridge: Any, synchronous: str, database: str = DATABASE, checkpoint: str = "each"
) -> Durably:
    connection = PyodideConnection(bridge, database, pragmas(synchronous))
    store = SQLiteStore(connection, exclusive=True)
    return create_durably(
        store,
        max_concurrent_runs=1,
        polling_interval=1.0,
        checkpoint="batched" if checkpoint == "batched" else "each",
    ).register(jobs)


async def engine_sql_setup(bridge: Any, synchronous: str, database: str) -> str:
    """Probe (not a harness system): the engine's schema in ``database``, one leased run.

    Returns JSON ``{"sql", "run_id", "generation"}``: the engine's fenced checkpoint INSERT,
    which the worker then runs in a plain JS loop (the "same-SQL floor", bench/NOTES.md).
    """
    durably = _engine(bridge, synchronous, database)
    await durably.migrate()
    run = await durably.jobs.bench.trigger({"steps": 0})
    connection = _connection(durably)
    connection.execute(
        "UPDATE durably_runs SET status = 'leased', lease_generation = 1 WHERE id = ?", (run.id,)
    )
    sql = engine_queries()["insert_step"]
    await durably.close()
    await durably.store.close()  # close() leaves a store it was given open
    return json.dumps({"sql": sql, "run_id": run.id, "generation": 1})


def _connection(durably: Durably) -> PyodideConnection:
    connection = getattr(durably.store, "connection", None)
    assert isinstance(connection, PyodideConnection)
    return connection


async def throughput(bridge: Any, sync: str, params: dict[str, Any], hooks: Any) -> dict[str, Any]:
    """Steps/s over ``runs`` x ``steps``, first trigger to last completion."""
    import bench_workloads

    runs, steps = int(params["runs"]), int(params["steps"])
    durably = _engine(bridge, sync, checkpoint=str(params.get("checkpoint", "each")))
    await durably.migrate()
    return await bench_workloads.throughput(durably, runs, steps, hooks.stage)


async def latency(bridge: Any, sync: str, params: dict[str, Any], hooks: Any) -> dict[str, Any]:
    """Trigger → run:start and trigger → run:complete of a 1-step job on an idle worker."""
    import bench_workloads

    samples, gap_ms = int(params["samples"]), float(params.get("gap_ms", 20))
    durably = _engine(bridge, sync)
    await durably.init()
    return await bench_workloads.latency(durably, samples, gap_ms)


async def crash(bridge: Any, sync: str, params: dict[str, Any], hooks: Any) -> dict[str, Any]:
    """Resume, first page: run the long job until step ``crash_after``, where the page kills us."""
    _CRASH["at"], _CRASH["hook"] = int(params["crash_after"]), hooks.crashing
    durably = _engine(bridge, sync)
    await durably.migrate()
    await durably.jobs.bench.trigger({"steps": int(params["steps"])})
    await durably.process_one()
    raise RuntimeError("the crash phase did not crash")


async def resume(bridge: Any, sync: str, params: dict[str, Any], hooks: Any) -> dict[str, Any]:
    """Resume, second page: engine start → completion of the run the first page left behind.

    Like boot: open, migrate, reclaim every leased run at once (the exclusive OPFS pool means
    their owner is dead: no lease has to expire first), start the worker.
    """
    import bench_workloads

    steps, crash_after = int(params["steps"]), int(params["crash_after"])
    check = PyodideConnection(bridge, DATABASE, pragmas(sync))
    rows = check.query("SELECT COUNT(*) AS n FROM durably_steps WHERE status = 'completed'")
    check.close()
    if rows[0]["n"] != crash_after:
        raise RuntimeError(f"expected {crash_after} checkpoints, found {rows[0]['n']}")

    async def start(durably: Durably) -> None:
        await durably.migrate()
        await durably.release_all_leases()
        durably.start()

    hooks.stage("workload")
    return await bench_workloads.resume(lambda: _engine(bridge, sync), start, steps, crash_after)


async def queries(bridge: Any, sync: str, params: dict[str, Any], hooks: Any) -> dict[str, Any]:
    """get_runs(limit=50): unfiltered, status="failed", labels={"org": "org-3"}: p50/p95 ms."""
    import bench_workloads

    calls = int(params["calls"])  # params["runs"]: the size params["dataset_sql"] inserts
    durably = _engine(bridge, sync)
    await durably.migrate()  # the worker is not started: nothing claims the pending runs
    connection = _connection(durably)
    t0 = time.perf_counter()
    with connection.transaction():
        for statement in params["dataset_sql"]:
            connection.execute(statement)
    insert_s = time.perf_counter() - t0
    summary = list(connection.query(params["summary_sql"])[0].values())
    metrics = await bench_workloads.queries(durably, calls)
    return {"bulk_insert_s": insert_s, "summary": summary, **metrics}


Workload = Callable[[Any, str, dict[str, Any], Any], Any]
WORKLOADS: dict[str, Workload] = {
    "throughput": throughput,
    "latency": latency,
    "crash": crash,
    "resume": resume,
    "queries": queries,
}


async def run_workload(bridge: Any, config_json: str, hooks: Any) -> str:
    """Run one workload (``config``: name, synchronous, params); return its metrics as JSON.

    ``hooks`` is a JS object: ``stage(name)`` reports progress to the page, ``crashing()``
    asks it to kill this worker.
    """
    config = json.loads(config_json)
    run = WORKLOADS[config["workload"]](bridge, config["synchronous"], config["params"], hooks)
    if not config["params"].get("cprofile"):
        return json.dumps(await run)
    # Profiling (bench/systems/chromium.py --profile-dir): cProfile inside Pyodide.
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    metrics = await run
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("tottime").print_stats(40)
    stats.sort_stats("cumulative").print_stats(40)
    metrics["cprofile"] = text.getvalue()
    return json.dumps(metrics)
