"""The Store's cron schedules: stored definitions, and triggering a tick exactly once.

Mixed into :class:`~durably_web.storage.sqlite.SQLiteStore`, which owns the connection and the
queries. A schedule's row holds its next tick not triggered yet (``next_tick_at``). A worker
that finds it due computes the runs to create and the tick after (cron is the engine's work,
:mod:`durably_web.core.cron`) and calls :meth:`StoreSchedules.fire_schedule`: in one
transaction it moves ``next_tick_at`` on only if it still holds the tick the worker saw
(compare-and-set) and inserts the runs. Of several workers that saw one tick due, one moves it
on and creates its run; the others change nothing. Each run also carries the idempotency key
``schedule:<name>:<tick>``, so a tick is never triggered twice even by a schedule deleted and
declared again meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from durably_web.clock import format_timestamp, parse_timestamp
from durably_web.models import Run, Schedule
from durably_web.storage.connection import Connection
from durably_web.storage.lockwait import waits_for_lock
from durably_web.storage.records import NewRun, NewSchedule
from durably_web.storage.rows import schedule_from_row

__all__ = ["StoreSchedules"]


class StoreSchedules:
    """Schedules over ``self.connection`` (see the module docstring)."""

    connection: Connection
    _q: dict[str, str]

    if TYPE_CHECKING:  # provided by SQLiteStore
        _enqueue_one: Callable[[NewRun, str, float], Run]

    @waits_for_lock
    async def put_schedule(self, new: NewSchedule, now: float) -> Schedule:
        """See :meth:`Store.put_schedule`."""
        stamp = format_timestamp(now)
        params = (
            new.name,
            new.job_name,
            new.cron,
            new.timezone,
            new.input_json,
            new.catch_up,
            format_timestamp(new.next_tick),
            stamp,
        )
        with self.connection.transaction():
            self.connection.execute(self._q["put_schedule"], params)
            rows = self.connection.query(self._q["get_schedule"], (new.name,))
        return schedule_from_row(rows[0])

    @waits_for_lock
    async def delete_schedule(self, name: str) -> bool:
        """See :meth:`Store.delete_schedule`."""
        with self.connection.transaction():
            rows = self.connection.query(self._q["delete_schedule"], (name,))
        return bool(rows)

    @waits_for_lock
    async def get_schedules(self) -> list[Schedule]:
        """See :meth:`Store.get_schedules`."""
        return [schedule_from_row(row) for row in self.connection.query(self._q["get_schedules"])]

    @waits_for_lock
    async def next_schedule_tick(self, job_names: Iterable[str]) -> float | None:
        """See :meth:`Store.next_schedule_tick`."""
        names = set(job_names)
        ticks = [
            parse_timestamp(row["next_tick_at"])
            for row in self.connection.query(self._q["get_schedules"])
            if row["job_name"] in names
        ]
        return min(ticks, default=None)

    @waits_for_lock
    async def fire_schedule(
        self,
        name: str,
        tick: float,
        next_tick: float,
        last_tick: float,
        runs: Sequence[NewRun],
        now: float,
    ) -> list[Run] | None:
        """See :meth:`Store.fire_schedule`."""
        stamp = format_timestamp(now)
        params = (name, format_timestamp(tick), format_timestamp(next_tick))
        with self.connection.transaction():
            moved = self.connection.query(
                self._q["advance_schedule"], (*params, format_timestamp(last_tick), stamp)
            )
            if not moved:
                return None
            return [self._enqueue_one(new, stamp, now) for new in runs]
