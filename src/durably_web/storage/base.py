"""The `Store` protocol: every domain operation the engine needs from a database.

The engine core (:mod:`durably_web.core`) talks to storage only through this protocol, in
plain values: the records of :mod:`durably_web.models` and :mod:`durably_web.storage.records`,
strings of JSON, numbers of epoch seconds. :class:`~durably_web.storage.sqlite.SQLiteStore` is
one implementation; a store for a server database implements the same methods. Nothing
outside :mod:`durably_web.storage` names a concrete store:
:func:`~durably_web.storage.url.open_store` picks one from a URL or a connection.

Contract every implementation keeps (``tests/contract`` checks it):

- Methods are ``async``; a transaction never spans an ``await`` of anything but the driver.
- Every write a lease holder makes (``checkpoint_step``, ``record_failed_step``, ``flush``,
  ``renew_lease``, ``complete_run``, ``fail_run``, ``release_lease``, ``suspend_run``,
  ``await_signal``) is fenced by
  ``status = 'leased' AND lease_generation = generation``: when the fence refuses, nothing is
  written and the method returns False / None or raises :class:`RunCancelled` (the run was
  cancelled) or :class:`LeaseLost` (another worker holds it), as each method says.
- What a fenced write carries (a :class:`~durably_web.storage.records.RunDelta`: log lines to
  insert, progress and counters to set on the run; or only log lines) is written in the same
  transaction or not at all. The store never changes it; the caller forgets it once the write
  returned.
- Errors are :class:`~durably_web.errors.DurablyError` subclasses: a locked database
  :class:`~durably_web.storage.connection.DatabaseBusy` (transient), a constraint
  :class:`~durably_web.storage.connection.IntegrityViolation`, a broken one
  :class:`~durably_web.errors.StorageError`; never a driver's own exception.
- Timestamps in and out are epoch seconds (``now``) or aware datetimes (on records).
- A ``waiting`` run holds no lease; the wait it is in (kind, step name, end, start) stays
  recorded on the run through the claim that resumes it, until the run ends, is retried or
  waits again: the resumed step completes the wait it finds recorded.

A store that hears other processes' writes as they commit (PostgreSQL, through ``NOTIFY``) also
implements :class:`Notifications`, an optional part of the protocol: the engine wakes its idle
worker and updates its watchers on them, and polls (``polling_interval``) as the fallback.
A store without it (SQLite) is polled.

A store whose driver is synchronous underneath (SQLite) may also implement
:class:`CheckpointsNow`, another optional part: the engine then writes the common step's
checkpoint without awaiting anything (:mod:`durably_web.core.fastpath`). A store without it
(PostgreSQL) gets every checkpoint through ``checkpoint_step``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, runtime_checkable

from durably_web.models import Log, Run, Schedule, Step
from durably_web.storage.records import (
    CompletedStep,
    LogRow,
    NewRun,
    NewSchedule,
    NewWait,
    PendingRetry,
    RunDelta,
    RunFilter,
    SignalWait,
    StepRow,
)

__all__ = ["CheckpointsNow", "Notifications", "Store", "Subscriber", "Unsubscribe"]

Subscriber = Callable[[str | None], None]
"""Called with what a notification names (a job name, a run id), or ``None`` when some may
have been missed (the store lost its connection meanwhile): look at the database again."""

Unsubscribe = Callable[[], None]
"""Stops the calls a subscription asked for (idempotent)."""


@runtime_checkable
class Store(Protocol):
    """The domain operations on runs, steps and logs (see the module docstring)."""

    # -- schema -------------------------------------------------------------------------

    async def migrate(self, now: float) -> list[int]:
        """Apply every migration the database lacks (safe from several processes at once).

        Returns the versions applied. Raises :class:`StorageError` for a database of a newer
        schema than this release knows, writing nothing.
        """
        ...

    async def schema_version(self) -> int:
        """Return the highest migration version applied (0 for an empty database)."""
        ...

    # -- enqueue and claim --------------------------------------------------------------

    async def enqueue(self, new_runs: Sequence[NewRun], now: float) -> list[Run]:
        """Insert runs in one transaction; return each with its disposition.

        Per run, in order: an existing run with the same ``(job, idempotency_key)`` is
        returned (``idempotent``); a pending run with the same ``(job, concurrency_key)`` is
        returned (``coalesced``) with ``coalesce`` and is otherwise a :class:`ConflictError`
        that rolls the whole batch back; else the run is inserted (``created``). Runs of one
        batch see each other. A run with ``run_at`` is pending but not claimable before that
        time.
        """
        ...

    async def claim_next(
        self,
        owner: str,
        now: float,
        lease_duration: float,
        job_names: Iterable[str],
        run_id: str | None = None,
    ) -> Run | None:
        """Lease the claimable run of ``job_names`` (or ``run_id``) ready longest; None if none.

        Claimable: pending (past its ``run_at``), waiting with its wait over (its time passed or
        its signal arrived), or leased with an expired lease; and no live lease holds its
        concurrency key. Ready since: creation, or the end of its wait. The lease generation
        goes up by one (the fencing token of every write the new holder makes); a wait stays
        recorded, a delayed start is cleared.
        """
        ...

    async def next_wake(self, now: float, job_names: Iterable[str]) -> float | None:
        """Return the earliest time after ``now`` a run of ``job_names`` becomes claimable.

        The end of a wait or a delayed start (epoch seconds); None if no run is due later.
        """
        ...

    async def expire_leases(self, now: float) -> int:
        """Expire every live lease (for an engine that knows it is alone); return how many."""
        ...

    # -- the lease holder's writes (fenced) ---------------------------------------------

    async def check_lease(self, run_id: str, generation: int) -> None:
        """Raise :class:`RunCancelled` or :class:`LeaseLost` unless the lease is held."""
        ...

    async def checkpoint_step(
        self,
        run_id: str,
        generation: int,
        *,
        name: str,
        index: int,
        output_json: str | None,
        started_at: float,
        now: float,
        logs: Sequence[LogRow] = (),
        attempt: int = 1,
        steps: Sequence[StepRow] = (),
    ) -> None:
        """Persist a completed step with the run's unwritten ``logs`` (its row is left alone).

        ``steps`` (checkpoints kept for a group commit) are written first, in the same
        transaction.

        Raises :class:`RunCancelled` / :class:`LeaseLost` when fenced off, and
        :class:`ConflictError` when the step already has a completed checkpoint.
        """
        ...

    async def record_failed_step(
        self,
        run_id: str,
        generation: int,
        *,
        name: str,
        index: int,
        status: str,
        error: str,
        started_at: float,
        now: float,
        logs: Sequence[LogRow] = (),
        attempt: int = 1,
        retry_at: float | None = None,
        steps: Sequence[StepRow] = (),
    ) -> bool:
        """Record a step that raised (``failed``/``cancelled``) with ``logs``; False if fenced.

        ``attempt`` numbers the attempt (from 1); ``retry_at`` is when the next attempt of a
        failed one is due (:meth:`pending_retries` reads it back). ``steps`` (checkpoints kept
        for a group commit) are written first, in the same transaction.
        """
        ...

    async def flush(self, run_id: str, generation: int, delta: RunDelta, now: float) -> bool:
        """Write ``delta`` (progress, counters, log lines) on its own; False if fenced off."""
        ...

    async def renew_lease(
        self, run_id: str, generation: int, now: float, lease_duration: float
    ) -> str | None:
        """Extend a held lease; return the new expiry (wire text), None if fenced off."""
        ...

    async def complete_run(
        self,
        run_id: str,
        generation: int,
        output_json: str | None,
        now: float,
        delta: RunDelta,
        *,
        delete_steps: bool,
    ) -> None:
        """Mark the run completed; with ``delete_steps`` drop its steps and logs too.

        Raises :class:`RunCancelled` / :class:`LeaseLost` when fenced off.
        """
        ...

    async def fail_run(
        self, run_id: str, generation: int, error: str, now: float, delta: RunDelta
    ) -> None:
        """Mark the run failed with ``error`` (steps kept for a retry).

        Raises :class:`RunCancelled` / :class:`LeaseLost` when fenced off.
        """
        ...

    async def release_lease(
        self, run_id: str, generation: int, now: float, delta: RunDelta
    ) -> bool:
        """Hand an interrupted run back to the queue at once; False if fenced off.

        It goes back to pending, unless another run of its job already waits under its
        concurrency key: then it stays leased with an expired lease, claimable just the same.
        """
        ...

    async def suspend_run(
        self, run_id: str, generation: int, wait: NewWait, now: float, delta: RunDelta
    ) -> None:
        """Put the run to wait with ``delta``: status ``waiting``, lease released, wait recorded.

        A signal wait whose signal is already there leaves the run claimable at once.
        Raises :class:`RunCancelled` / :class:`LeaseLost` when fenced off.
        """
        ...

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
        """Take signal ``name`` for step ``name``, time out, or wait for it: one transaction.

        ``received``: the step is checkpointed with the payload as its output; ``timed-out``
        (``until`` passed): checkpointed with ``timed_out`` as its error; ``waiting``: as
        :meth:`suspend_run`. ``delta`` is written in every case. Raises :class:`RunCancelled`
        / :class:`LeaseLost` when fenced off.
        """
        ...

    # -- signals ------------------------------------------------------------------------

    async def signal_run(
        self, run_id: str, name: str, payload_json: str | None, now: float
    ) -> tuple[Run, bool]:
        """Keep a signal for the run; make a run waiting for it claimable now.

        Returns the run and whether it was woken. Raises :class:`NotFoundError` (no run) and
        :class:`ConflictError` (the run ended, already has a signal ``name``, or its step
        ``name`` completed).
        """
        ...

    # -- cron schedules -----------------------------------------------------------------
    # Cron arithmetic is the engine's (durably_web.core.cron): the store keeps definitions
    # and each schedule's next tick, and triggers a tick once (compare-and-set on it).

    async def put_schedule(self, new: NewSchedule, now: float) -> Schedule:
        """Insert a schedule, or replace one whose definition changed; return it as stored.

        The definition: job, cron, time zone, input, catch-up. An unchanged one keeps its
        stored next tick (``new.next_tick`` is ignored), so declaring the same schedule at
        every start catches up on missed ticks.
        """
        ...

    async def delete_schedule(self, name: str) -> bool:
        """Delete a schedule; return whether it existed (the runs it made stay)."""
        ...

    async def get_schedules(self) -> list[Schedule]:
        """Return every schedule, ordered by name."""
        ...

    async def next_schedule_tick(self, job_names: Iterable[str]) -> float | None:
        """Return the earliest next tick (epoch seconds) of the schedules of these jobs, or None."""
        ...

    async def fire_schedule(
        self,
        name: str,
        tick: float,
        next_tick: float,
        last_tick: float,
        runs: Sequence[NewRun],
        now: float,
    ) -> list[Run] | None:
        """Trigger a schedule's due tick once: in one transaction, if its next tick is still
        ``tick``, set it to ``next_tick`` (last tick ``last_tick``) and enqueue ``runs`` (as
        :meth:`enqueue` does: their idempotency keys make a tick's run unique); else change
        nothing and return None (another worker triggered it, or the schedule was changed or
        deleted).
        """  # noqa: D205 - the condition belongs to the summary
        ...

    # -- runs of jobs no worker knows ---------------------------------------------------

    async def unknown_job_runs(
        self, known: Iterable[str], waiting_since: float, now: float, limit: int
    ) -> list[Run]:
        """Return runs of jobs not in ``known`` that nothing claimed since ``waiting_since``.

        That is: pending since then (and past a delayed start), waiting with a wait that ended
        then, or leased with a lease that expired then; and no live lease on any run of their
        job (which would show a worker that knows the job).
        """
        ...

    async def flag_unknown_job(self, run_id: str, warning: str) -> bool:
        """Store ``warning`` as the error of a waiting run that has none; True if it did."""
        ...

    async def fail_unknown_job(
        self, run_id: str, error: str, waiting_since: float, now: float
    ) -> Run | None:
        """Fail a run still unclaimed since ``waiting_since``; None if claimed meanwhile."""
        ...

    # -- run management -----------------------------------------------------------------

    async def cancel_run(self, run_id: str, now: float) -> Run:
        """Cancel a pending, leased or waiting run.

        Raises :class:`NotFoundError` (no such run) or :class:`ConflictError` (it ended).
        """
        ...

    async def retry_run(self, run_id: str, now: float) -> Run:
        """Put a failed or cancelled run back to pending, same id, checkpoints kept.

        Raises :class:`NotFoundError` (no such run) or :class:`ConflictError` (the run is not
        failed or cancelled, or another run of its job already waits under its concurrency
        key).
        """
        ...

    async def delete_run(self, run_id: str) -> Run:
        """Delete a terminal run with its steps, logs, labels and signals; return it.

        Raises :class:`NotFoundError` (no such run) or :class:`ConflictError` (the run is
        pending, leased or waiting).
        """
        ...

    async def purge_runs(self, older_than: float, limit: int) -> int:
        """Delete up to ``limit`` terminal runs finished before ``older_than``; the count."""
        ...

    # -- reads --------------------------------------------------------------------------

    async def get_run(self, run_id: str) -> Run | None:
        """Return the run, or None."""
        ...

    async def get_runs(self, run_filter: RunFilter) -> list[Run]:
        """Return runs matching the filter, newest first."""
        ...

    async def get_steps(self, run_id: str) -> list[Step]:
        """Return a run's step records in index order."""
        ...

    async def get_logs(self, run_id: str) -> list[Log]:
        """Return a run's log lines, oldest first."""
        ...

    async def completed_steps(self, run_id: str) -> dict[str, CompletedStep]:
        """Return a run's completed checkpoints by step name (what a resumed run replays)."""
        ...

    async def replayed_logs(self, run_id: str) -> dict[str | None, int]:
        """Return how many stored log lines a resumed attempt logs again, by step (None: outside).

        Outside steps: every line. Of a step: the lines of its unfinished attempt (none of a
        completed step; none written before the step's last failed or cancelled row).
        """
        ...

    async def pending_retries(self, run_id: str) -> dict[str, PendingRetry]:
        """Return the steps whose last attempt failed with another due, by step name."""
        ...

    async def close(self) -> None:
        """Release the database (connections, pools)."""
        ...


@runtime_checkable
class Notifications(Protocol):
    """Optional: a store that tells of other processes' writes as they commit.

    Listeners are plain functions, called in the event loop; what this store's own engine
    wrote is not reported (it knows). Delivery is best effort: a notification may be late,
    and after a lost connection a listener is called once with ``None``.
    """

    def on_ready(self, listener: Subscriber) -> Unsubscribe:
        """Call ``listener(job_name)`` when another process makes a run of that job claimable."""
        ...

    def on_run_change(self, listener: Subscriber, run_id: str | None = None) -> Unsubscribe:
        """Call ``listener(run_id)`` when another process changes a run's state.

        Args:
            listener: called with the run's id (or ``None``, see the class docstring).
            run_id: only this run's changes (default: every run's).

        """
        ...


@runtime_checkable
class CheckpointsNow(Protocol):
    """Optional: a store that can write a checkpoint synchronously, without an ``await``."""

    def checkpoint_now(self, run_id: str, generation: int, row: StepRow) -> None:
        """Insert the completed step ``row`` (fenced by ``generation``) alone, at once.

        The same write as ``checkpoint_step`` with no log lines and no kept steps, and the
        same errors: :class:`RunCancelled` / :class:`LeaseLost` when fenced off,
        :class:`ConflictError` when the step already has a completed checkpoint, and
        :class:`~durably_web.storage.connection.DatabaseBusy` (nothing written; no wait
        here: the caller makes the write again through ``checkpoint_step``, which waits).
        """
        ...
