"""System ``dbos``: DBOS Transact for Python on its SQLite system database (in .venv-dbos).

DBOS opens SQLite with its own settings (IMMEDIATE transactions, ``busy_timeout``, foreign
keys) and leaves the journal mode and ``synchronous`` at SQLite's defaults (rollback journal,
FULL). To run it at the benchmark's stated settings, a SQLAlchemy ``connect`` listener on every
engine adds ``journal_mode=WAL`` and the stated ``synchronous``; DBOS's own listener still runs.

A run is a workflow and a step is a ``@DBOS.step``. Workloads (as in ``durably_cpython.py``):

- ``throughput``: ``runs`` workflows of ``steps`` steps, one at a time (``start_workflow`` then
  ``get_result``: concurrency 1 without a queue's polling); peak RSS.
- ``latency``: ``start_workflow`` call → workflow body starts, and → ``get_result`` returns.
- ``resume``: a child process SIGKILLs itself inside step ``crash_after``; this fresh process
  times ``DBOS()`` + ``launch()`` (which recovers the pending workflow) → the result.
- ``queries``: ``runs`` workflow rows cloned in SQL from a real one (same status mix), then
  ``list_workflows(limit=50, sort_desc=True)`` unfiltered and by status ``ERROR``. DBOS cannot
  filter by attributes on SQLite, so there is no label query.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from importlib.metadata import version
from typing import Any

import bench_workloads
import benchlib
import sqlalchemy as sa
from benchlib import Args
from dbos import DBOS, SetWorkflowID
from sqlalchemy import event

SYSTEM = "dbos"
_STATE: dict[str, Any] = {"crash_at": -1, "synchronous": "FULL"}
_MARKS: dict[str, float] = {}
_STATUS = {"completed": "SUCCESS", "failed": "ERROR", "pending": "PENDING"}
_BASE_MS = 1767225600000  # 2026-01-01T00:00:00Z, as in benchlib


@event.listens_for(sa.Engine, "connect")
def _pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute("PRAGMA journal_mode = WAL")
    dbapi_conn.execute(f"PRAGMA synchronous = {_STATE['synchronous']}")


@DBOS.step()
def bench_step(i: int) -> dict[str, Any]:
    """One benchmark step: a small JSON value (or the crash, in the crash phase)."""
    if i == _STATE["crash_at"]:
        os.kill(os.getpid(), signal.SIGKILL)
    return benchlib.step_value(i)


@DBOS.workflow()
def bench_workflow(steps: int) -> int:
    """Run ``steps`` steps (a negative count fails: the template of failed runs)."""
    _MARKS.setdefault("started", time.perf_counter())
    if steps < 0:
        raise RuntimeError("boom")
    for i in range(steps):
        bench_step(i)
    return steps


def _launch(args: Args) -> None:
    _STATE["synchronous"] = args.synchronous
    DBOS(
        config={
            "name": "bench",
            "system_database_url": f"sqlite:///{args.db_path('dbos.db')}",
            "log_level": "WARNING",
        }
    )
    DBOS.launch()


def _info(args: Args) -> dict[str, Any]:
    return {
        "version": version("dbos"),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "settings": f"WAL, synchronous={args.synchronous} (set by the harness), "
        "wal_autocheckpoint=1000 (SQLite default)",
        "concurrency": "one workflow at a time (start_workflow + get_result)",
    }


def throughput(args: Args) -> dict[str, Any]:
    """Measure steps/s over ``runs`` workflows of ``steps`` steps, run one after another."""
    runs, steps = int(args.params["runs"]), int(args.params["steps"])
    _launch(args)
    started = time.perf_counter()
    for _ in range(runs):
        DBOS.start_workflow(bench_workflow, steps).get_result()
    wall = time.perf_counter() - started
    DBOS.destroy()
    return {
        "steps_per_s": runs * steps / wall,
        "wall_s": wall,
        "rss_peak_mb": benchlib.peak_rss_mb(),
    }


def latency(args: Args) -> dict[str, Any]:
    """start_workflow → workflow body, and → result, for a 1-step workflow."""
    samples, gap_ms = int(args.params["samples"]), float(args.params.get("gap_ms", 20))
    _launch(args)
    rng = random.Random(1)
    to_start, to_complete, trigger_call = [], [], []
    for i in range(samples + 2):  # the first two warm up
        time.sleep(rng.uniform(0, gap_ms) / 1000)
        _MARKS.clear()
        t0 = time.perf_counter()
        handle = DBOS.start_workflow(bench_workflow, 1)
        returned = time.perf_counter()
        handle.get_result()
        completed = time.perf_counter()
        if i >= 2:
            trigger_call.append((returned - t0) * 1000)
            to_start.append((_MARKS["started"] - t0) * 1000)
            to_complete.append((completed - t0) * 1000)
    DBOS.destroy()
    return bench_workloads.latency_metrics(trigger_call, to_start, to_complete)


def crash_phase(args: Args) -> None:
    """Child process: run the long workflow until it kills itself inside step ``crash_after``."""
    _STATE["crash_at"] = int(args.params["crash_after"])
    _launch(args)
    with SetWorkflowID("bench-resume"):
        DBOS.start_workflow(bench_workflow, int(args.params["steps"])).get_result()
    raise RuntimeError("the crash phase did not crash")


def resume(args: Args) -> dict[str, Any]:
    """Fresh process: DBOS() + launch() → result of a workflow with ``crash_after`` steps done."""
    steps, crash_after = int(args.params["steps"]), int(args.params["crash_after"])
    argv = [sys.executable, __file__, "--workload", "resume", "--synchronous", args.synchronous]
    argv += ["--dir", args.dir, "--params", json.dumps(args.params), "--phase", "crash"]
    child = subprocess.run(argv, capture_output=True, text=True, check=False)
    if child.returncode != -signal.SIGKILL:
        raise RuntimeError(f"crash phase exited {child.returncode}: {child.stderr[-2000:]}")
    db = sqlite3.connect(args.db_path("dbos.db"))
    done_steps = db.execute(
        "SELECT COUNT(*) FROM operation_outputs WHERE workflow_uuid = 'bench-resume'"
    ).fetchone()[0]
    db.close()
    if done_steps != crash_after:
        raise RuntimeError(f"expected {crash_after} recorded steps, found {done_steps}")

    started = time.perf_counter()
    _launch(args)
    DBOS.retrieve_workflow("bench-resume").get_result()
    ended = time.perf_counter()
    DBOS.destroy()
    return {
        "resume_s": ended - started,
        "claim_to_complete_s": ended - _MARKS["started"],
        "replayed_steps": crash_after,
        "new_steps": steps - crash_after,
    }


def queries(args: Args) -> dict[str, Any]:
    """list_workflows(limit=50, sort_desc=True): unfiltered and status="ERROR"; p50/p95 ms."""
    runs, calls = int(args.params["runs"]), int(args.params["calls"])
    _launch(args)
    with SetWorkflowID("template-ok"):
        DBOS.start_workflow(bench_workflow, 1).get_result()
    with SetWorkflowID("template-err"), contextlib.suppress(RuntimeError):
        DBOS.start_workflow(bench_workflow, -1).get_result()
    DBOS.destroy()
    _clone_workflows(args.db_path("dbos.db"), args.synchronous, runs)

    _launch(args)
    filters: dict[str, dict[str, Any]] = {"all": {}, "status": {"status": "ERROR"}}
    metrics: dict[str, Any] = {}
    for name, kwargs in filters.items():
        timings = []
        for i in range(calls + 3):  # the first three warm up
            t0 = time.perf_counter()
            found = DBOS.list_workflows(limit=50, sort_desc=True, **kwargs)
            elapsed = (time.perf_counter() - t0) * 1000
            if len(found) != 50:
                raise RuntimeError(f"list_workflows({kwargs}) returned {len(found)}, not 50")
            if i >= 3:
                timings.append(elapsed)
        metrics[f"{name}_p50_ms"], metrics[f"{name}_p95_ms"] = benchlib.percentiles(timings)
    DBOS.destroy()
    return metrics


def _clone_workflows(path: str, synchronous: str, runs: int) -> None:
    """Copy real template workflows' rows ``runs`` times with the benchmark's status mix.

    Completed and pending runs copy a successful workflow, failed runs a failed one. Pending
    copies belong to another executor, so this process's launch does not try to recover them
    (as pending runs of a crashed worker elsewhere would be).
    """
    db = benchlib.open_raw(path, synchronous)
    db.execute("BEGIN IMMEDIATE")
    for table in ("workflow_status", "workflow_input", "workflow_output"):
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
        templates = {}
        for name in ("template-ok", "template-err"):
            row = db.execute(f"SELECT * FROM {table} WHERE workflow_uuid = ?", (name,)).fetchone()
            templates[name] = None if row is None else dict(zip(columns, row, strict=True))
        rows = []
        for run, _label in benchlib.dataset_rows(runs):
            status = _STATUS[run[3]]
            base = templates["template-err" if status == "ERROR" else "template-ok"]
            if base is None or (status == "PENDING" and table == "workflow_output"):
                continue
            created = _BASE_MS + int(run[0][7:]) * 1000
            row = dict(base)
            row["workflow_uuid"] = run[0]
            overrides: dict[str, Any] = {"created_at": created, "updated_at": created + 500}
            if status == "PENDING":
                overrides |= {"status": status, "executor_id": "bench-other"}
                overrides |= {"output": None, "completed_at": None}
            elif "completed_at" in row:
                overrides["completed_at"] = created + 500
            row.update({k: v for k, v in overrides.items() if k in row})
            rows.append(tuple(row[c] for c in columns))
        marks = ", ".join("?" for _ in columns)
        db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    db.execute("COMMIT")
    db.close()


WORKLOADS = {"throughput": throughput, "latency": latency, "resume": resume, "queries": queries}


def main() -> None:
    """Run one workload once and print its result line."""
    args = benchlib.parse_args(__doc__.splitlines()[0], list(WORKLOADS))
    if args.phase == "crash":
        crash_phase(args)
        return
    metrics = WORKLOADS[args.workload](args)
    benchlib.emit(args, SYSTEM, metrics, _info(args))


if __name__ == "__main__":
    main()
