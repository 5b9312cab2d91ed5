"""Durable waits and schedules, measured: wake lateness and mass wake-up throughput.

    .venv/bin/python bench/waits.py [--samples 200] [--runs 10000] [--quick] [--json PATH]
                                    [--url postgresql://...]

durably_web only (no peer has durable waits). One engine on a file database (WAL, the
defaults), or on the PostgreSQL database ``--url`` names, with a polling interval of 60 s so
that every wake-up measured comes from the worker's own timer or from ``signal()``, never from
polling:

- **sleep lateness**: a run sleeps 50 ms; lateness is the time from the end of its sleep
  (``waiting.until``) to its resumption (``run:start``), one sample at a time on an idle
  worker; p50 / p99 / max over ``--samples``.
- **signal lateness**: a run waits for a signal; lateness is the time from ``signal()``
  returning to the run's resumption (``run:start``); p50 / p99 / max.
- **mass wake-up**: ``--runs`` runs each ``sleep_until`` one time T, all waiting; then the
  engine's clock jumps to T (a clock shifted by a constant: the engine sees every run come
  due at once) and the worker (``max_concurrent_runs=10``) runs them to completion:
  runs/s from T to the last ``run:complete``, and the store calls made meanwhile per woken run
  (``store_calls_per_run``, by method: on PostgreSQL each is one statement, a round trip).

Prints a Markdown table and writes the numbers to ``--json``. The targets (issue 11): each
p50 and p99 lateness under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from durably_web import Durably, StepContext, create_durably, define_job

TARGET_MS = 50.0


@define_job(name="nap", input=dict[str, Any])
async def nap(step: StepContext, payload: dict[str, Any]) -> None:
    """Sleep ``payload['seconds']``, or until ``payload['until']`` (ISO text)."""
    if "until" in payload:
        await step.sleep_until("nap", datetime.fromisoformat(payload["until"]))
    else:
        await step.sleep("nap", payload["seconds"])


@define_job(name="approve", input=dict[str, Any])
async def approve(step: StepContext, payload: dict[str, Any]) -> Any:
    """Wait for the signal ``go``."""
    return await step.wait_for_signal("go")


class ShiftedClock:
    """The system clock plus a shift the bench sets (to make a whole batch due at once)."""

    def __init__(self) -> None:
        self.shift = 0.0

    def now(self) -> float:
        """Return the system time plus the shift."""
        return time.time() + self.shift

    async def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        await asyncio.sleep(seconds)


def percentiles(samples: list[float]) -> dict[str, float]:
    """Return p50, p99, max and mean of ``samples`` (seconds) in milliseconds."""
    ordered = sorted(samples)
    at = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]  # noqa: E731
    return {
        "p50_ms": at(0.50) * 1000,
        "p99_ms": at(0.99) * 1000,
        "max_ms": ordered[-1] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


async def engine(database: str, **options: Any) -> Durably:
    """Start an engine on the database URL ``database`` (polling every 60 s only)."""
    durably = create_durably(
        database,
        jobs={"nap": nap, "approve": approve},
        polling_interval=60,
        **options,
    )
    await durably.init()
    return durably


class Watch:
    """The last ``run:wait`` end and the last ``run:start`` time of each run."""

    def __init__(self, durably: Durably) -> None:
        self.until: dict[str, float] = {}
        self.started: dict[str, float] = {}
        durably.on("run:wait", self._wait)
        durably.on("run:start", self._start)

    def _wait(self, event: Any) -> None:
        if event.waiting.until is not None:
            self.until[event.run_id] = event.waiting.until.timestamp()

    def _start(self, event: Any) -> None:
        self.started[event.run_id] = time.time()


async def sleep_lateness(database: str, samples: int) -> list[float]:
    """Lateness of a due 50 ms sleep's resumption, one run at a time."""
    durably = await engine(database)
    watch = Watch(durably)
    late: list[float] = []
    try:
        for _ in range(samples):
            run = await durably.jobs.nap.trigger({"seconds": 0.05})
            await durably.wait_for_run(run.id, timeout=30)
            late.append(watch.started[run.id] - watch.until[run.id])
    finally:
        await durably.stop()
    return late


async def signal_lateness(database: str, samples: int) -> list[float]:
    """Time from ``signal()`` returning to the waiting run's resumption."""
    durably = await engine(database)
    watch = Watch(durably)
    waiting = asyncio.Event()
    durably.on("run:wait", lambda _e: waiting.set())
    late: list[float] = []
    try:
        for i in range(samples):
            waiting.clear()
            run = await durably.jobs.approve.trigger({})
            await asyncio.wait_for(waiting.wait(), 30)
            await durably.signal(run.id, "go", i)
            sent = time.time()
            await durably.wait_for_run(run.id, timeout=30)
            late.append(watch.started[run.id] - sent)
    finally:
        await durably.stop()
    return late


