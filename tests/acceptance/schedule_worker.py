"""A worker process for the schedule test: its clock is a file the test moves.

Run as ``python schedule_worker.py URL CLOCK_FILE``: it opens the engine on ``URL`` (a
``sqlite:///`` or ``postgresql://`` one) with the
test's schedules declared (as a real worker does at every start), then loops until killed:
read the time from ``CLOCK_FILE``, :meth:`~durably_web.Durably.process_until_idle` (which
triggers due schedule ticks and runs their runs), a few real milliseconds of rest. Several
of these run at once on one database: they race for every tick.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from durably_web import StepContext, create_durably, define_job

HOURLY = ("hourly", "0 * * * *", "Europe/Berlin", "all")
DAILY = ("daily", "30 2 * * *", "Europe/Berlin", "latest")
SCHEDULES = (HOURLY, DAILY)


@define_job(name="tick", input=dict[str, Any])
async def tick_job(step: StepContext, payload: dict[str, Any]) -> Any:
    """Do nothing but checkpoint one step."""
    return await step.run("noop", lambda: payload)


class FileClock:
    """Time read from a file the test writes (epoch seconds); sleeps are short real ones."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> float:
        return float(self.path.read_text())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(min(seconds, 0.01))


async def main(db: str, clock_file: str) -> None:
    clock = FileClock(Path(clock_file))
    durably = create_durably(db, clock=clock, jobs={"tick": tick_job})
    for name, cron, zone, catch_up in SCHEDULES:
        await durably.schedule(name, "tick", cron, {"schedule": name}, zone, catch_up)
    print("ready", flush=True)
    while True:
        await durably.process_until_idle()
        await asyncio.sleep(0.002)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
