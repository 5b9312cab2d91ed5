"""The Store's durable waits: putting a run to wait, and signals.

Mixed into :class:`~durably_web.storage.sqlite.SQLiteStore`, which owns the connection, the
queries and the lease fence. A waiting run (status ``waiting``) holds no lease: the wait it is
in is recorded on its row (``wait_kind``, ``wait_name``, ``wait_until``, ``wait_started_at``),
and ``claim_next`` takes it again once ``wait_until`` passed. A signal to a run waiting for it
sets ``wait_until`` to the time it arrived, so the run is claimable at once.

Signals are kept in ``durably_signals``, one per ``(run, name)``: a signal sent before the run
waits for it stays there until the wait takes it, in the same transaction that checkpoints the
waiting step. A second signal of a name the run already has is refused, as is one to a run
whose step of that name already completed: step names are unique in a run, so no later wait
could ever take it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from durably_web.clock import format_timestamp
from durably_web.errors import LeaseLost, RunCancelled
from durably_web.ids import new_ulid
from durably_web.models import Run
from durably_web.storage.connection import Connection, Param
from durably_web.storage.lockwait import waits_for_lock
from durably_web.storage.records import NewWait, RunDelta, SignalWait, refuse_signal
from durably_web.storage.rows import run_from_row

__all__ = ["StoreWaits"]


class StoreWaits:
    """Waits and signals over ``self.connection`` (see the module docstring)."""

    connection: Connection
    _q: dict[str, str]

    if TYPE_CHECKING:  # provided by SQLiteStore
        _fenced: Callable[..., bool]
        _refusal: Callable[[str], RunCancelled | LeaseLost]
        _invalidate: Callable[[], None]
        _require: Callable[[str], Run]

    @waits_for_lock
    async def suspend_run(
        self, run_id: str, generation: int, wait: NewWait, now: float, delta: RunDelta
    ) -> None:
        """See :meth:`Store.suspend_run`."""
        suspend = self._suspend(run_id, generation, wait, now, delta)
        if not self._fenced(suspend, delta.logs, steps=delta.steps):
            raise self._refusal(run_id)

    def _suspend(
        self, run_id: str, generation: int, wait: NewWait, now: float, delta: RunDelta
    ) -> tuple[str, Sequence[Param]]:
        until = None if wait.until is None else format_timestamp(wait.until)
        params = (
            run_id,
            generation,
            wait.kind,
            wait.name,
            until,
            format_timestamp(wait.since),
            delta.progress_json,
            delta.current_step_index,
            delta.completed_step_count,
            format_timestamp(now),
        )
        return self._q["suspend_run"], params

    @waits_for_lock
    async def signal_run(
        self, run_id: str, name: str, payload_json: str | None, now: float
    ) -> tuple[Run, bool]:
        """See :meth:`Store.signal_run`."""
        stamp = format_timestamp(now)
        with self.connection.transaction():
            run = self._require(run_id)
            found = self.connection.query(self._q["find_signal"], (run_id, name))
            done = self.connection.query(self._q["completed_step"], (run_id, name))
            refuse_signal(
                run,
                name,
                found[0]["created_at"] if found else None,
                done[0]["completed_at"] if done else None,
            )
            self.connection.execute(self._q["insert_signal"], (run_id, name, payload_json, stamp))
            woken = self.connection.query(self._q["wake_for_signal"], (run_id, name, stamp))
        return (run_from_row(woken[0]), True) if woken else (run, False)

    @waits_for_lock
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
        with self.connection.transaction():
            state = self.connection.query(self._q["run_state"], (run_id,))
            if not state or (state[0]["status"], state[0]["lease_generation"]) != (
                "leased",
                generation,
            ):
                raise self._refusal(run_id)
            for kept in delta.steps:  # checkpoints kept for a group commit go first
                self.connection.execute(self._q["insert_step"], kept)
            taken = self.connection.query(self._q["receive_signal"], (run_id, name, stamp))
            if taken:
                payload = taken[0]["payload"]
                outcome = SignalWait("received", payload)
                step = self._checkpoint(run_id, generation, name, index, since, now, payload)
            elif until is not None and until <= now:
                outcome = SignalWait("timed-out")
                step = self._checkpoint(
                    run_id, generation, name, index, since, now, None, timed_out
                )
            else:
                outcome = SignalWait("waiting")
                wait = NewWait("signal", name, until, since)
                step = self._suspend(run_id, generation, wait, now, delta)
            self.connection.execute(*step)
            if outcome.state != "waiting":  # suspend_run wrote the run's fields itself
                touch = (run_id, generation, *delta.run_fields(), stamp)
                self.connection.execute(self._q["touch_run"], touch)
            for log in delta.logs:
                self.connection.execute(self._q["insert_log"], log)
        return outcome

    def _checkpoint(
        self,
        run_id: str,
        generation: int,
        name: str,
        index: int,
        since: float,
        now: float,
        output_json: str | None,
        error: str | None = None,
    ) -> tuple[str, Sequence[Param]]:
        step = (
            new_ulid(now),
            run_id,
            name,
            index,
            "completed",
            output_json,
            error,
            format_timestamp(since),
            format_timestamp(now),
            generation,
            1,
            None,
        )
        return self._q["insert_step"], step
