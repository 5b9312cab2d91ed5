"""A nightly report on a cron schedule, with a long-lived worker.

``on_start`` declares the schedule each time the worker starts (an unchanged schedule keeps
its next tick, so a night missed while no worker ran is caught up: ``catch_up="latest"``
makes one run for the last missed night). Start one worker or several; each night makes
exactly one run::

    durably-web worker examples/nightly_report.py --db reports.db
    durably-web schedules --db reports.db

``python examples/nightly_report.py`` shows the schedule's next ticks and runs a report now.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from pydantic import BaseModel

from durably_web import Durably, StepContext, create_durably, define_job


class ReportInput(BaseModel):
    """Which report to build."""

    team: str = "all"


@define_job(name="nightly-report", input=ReportInput)
async def nightly_report(step: StepContext, payload: ReportInput) -> dict[str, int]:
    """Gather yesterday's numbers and send the report, each a checkpointed step."""
    orders = await step.run("gather", lambda: 42)
    await step.run("send", lambda: step.log.info("Report sent", {"team": payload.team}))
    return {"orders": orders}


async def on_start(durably: Durably) -> None:
    """Declare the schedule: 03:00 every night, Berlin time (DST handled as cron does)."""
    await durably.schedule(
        "nightly-report",
        "nightly_report",
        "0 3 * * *",
        {"team": "all"},
        timezone="Europe/Berlin",
        catch_up="latest",
    )


async def main() -> None:
    """Declare the schedule, show it, and run one report now."""
    with tempfile.TemporaryDirectory() as folder:
        durably = create_durably(f"sqlite:///{Path(folder) / 'reports.db'}")
        durably.register({"nightly_report": nightly_report})
        await durably.migrate()
        await on_start(durably)
        for schedule in await durably.get_schedules():
            print(
                f"{schedule.name}: {schedule.cron} {schedule.timezone}, next {schedule.next_tick}"
            )
        durably.start()
        result = await durably.jobs.nightly_report.trigger_and_wait({"team": "sales"}, timeout=10)
        print(f"ran one now: {result.output}")
        await durably.stop()


if __name__ == "__main__":
    asyncio.run(main())
