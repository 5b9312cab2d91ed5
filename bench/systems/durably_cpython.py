"""System ``durably_web``: this project on CPython, file database, WAL, the stated ``synchronous``.

Run by ``bench/run.py``; prints one JSON result line (see ``benchlib``). Workloads:

- ``throughput``: trigger ``runs`` runs of a ``steps``-step job, start the worker
  (``max_concurrent_runs=1``), time first trigger → last ``run:complete``; peak RSS.
- ``latency``: on an idle started worker (default ``polling_interval=1.0``), time trigger call
  → ``run:start`` and → ``run:complete`` of a 1-step job, ``samples`` times.
- ``resume``: a child process runs a ``steps``-step job and SIGKILLs itself inside step
  ``crash_after`` (so ``crash_after`` steps are checkpointed); the lease is then expired in SQL
  and this fresh process times engine creation → ``run:complete`` (replaying the checkpoints).
- ``queries``: ``runs`` runs bulk-inserted in SQL into the engine's own schema, then
  ``get_runs(limit=50)`` unfiltered, by status and by label, ``calls`` times each.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from importlib.metadata import version
from typing import Any

import bench_workloads
import benchlib
from benchlib import Args

from durably_web import Durably, StepContext, create_durably, define_job

SYSTEM = "durably_web"
_CRASH = {"at": -1}  # set in the crash phase of ``resume``: the step that kills the process


@define_job(name="bench-steps", input=dict)
async def bench_steps(step: StepContext, payload: dict[str, Any]) -> int:
    """Run ``payload["steps"]`` checkpointed steps, each returning a small JSON value."""
    steps = int(payload["steps"])
    for i in range(steps):
        await step.run(f"step-{i}", lambda i=i: _step(i))
    return steps


def _step(i: int) -> dict[str, Any]:
    if i == _CRASH["at"]:
        os.kill(os.getpid(), signal.SIGKILL)
    return benchlib.step_value(i)


_CHECKPOINT = {"mode": "each"}
"""``--checkpoint batched`` (before the harness's arguments): the batched checkpoint mode."""


def _engine(args: Args) -> Durably:
    url = f"sqlite:///{args.db_path()}?synchronous={args.synchronous}"
    if _CHECKPOINT["mode"] == "batched":
        durably = create_durably(url, max_concurrent_runs=1, checkpoint="batched")
    else:  # the default mode: no option, so older engines (a "before" run) take it too
        durably = create_durably(url, max_concurrent_runs=1)
    return durably.register({"bench": bench_steps})


def _info(args: Args) -> dict[str, Any]:
    return {
        "version": version("durably-web"),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "settings": f"WAL, synchronous={args.synchronous}, wal_autocheckpoint=10000 (engine's)",
        "polling_interval_s": 1.0,
        "max_concurrent_runs": 1,
    }


async def throughput(args: Args) -> dict[str, Any]:
    """Measure steps/s over ``runs`` x ``steps``, first trigger to last completion."""
    runs, steps = int(args.params["runs"]), int(args.params["steps"])
    durably = _engine(args)
    await durably.migrate()
    metrics = await bench_workloads.throughput(durably, runs, steps)
    return {**metrics, "rss_peak_mb": benchlib.peak_rss_mb()}


async def latency(args: Args) -> dict[str, Any]:
    """Trigger → run:start and trigger → run:complete of a 1-step job on an idle worker."""
    samples, gap_ms = int(args.params["samples"]), float(args.params.get("gap_ms", 20))
    durably = _engine(args)
    await durably.init()
    return await bench_workloads.latency(durably, samples, gap_ms)


async def crash_phase(args: Args) -> None:
    """Child process: run the long job until it kills itself inside step ``crash_after``."""
    _CRASH["at"] = int(args.params["crash_after"])
    durably = _engine(args)
    await durably.migrate()
    await durably.jobs.bench.trigger({"steps": int(args.params["steps"])})
    await durably.process_one()
    raise RuntimeError("the crash phase did not crash")


async def resume(args: Args) -> dict[str, Any]:
    """Fresh process: engine creation → completion of a run with ``crash_after`` checkpoints."""
    steps, crash_after = int(args.params["steps"]), int(args.params["crash_after"])
    child = subprocess.run(
        [sys.executable, __file__, *_child_argv(args)], capture_output=True, text=True, check=False
    )
    if child.returncode != -signal.SIGKILL:
        raise RuntimeError(f"crash phase exited {child.returncode}: {child.stderr[-2000:]}")
    db = benchlib.open_raw(args.db_path(), args.synchronous)
    done_steps = db.execute(
        "SELECT COUNT(*) FROM durably_steps WHERE status = 'completed'"
    ).fetchone()[0]
    if done_steps != crash_after:
        raise RuntimeError(f"expected {crash_after} checkpoints, found {done_steps}")
    db.execute(
        "UPDATE durably_runs SET lease_expires_at = ? WHERE status = 'leased'", (benchlib.EXPIRED,)
    )
    db.close()
    return await bench_workloads.resume(
        lambda: _engine(args), lambda durably: durably.init(), steps, crash_after
    )


def _child_argv(args: Args) -> list[str]:
    return [
        "--workload",
        args.workload,
        "--synchronous",
        args.synchronous,
        "--dir",
        args.dir,
        "--params",
        json.dumps(args.params),
        "--phase",
        "crash",
    ]


async def queries(args: Args) -> dict[str, Any]:
    """get_runs(limit=50): unfiltered, status="failed", labels={"org": "org-3"}: p50/p95 ms."""
    runs, calls = int(args.params["runs"]), int(args.params["calls"])
    setup = _engine(args)
    await setup.migrate()
    await setup.close()
    db = benchlib.open_raw(args.db_path(), args.synchronous)
    benchlib.bulk_insert_runs(db, runs)
    db.close()

    durably = _engine(args)
    await durably.migrate()
    return await bench_workloads.queries(durably, calls)


WORKLOADS = {"throughput": throughput, "latency": latency, "resume": resume, "queries": queries}


def main() -> None:
    """Run one workload once and print its result line."""
    argv = sys.argv[1:]
    if argv[:1] == ["--checkpoint"]:
        _CHECKPOINT["mode"] = argv[1]
        argv = argv[2:]
    args = benchlib.parse_args(__doc__.splitlines()[0], list(WORKLOADS), argv)
    if args.phase == "crash":
        asyncio.run(crash_phase(args))
        return
    metrics = asyncio.run(WORKLOADS[args.workload](args))
    benchlib.emit(args, SYSTEM, metrics, _info(args))


if __name__ == "__main__":
    main()