class StoreCalls:
    """Counts the calls of each async method of an engine's store while :attr:`on` is True."""

    def __init__(self, durably: Durably) -> None:
        self.on = False
        self.counts: Counter[str] = Counter()
        store = durably.store
        for name in dir(type(store)):
            method = getattr(store, name)
            if not name.startswith("_") and inspect.iscoroutinefunction(method):
                setattr(store, name, self._counted(name, method))

    def _counted(self, name: str, method: Any) -> Any:
        async def counted(*args: Any, **kwargs: Any) -> Any:
            if self.on:
                self.counts[name] += 1
            return await method(*args, **kwargs)

        return counted


async def mass_wakeup(database: str, runs: int) -> dict[str, Any]:
    """Make ``runs`` runs due at one instant; measure runs/s from then to the last completion."""
    clock = ShiftedClock()
    durably = await engine(database, clock=clock, max_concurrent_runs=10)
    due = clock.now() + 86_400
    until = datetime.fromtimestamp(due, UTC).isoformat()
    completed = 0
    all_done = asyncio.Event()

    def complete(_event: Any) -> None:
        nonlocal completed
        completed += 1
        if completed == runs:
            all_done.set()

    waiting = 0

    def waits(_event: Any) -> None:
        nonlocal waiting
        waiting += 1

    durably.on("run:wait", waits)
    calls = StoreCalls(durably)
    try:
        queued = time.monotonic()
        for start in range(0, runs, 1000):
            await durably.jobs.nap.batch_trigger([{"until": until}] * min(1000, runs - start))
        while waiting < runs:
            await asyncio.sleep(0.05)
        to_waiting = time.monotonic() - queued
        durably.on("run:complete", complete)
        began = time.monotonic()
        calls.on = True
        clock.shift = due - time.time()  # it is now T: every run is due
        durably.worker.wake()
        await asyncio.wait_for(all_done.wait(), 3600)
        seconds = time.monotonic() - began
        calls.on = False
    finally:
        await durably.stop()
    return {
        "runs": runs,
        "seconds": seconds,
        "runs_per_s": runs / seconds,
        "seconds_to_all_waiting": to_waiting,
        "store_calls_per_run": {
            name: round(count / runs, 2) for name, count in calls.counts.most_common()
        },
    }


def row(name: str, values: dict[str, float]) -> str:
    """Return one Markdown table row of percentiles."""
    return f"| {name} | {values['p50_ms']:.1f} | {values['p99_ms']:.1f} | {values['max_ms']:.1f} |"


async def main() -> int:
    """Run the three measurements; print them; write ``--json``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="20 samples, 500 runs")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--url", help="a postgresql:// database to run on (default: SQLite files)")
    args = parser.parse_args()
    samples, runs = (20, 500) if args.quick else (args.samples, args.runs)
    with tempfile.TemporaryDirectory() as folder:
        databases = [args.url or f"sqlite:///{folder}/{name}.db" for name in ("a", "b", "c")]
        sleeps = percentiles(await sleep_lateness(databases[0], samples))
        signals = percentiles(await signal_lateness(databases[1], samples))
        wake = await mass_wakeup(databases[2], runs)
    print(f"Wake lateness, {samples} samples each (ms)\n")
    print("| wake-up | p50 | p99 | max |\n|---|---|---|---|")
    print(row("due sleep", sleeps))
    print(row("signal", signals))
    print(
        f"\nMass wake-up: {wake['runs']} runs due at once completed in {wake['seconds']:.1f}s: "
        f"{wake['runs_per_s']:.0f} runs/s ({wake['seconds_to_all_waiting']:.1f}s to get them "
        "all waiting first)"
    )
    per_run = wake["store_calls_per_run"]
    print(
        f"Store calls per woken run: {sum(per_run.values()):.2f} ("
        + ", ".join(f"{name} {count:g}" for name, count in per_run.items())
        + ")"
    )
    ok = all(v[k] < TARGET_MS for v in (sleeps, signals) for k in ("p50_ms", "p99_ms"))
    print(f"\ntarget p50 and p99 < {TARGET_MS:.0f} ms: {'met' if ok else 'NOT met'}")
    if args.json:
        data = {"sleep": sleeps, "signal": signals, "mass_wakeup": wake, "target_met": ok}
        args.json.write_text(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
