"""Measure the CPython engine: checkpointed steps/s and trigger → run:start latency.

    .venv/bin/python bench/cpython_engine.py [--steps 1000] [--repeat 5] [--synchronous NORMAL]

Prints the median of ``--repeat`` runs for: a ``--steps``-step job on a fresh file database
(each step returns a small JSON value and is committed before the next starts); the raw floor
of the same machine (one INSERT + COMMIT per row in a plain sqlite3 loop, same journal mode and
synchronous setting), measured alternately in the same run; and the latency from ``trigger``
returning to ``run:start`` on an idle started worker (p50/p95 of 200 triggers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from durably_web import StepContext, create_durably, define_job


def _job(steps: int) -> Any:
    @define_job(name="bench-steps", input=dict)
    async def bench_steps(step: StepContext, payload: dict[str, Any]) -> int:
        for i in range(steps):
            await step.run(f"step-{i}", lambda i=i: {"i": i, "ok": True})
        return steps

    return bench_steps


async def engine_steps_per_second(path: Path, steps: int, synchronous: str) -> float:
    """Run one ``steps``-step job on a fresh file database; return checkpointed steps/s."""
    durably = create_durably(f"sqlite:///{path}?synchronous={synchronous}")
    durably.register({"bench": _job(steps)})
    await durably.migrate()
    await durably.jobs.bench.trigger({})
    started = time.perf_counter()
    final = await durably.process_one()
    elapsed = time.perf_counter() - started
    assert final is not None, "the run was not claimed"
    assert final.status == "completed", final
    await durably.close()
    return steps / elapsed


def raw_commits_per_second(path: Path, rows: int, synchronous: str) -> float:
    """Insert ``rows`` rows, one transaction each, in a plain sqlite3 loop; return rows/s."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    value = json.dumps({"i": 0, "ok": True})
    started = time.perf_counter()
    for _ in range(rows):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (v) VALUES (?)", (value,))
        db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return rows / elapsed


async def trigger_to_start(path: Path, samples: int) -> tuple[float, float]:
    """Return p50 and p95 milliseconds from ``trigger`` returning to ``run:start``."""

    @define_job(name="noop", input=dict)
    async def noop(step: StepContext, payload: dict[str, Any]) -> None:
        await step.run("only", lambda: 1)

    durably = create_durably(f"sqlite:///{path}", polling_interval=1.0)
    durably.register({"noop": noop})
    await durably.init()
    loop = asyncio.get_running_loop()
    latencies = []
    for _ in range(samples):
        started: asyncio.Future[float] = loop.create_future()

        def on_start(event: Any, started: asyncio.Future[float] = started) -> None:
            if not started.done():
                started.set_result(time.perf_counter())

        unsubscribe = durably.on("run:start", on_start)
        run = await durably.jobs.noop.trigger({})
        triggered = time.perf_counter()
        start_time = await started
        latencies.append((start_time - triggered) * 1000)
        unsubscribe()
        await durably.wait_for_run(run.id)
        await asyncio.sleep(0.002)  # let the worker go idle again
    await durably.close()
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.95) - 1]


async def main() -> None:
    """Parse arguments, run every measurement, print medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--synchronous", default="NORMAL", choices=["NORMAL", "FULL"])
    args = parser.parse_args()
    engine, raw = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            engine.append(
                await engine_steps_per_second(
                    Path(tmp) / f"engine{i}.db", args.steps, args.synchronous
                )
            )
            raw_path = Path(tmp) / f"raw{i}.db"
            raw.append(raw_commits_per_second(raw_path, args.steps, args.synchronous))
        p50, p95 = await trigger_to_start(Path(tmp) / "latency.db", 200)
    engine_median, raw_median = statistics.median(engine), statistics.median(raw)
    print(f"WAL, synchronous {args.synchronous}, {args.steps} steps, median of {args.repeat}")
    print(f"engine steps/s      {engine_median:10.0f}   runs: {[round(x) for x in engine]}")
    print(f"raw commits/s       {raw_median:10.0f}   runs: {[round(x) for x in raw]}")
    print(f"engine / raw        {engine_median / raw_median:10.2f}")
    print(f"trigger->run:start  p50 {p50:.2f} ms   p95 {p95:.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
