"""Cron schedules: ``durably.schedule(...)`` and the worker timer that triggers their ticks.

A schedule is stored (:meth:`Store.put_schedule`) with its next tick. Every worker that
registers the schedule's job watches it as one of its timers
(:mod:`durably_web.core.timers`): the idle loop sleeps until the earliest next tick, then
:meth:`Schedules.fire` triggers what is due. Several workers (processes) may see one tick due
at once: :meth:`Store.fire_schedule` moves the schedule on only for the first of them
(compare-and-set on the next tick, in the transaction that inserts the runs), and each run's
idempotency key ``schedule:<name>:<tick>`` makes a second run for one tick impossible even so.
So a tick triggers exactly one run whatever the number of workers.

After downtime (no worker of the job ran when ticks came due), ``catch_up`` says what runs:

- ``"latest"`` (default): one run, for the last tick missed;
- ``"all"``: one run per missed tick, oldest first (at most :data:`MAX_CATCH_UP`, the latest);
- ``"none"``: no run for missed ticks; a tick counts as missed once it is more than
  :data:`ON_TIME` seconds late (a tick fired on time by an idle worker is milliseconds late).

Either way the schedule then waits for its next tick after now. Ticks are computed by
:mod:`durably_web.core.cron` in the schedule's time zone, DST included.

Schedules fire while a worker that registers the job runs: a worker process
(``durably-web worker``), a server, or in a browser a tab of the app (what came due while
none was open is caught up at the next open).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from durably_web.clock import format_timestamp
from durably_web.core.cron import check_cron, check_timezone, ticks_after
from durably_web.core.trigger import TriggerItem, announce, prepare
from durably_web.errors import NotFoundError, ValidationError
from durably_web.events import ScheduleTick
from durably_web.json_value import check_text, shown
from durably_web.models import CATCH_UPS, Run, Schedule
from durably_web.storage.records import NewRun, NewSchedule
from durably_web.validation import dump_json

if TYPE_CHECKING:
    from durably_web.core.durably import Durably

__all__ = ["MAX_CATCH_UP", "ON_TIME", "Schedules", "missed_ticks"]

MAX_CATCH_UP = 1000
"""The most runs ``catch_up="all"`` makes at once (the latest missed ticks)."""
ON_TIME = 60.0
"""Seconds after which a tick counts as missed for ``catch_up="none"``."""
_MAX_NAME = 255
_DAY = 86_400.0


def missed_ticks(cron: str, timezone: str, first: float, now: float, count: int) -> list[float]:
    """Return the last ``count`` ticks from ``first`` (a tick, included) to ``now``, in order.

    The search starts a day before ``now`` and reaches back (doubling) only as far as needed,
    so a schedule that fires every minute and missed a year costs a day of ticks, not a year.
    """
    window = _DAY
    while True:
        start = max(first - 1.0, now - window)  # cron ticks are whole minutes: first is in
        found: deque[float] = deque(maxlen=count)
        for tick in ticks_after(cron, timezone, start):
            if tick > now:
                break
            found.append(tick)
        if len(found) == count or start <= first - 1.0:
            return list(found)
        window *= 2


class Schedules:
    """The schedules of one engine, and its worker's timer for them (see the module docstring).

    Args:
        durably: the engine (its store, clock, jobs, events and worker).

    """

    def __init__(self, durably: Durably) -> None:
        self._durably = durably

    async def schedule(
        self,
        name: str,
        job_key: str,
        cron: str,
        input: Any = None,
        timezone: str = "UTC",
        catch_up: str = "latest",
    ) -> Schedule:
        """Store a schedule; see :meth:`Durably.schedule`."""
        durably = self._durably
        if not isinstance(name, str) or not name or len(name) > _MAX_NAME:
            raise ValidationError(
                f"schedule name must be a non-empty string of at most {_MAX_NAME} characters, "
                f"got {shown(name)}"
            )
        check_text(name, "schedule name")
        job = durably.job_by_name(job_key).definition
        check_timezone(timezone)
        check_cron(cron, timezone)
        if catch_up not in CATCH_UPS:
            raise ValidationError(
                f"catch_up must be one of {', '.join(map(repr, CATCH_UPS))}, got {shown(catch_up)}"
            )
        now = durably.clock.now()
        value = {} if input is None else input
        _, data = prepare(job, TriggerItem(value), durably.options.labels, now=now)
        first = next(ticks_after(cron, timezone, now))
        new = NewSchedule(
            name=name,
            job_name=job.name,
            cron=cron,
            timezone=timezone,
            input_json=dump_json(data, f"input of schedule {name!r}"),
            catch_up=catch_up,
            next_tick=first,
        )
        await durably.migrate()
        stored = await durably.store.put_schedule(new, now)
        durably.worker.wake()
        return stored

    async def unschedule(self, name: str) -> None:
        """Delete the schedule ``name``; see :meth:`Durably.unschedule`."""
        if not isinstance(name, str):
            raise ValidationError(f"schedule name must be a string, got {shown(name)}")
        await self._durably.migrate()
        if not await self._durably.store.delete_schedule(name):
            raise NotFoundError(f"Schedule not found: {name}")

    async def get_schedules(self) -> list[Schedule]:
        """Return every schedule, by name."""
        await self._durably.migrate()
        return await self._durably.store.get_schedules()

    # -- the worker's timer -------------------------------------------------------------

    async def next_due(self, now: float) -> float | None:
        """Return the earliest next tick of the schedules of the jobs registered here."""
        durably = self._durably
        if not durably.worker.jobs:
            return None
        return await durably.store.next_schedule_tick(durably.worker.jobs.keys())

    async def fire(self, now: float) -> None:
        """Trigger every due tick of the schedules of the jobs registered here."""
        jobs = self._durably.worker.jobs
        for schedule in await self._durably.store.get_schedules():
            if schedule.job_name in jobs and schedule.next_tick.timestamp() <= now:
                await self._fire(schedule, now)

    async def _fire(self, schedule: Schedule, now: float) -> None:
        durably = self._durably
        first = schedule.next_tick.timestamp()
        count = MAX_CATCH_UP if schedule.catch_up == "all" else 1
        due = missed_ticks(schedule.cron, schedule.timezone, first, now, count) or [first]
        last = due[-1]
        if schedule.catch_up == "none" and now - last > ON_TIME:
            chosen: list[float] = []
        else:
            chosen = due
        following = next(ticks_after(schedule.cron, schedule.timezone, max(now, last)))
        job = durably.worker.jobs[schedule.job_name]
        prepared = [
            prepare(
                job,
                TriggerItem(schedule.input, idempotency_key=_key(schedule.name, tick)),
                durably.options.labels,
                now=now,
            )
            for tick in chosen
        ]
        runs = await durably.store.fire_schedule(
            schedule.name, first, following, last, [new for new, _ in prepared], now
        )
        if runs is None:  # another worker triggered this tick
            return
        self._announce(schedule, runs, prepared, chosen)
        if runs:
            durably.worker.wake()

    def _announce(
        self,
        schedule: Schedule,
        runs: Sequence[Run],
        prepared: Sequence[tuple[NewRun, Any]],
        ticks: Sequence[float],
    ) -> None:
        bus = self._durably.worker.bus
        announce(bus, runs, prepared)
        for run, tick in zip(runs, ticks, strict=True):
            if run.disposition == "created":
                bus.emit(
                    ScheduleTick,
                    run_id=run.id,
                    job_name=run.job_name,
                    labels=run.labels,
                    schedule=schedule.name,
                    tick=format_timestamp(tick),
                )


def _key(name: str, tick: float) -> str:
    """Return the idempotency key of a schedule's run for one tick."""
    return f"schedule:{name}:{format_timestamp(tick)}"
