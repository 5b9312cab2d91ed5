"""The PostgreSQL store's cron schedules: stored definitions, and triggering a tick exactly once.

Mixed into :class:`~durably_web.storage.postgres.store.PostgresStore`, as
:class:`~durably_web.storage.schedules.StoreSchedules` is into the SQLite store, with the same
rules (read that module). A tick is triggered once across every worker process and machine by
the same means as there, which hold under PostgreSQL's concurrency too: in one transaction the
worker moves the schedule's ``next_tick_at`` on only if it still holds the tick it saw
(``UPDATE ... WHERE next_tick_at = tick``: a concurrent worker's update waits for the row lock,
then re-reads the row, finds the tick moved on and updates nothing) and inserts the tick's run,
whose idempotency key ``schedule:<name>:<tick>`` is unique per job (a unique index) besides.

Declaring a schedule ``NOTIFY``-s its job's workers (``durably_ready``), so an idle worker in
another process reads its next tick again at once; a triggered tick's runs are announced like
any trigger's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from durably_web.clock import format_timestamp, parse_timestamp
from durably_web.models import Run, Schedule
from durably_web.storage.postgres.database import Database, Session
from durably_web.storage.records import NewRun, NewSchedule
from durably_web.storage.rows import schedule_from_row

__all__ = ["PostgresSchedules"]


class PostgresSchedules:
    """Schedules over ``self.database`` (see the module docstring)."""

    database: Database
    _q: dict[str, str]
    _notify: dict[str, str]

    if TYPE_CHECKING:  # provided by PostgresStore
        _enqueue_all: Callable[[Session, Sequence[NewRun], float], Awaitable[list[Run]]]

    async def put_schedule(self, new: NewSchedule, now: float) -> Schedule:
        """See :meth:`Store.put_schedule`."""
        params: dict[str, Any] = {
            "name": new.name,
            "job_name": new.job_name,
            "cron": new.cron,
            "timezone": new.timezone,
            "input": new.input_json,
            "catch_up": new.catch_up,
            "next_tick": format_timestamp(new.next_tick),
            "now": format_timestamp(now),
        }

        async def block(session: Session) -> Schedule:
            await session.execute(self._q["put_schedule"], params)
            await session.fetch(
                self._q["notify_schedule"], {**self._notify, "job_name": new.job_name}
            )
            rows = await session.fetch(self._q["get_schedule"], params)
            return schedule_from_row(rows[0])

        return await self.database.in_transaction(block)

    async def delete_schedule(self, name: str) -> bool:
        """See :meth:`Store.delete_schedule`."""
        rows = await self.database.fetch(self._q["delete_schedule"], {"name": name}, retry=False)
        return bool(rows)

    async def get_schedules(self) -> list[Schedule]:
        """See :meth:`Store.get_schedules`."""
        rows = await self.database.fetch(self._q["get_schedules"], {}, retry=True)
        return [schedule_from_row(row) for row in rows]

    async def next_schedule_tick(self, job_names: Iterable[str]) -> float | None:
        """See :meth:`Store.next_schedule_tick`."""
        rows = await self.database.fetch(
            self._q["next_schedule_tick"], {"jobs": sorted(job_names)}, retry=True
        )
        due = rows[0]["due"]
        return None if due is None else parse_timestamp(due)

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
        params = {
            "name": name,
            "tick": format_timestamp(tick),
            "next_tick": format_timestamp(next_tick),
            "last_tick": format_timestamp(last_tick),
            "now": format_timestamp(now),
        }

        async def block(session: Session) -> list[Run] | None:
            if not await session.fetch(self._q["advance_schedule"], params):
                return None
            return await self._enqueue_all(session, runs, now)

        return await self.database.in_transaction(block)
