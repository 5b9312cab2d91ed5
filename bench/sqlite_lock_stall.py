"""Measure how long the event loop freezes while another process holds SQLite's write lock.

    .venv/bin/python bench/sqlite_lock_stall.py [--hold 3] [--busy-timeout 5] [--repeat 3]

Another process takes ``BEGIN IMMEDIATE`` on the engine's file and holds it ``--hold`` seconds.
Meanwhile the engine triggers a run (a write that must wait for the lock) while a ticker task
wakes every 5 ms. Printed per repetition and as medians: how long the trigger took (it waits
for the lock) and the longest gap between two ticks (how long the loop was frozen: lease
renewals, SSE and HTTP of the same process wait that long), beside the longest gap of the
same ticker on an idle loop for as long (the machine's noise floor).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from durably_web import StepContext, create_durably, define_job

_HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


@define_job(name="noop", input=dict)
async def noop(step: StepContext, payload: dict[str, Any]) -> None:
    """Nothing: the trigger's write is what is measured."""


class Ticker:
    """A task waking every 5 ms that records the longest gap between two wake-ups."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    async def stop(self) -> float:
        """Stop ticking; return the longest gap in seconds."""
        self._stop.set()
        await self._task
        return self.longest


async def idle(seconds: float) -> float:
    """Return the longest gap of the ticker on an otherwise idle loop for ``seconds``."""
    ticker = Ticker()
    await asyncio.sleep(seconds)
    return await ticker.stop()


async def one(path: Path, hold: float, busy_timeout: float) -> tuple[float, float]:
    """Return (seconds the trigger took, longest loop stall in seconds) under a held lock."""
    durably = create_durably(f"sqlite:///{path}?busy_timeout={busy_timeout}", jobs={"noop": noop})
    await durably.migrate()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(path), str(hold)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    ticker = Ticker()
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    await durably.jobs.noop.trigger({})
    took = time.perf_counter() - started
    longest = await ticker.stop()
    holder.wait(30)
    holder.stdout.close()
    await durably.close()
    return took, longest


async def main() -> None:
    """Parse arguments, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hold", type=float, default=3.0, help="seconds the lock is held")
    parser.add_argument("--busy-timeout", type=float, default=5.0, help="the engine's")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    took, stalls, floors = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            t, s = await one(Path(tmp) / f"stall{i}.db", args.hold, args.busy_timeout)
            floor = await idle(args.hold)
            took.append(t)
            stalls.append(s)
            floors.append(floor)
            print(
                f"run {i}: trigger took {t:.3f} s, longest loop stall {s * 1000:.1f} ms "
                f"(idle loop: {floor * 1000:.1f} ms)"
            )
    print(
        f"median: trigger {statistics.median(took):.3f} s, "
        f"longest loop stall {statistics.median(stalls) * 1000:.1f} ms, "
        f"idle loop {statistics.median(floors) * 1000:.1f} ms "
        f"(lock held {args.hold:g} s, busy_timeout {args.busy_timeout:g} s)"
    )


if __name__ == "__main__":
    asyncio.run(main())
