"""The PostgreSQL store's durable waits: putting a run to wait, and signals.

Mixed into :class:`~durably_web.storage.postgres.store.PostgresStore`, as
:class:`~durably_web.storage.waits.StoreWaits` is into the SQLite store, with the same rules
(read that module): a waiting run holds no lease, the wait is recorded on its row, a signal is
kept in ``durably_signals`` until the wait of its name takes it.

What PostgreSQL adds is how other processes hear of it. Putting a run to wait with an end
``NOTIFY``-s ``durably_ready`` (the job name): idle workers of the job read their next wake-up
again and sleep until it on their own timer (no polling). A signal that wakes a waiting run
``NOTIFY``-s ``durably_ready`` too, so an idle worker of the job in any process claims the run
at once. Every change of a waiting run's state also goes to ``durably_run`` (watchers).

Concurrency: ``signal_run`` and ``await_signal`` run in one transaction each and lock the run
row first (``FOR UPDATE``), so a signal and the wait it is for are ordered: the signal either
lands before the wait (which then takes it) or after the run is ``waiting`` (and wakes it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from durably_web.clock import format_timestamp
from durably_web.errors import LeaseLost, NotFoundError, RunCancelled
from durably_web.models import Run
from durably_web.storage.postgres.database import Database, Session
from durably_web.storage.postgres.params import log_params, run_update, step_params
from durably_web.storage.records import NewWait, RunDelta, SignalWait, refuse_signal
from durably_web.storage.rows import run_from_row

__all__ = ["PostgresWaits"]


class PostgresWaits:
    """Waits and signals over ``self.database`` (see the module docstring)."""

    database: Database
    _q: dict[str, str]
    _notify: dict[str, str]

    if TYPE_CHECKING:  # provided by PostgresStore
        _held: Callable[[str, dict[str, Any]], Awaitable[list[dict[str, Any]]]]
        _refusal: Callable[..., Awaitable[RunCancelled | LeaseLost]]

    async def suspend_run(
        self, run_id: str, generation: int, wait: NewWait, now: float, delta: RunDelta
    ) -> None:
        """See :meth:`Store.suspend_run`."""
        params = self._suspend_params(run_id, generation, wait, now, delta)
        if await self._held(self._q["suspend_run"], params):
            return
        rows = await self._held(self._q["run_state"], {"run_id": run_id})
        state = rows[0] if rows else None
        if state is not None and (state["status"], state["lease_generation"]) == (
            "waiting",
            generation,
        ):
            return  # a first attempt lost with its connection did write it
        raise await self._refusal(run_id, state)

    def _suspend_params(
        self, run_id: str, generation: int, wait: NewWait, now: float, delta: RunDelta
    ) -> dict[str, Any]:
        return {
            **self._notify,
            **run_update(run_id, generation, delta, now),
            "kind": wait.kind,
            "wait_name": wait.name,
            "until": None if wait.until is None else format_timestamp(wait.until),
            "since": format_timestamp(wait.since),
        }

    async def signal_run(
        self, run_id: str, name: str, payload_json: str | None, now: float
    ) -> tuple[Run, bool]:
        """See :meth:`Store.signal_run`."""
        key = {"run_id": run_id, "name": name, "now": format_timestamp(now)}

        async def block(session: Session) -> tuple[Run, bool]:
            rows = await session.fetch(self._q["lock_run"], {"run_id": run_id})
            if not rows:
                raise NotFoundError(f"Run not found: {run_id}")
            run = run_from_row(rows[0])
            found = await session.fetch(self._q["find_signal"], key)
            done = await session.fetch(self._q["completed_step"], key)
            refuse_signal(
                run,
                name,
                found[0]["created_at"] if found else None,
                done[0]["completed_at"] if done else None,
            )
            await session.execute(self._q["insert_signal"], {**key, "payload": payload_json})
            woken = await session.fetch(self._q["wake_for_signal"], {**self._notify, **key})
            return (run_from_row(woken[0]), True) if woken else (run, False)

        return await self.database.in_transaction(block)

    async def await_signal(
        self,
        run_id: str,
        generation: int,
        *,
        name: str,
        index: int,
        since: float,
        until: float | None,
        now: float,
        delta: RunDelta,
        timed_out: str,
    ) -> SignalWait:
        """See :meth:`Store.await_signal`."""
        stamp = format_timestamp(now)
        fence = {"run_id": run_id, "generation": generation}

        async def block(session: Session) -> SignalWait | None:
            if not await session.fetch(self._q["lock_leased_run"], fence):
                return None
            taken = await session.fetch(
                self._q["receive_signal"], {"run_id": run_id, "name": name, "now": stamp}
            )
            if not taken and (until is None or until > now):
                wait = NewWait("signal", name, until, since)
                params = self._suspend_params(run_id, generation, wait, now, delta)
                await session.fetch(self._q["suspend_run"], params)
                return SignalWait("waiting")
            outcome = SignalWait("received", taken[0]["payload"]) if taken else None
            step = step_params(
                run_id,
                name,
                index,
                "completed",
                outcome.payload_json if outcome is not None else None,
                None if outcome is not None else timed_out,
            )
            step.update(
                started_at=format_timestamp(since),
                now=stamp,
                generation=generation,
                attempt=1,
                retry_at=None,
                **log_params(()),
            )
            await session.fetch(self._q["write_step"], step)
            await session.fetch(
                self._q["touch_run"], {**self._notify, **run_update(run_id, generation, delta, now)}
            )
            return outcome if outcome is not None else SignalWait("timed-out")

        outcome = await self.database.in_transaction(block)
        if outcome is None:
            raise await self._refusal(run_id)
        return outcome
