"""The durably_web workloads' measuring code, shared by the systems that run this project.

``durably_cpython.py`` (CPython, file database) and ``bench/browser/bench_jobs.py`` (Pyodide in
the benchmark's worker, OPFS) each build their engine their own way, with the ``bench`` job
registered, then measure it here, so both measure alike; ``dbos_python.py`` shares the
percentiles and the latency metrics (through ``benchlib``). Each workload closes the engine it
is given.

Stdlib-only at run time: it runs in the project's venv, in DBOS's and in Pyodide, where
``bench/systems/chromium.py`` serves it at ``/bench/bench_workloads.py`` and
``bench/browser/worker.mjs`` writes it beside ``bench_jobs.py``.
"""

from __future__ import annotations

import asyncio
import math
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from durably_web import Durably

__all__ = ["latency", "latency_metrics", "percentiles", "queries", "resume", "throughput"]


def percentiles(samples_ms: Sequence[float]) -> tuple[float, float]:
    """Return (p50, p95) of ``samples_ms``; p95 by nearest rank."""
    ordered = sorted(samples_ms)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return statistics.median(ordered), p95


def latency_metrics(
    trigger_call: Sequence[float], to_start: Sequence[float], to_complete: Sequence[float]
) -> dict[str, float]:
    """Return the latency metrics (ms): trigger call p50; to start and to complete p50, p95."""
    start_p50, start_p95 = percentiles(to_start)
    complete_p50, complete_p95 = percentiles(to_complete)
    return {
        "trigger_call_p50_ms": percentiles(trigger_call)[0],
        "start_p50_ms": start_p50,
        "start_p95_ms": start_p95,
        "complete_p50_ms": complete_p50,
        "complete_p95_ms": complete_p95,
    }


def _no_stage(name: str) -> None:
    pass


async def throughput(
    durably: Durably, runs: int, steps: int, stage: Callable[[str], object] = _no_stage
) -> dict[str, float]:
    """Steps/s over ``runs`` x ``steps``, first trigger to last completion.

    ``durably``: migrated, its worker not started. ``stage`` is told "workload" when the
    clock starts and "workload-done" when it stops.
    """
    loop = asyncio.get_running_loop()
    all_done: asyncio.Future[float] = loop.create_future()
    finished = {"completed": 0, "failed": 0}

    def on_end(event: Any) -> None:
        finished["completed" if event.type == "run:complete" else "failed"] += 1
        if sum(finished.values()) == runs and not all_done.done():
            all_done.set_result(time.perf_counter())

    durably.on("run:complete", on_end)
    durably.on("run:fail", on_end)
    stage("workload")
    started = time.perf_counter()
    for _ in range(runs):
        await durably.jobs.bench.trigger({"steps": steps})
    durably.start()
    ended = await all_done
    stage("workload-done")
    await durably.close()
    if finished["failed"]:
        raise RuntimeError(f"{finished['failed']} runs failed")
    wall = ended - started
    return {"steps_per_s": runs * steps / wall, "wall_s": wall}


async def latency(durably: Durably, samples: int, gap_ms: float) -> dict[str, float]:
    """Trigger → run:start and trigger → run:complete of a 1-step job on an idle worker.

    ``durably``: initialised (its worker started). Triggers ``samples`` + 2 runs (the first
    two warm up), each after a random pause of up to ``gap_ms``.
    """
    loop = asyncio.get_running_loop()
    rng = random.Random(1)
    marks: dict[str, float] = {}
    state: dict[str, asyncio.Future[float]] = {}

    def on_start(event: Any) -> None:
        marks.setdefault("start", time.perf_counter())

    def on_complete(event: Any) -> None:
        done = state.get("done")
        if done is not None and not done.done():
            done.set_result(time.perf_counter())

    durably.on("run:start", on_start)
    durably.on("run:complete", on_complete)
    to_start, to_complete, trigger_call = [], [], []
    for i in range(samples + 2):  # the first two warm up
        await asyncio.sleep(rng.uniform(0, gap_ms) / 1000)
        marks.clear()
        state["done"] = loop.create_future()
        t0 = time.perf_counter()
        await durably.jobs.bench.trigger({"steps": 1})
        returned = time.perf_counter()
        completed = await state["done"]
        if i >= 2:
            trigger_call.append((returned - t0) * 1000)
            to_start.append((marks["start"] - t0) * 1000)
            to_complete.append((completed - t0) * 1000)
    await durably.close()
    return latency_metrics(trigger_call, to_start, to_complete)


async def resume(
    engine: Callable[[], Durably],
    start: Callable[[Durably], Awaitable[object]],
    steps: int,
    crash_after: int,
) -> dict[str, float]:
    """Engine creation → completion of the run left behind with ``crash_after`` checkpoints.

    The clock starts before ``engine()`` builds the engine; ``start(durably)`` starts it, which
    claims the left run again and replays its checkpoints.
    """
    loop = asyncio.get_running_loop()
    completed: asyncio.Future[float] = loop.create_future()
    marks: dict[str, float] = {}

    def on_start(event: Any) -> None:
        marks.setdefault("claimed", time.perf_counter())

    def on_end(event: Any) -> None:
        if completed.done():
            return
        if event.type == "run:complete":
            completed.set_result(time.perf_counter())
        else:
            completed.set_exception(RuntimeError(event.error))

    started = time.perf_counter()
    durably = engine()
    durably.on("run:start", on_start)
    durably.on("run:complete", on_end)
    durably.on("run:fail", on_end)
    await start(durably)
    ended = await completed
    await durably.close()
    return {
        "resume_s": ended - started,
        "claim_to_complete_s": ended - marks["claimed"],
        "replayed_steps": crash_after,
        "new_steps": steps - crash_after,
    }


async def queries(durably: Durably, calls: int) -> dict[str, float]:
    """get_runs(limit=50): unfiltered, status="failed", labels={"org": "org-3"}: p50/p95 ms.

    ``durably``: migrated, holding the queries data set. Each query runs ``calls`` + 3 times
    (the first three warm up) and must find 50 runs.
    """
    filters: dict[str, dict[str, Any]] = {
        "all": {},
        "status": {"status": "failed"},
        "label": {"labels": {"org": "org-3"}},
    }
    metrics: dict[str, float] = {}
    for name, kwargs in filters.items():
        timings = []
        for i in range(calls + 3):  # the first three warm up
            t0 = time.perf_counter()
            found = await durably.get_runs(limit=50, **kwargs)
            elapsed = (time.perf_counter() - t0) * 1000
            if len(found) != 50:
                raise RuntimeError(f"get_runs({kwargs}) returned {len(found)} runs, not 50")
            if i >= 3:
                timings.append(elapsed)
        metrics[f"{name}_p50_ms"], metrics[f"{name}_p95_ms"] = percentiles(timings)
    await durably.close()
    return metrics
