"""Runtime: execute one claimed run from the top to its outcome.

Completed steps replay from their checkpoints; new steps run and are checkpointed; the
outcome (completed with validated output, or failed with the error) is written with the same
lease fence. A cancellation or a lost lease ends the attempt without writing anything more;
a worker stopped mid-run hands the run back to the queue at once.

Whatever goes wrong ends in one of three clear ways, never in a task that dies silently:

- **The run is at fault** (its job raised, its input no longer validates, a stored checkpoint
  or its stored input cannot be parsed): the run fails with a message saying so (``run:fail``).
- **The database is busy** (another connection held the lock past ``busy_timeout``): the
  engine's own write is tried again, with backoff, until the lock clears. A lock never fails a
  run.
- **The database is broken** (disk full, corrupt, read-only): the attempt stops without marking
  the run failed, hands it back if it can, and the worker stops with the error
  (``worker:error`` with context ``worker-stopped``); runs resume once the database is healthy.

The outcome write is shielded from task cancellation: a worker stopped at that moment lets the
write finish instead of leaving the run half-done.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import pydantic

from durably_web.clock import Clock
from durably_web.core.step import StepContext, _message
from durably_web.errors import LeaseLost, RunCancelled, StorageError, ValidationError
from durably_web.events import EventBus, RunCancel, RunComplete, RunFail, RunStart
from durably_web.job import JobDefinition
from durably_web.json_value import escape_surrogates
from durably_web.models import Run, wire_time
from durably_web.options import MAX_LEASE_DURATION
from durably_web.storage.connection import DatabaseBusy, IntegrityViolation
from durably_web.storage.records import Pending
from durably_web.storage.sqlite import SQLiteStore
from durably_web.validation import dump_json, format_pydantic_error, parse, to_json_value

__all__ = ["Execution", "Host", "Overrun", "StepBlocked"]

T = TypeVar("T")

_BUSY_FIRST_DELAY = 0.05
_BUSY_MAX_DELAY = 1.0
_BUSY_REPORT_EVERY = 60.0
"""Seconds between ``worker:error`` reports while one write waits for a lock."""
_MAX_ERROR = 100_000
"""Characters of a failure message stored at most."""
_MAX_LOSSES = 2
"""Times one worker may lose a run to a step that blocks past the lease before failing it."""


class Host(Protocol):
    """What an execution needs from its worker."""

    store: SQLiteStore
    bus: EventBus
    clock: Clock

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` as a supervised background task."""
        ...

    def keep(self, task: asyncio.Future[Any], name: str) -> None:
        """Let ``task`` finish in the background; ``stop()`` waits for it."""
        ...

    def report(self, error: BaseException, context: str, run: Run | None = None) -> None:
        """Emit ``worker:error``."""
        ...

    def halt(self, error: StorageError, run: Run) -> None:
        """Stop the worker: the database failed under ``run``."""
        ...

    def lost_to_block(self, run: Run, step: str, seconds: float) -> None:
        """Remember that ``step`` blocked past the lease and another worker took ``run``."""
        ...


@dataclass(frozen=True, slots=True)
class Overrun:
    """A worker lost a run because ``step`` blocked for ``seconds``, ``losses`` times."""

    step: str
    seconds: float
    losses: int


class StepBlocked(Warning):
    """A step ran past the run's lease without the lease being renewed (``step-blocked``)."""


class _RunAtFault(Exception):
    """The stored run cannot be executed; the message says why. The run fails with it."""


class Execution:
    """One attempt at one claimed run.

    Args:
        run: the run as claimed; its ``lease_generation`` fences every write.
        job: the job definition to call.
        host: the worker executing it (store, bus, clock, supervision).
        lease_duration: seconds each lease renewal extends the lease by.
        preserve_steps: keep step and log rows after the run completes.
        persist_logs: write ``step.log`` lines to the database.
        overrun: set when this worker lost this run before to a step that blocked past its
            lease: the lease is extended for this attempt, or the run fails after
            :data:`_MAX_LOSSES` such losses.

    Attributes:
        lease_until: when the lease expires (epoch seconds), as last claimed or renewed.
        failure: the storage error that broke this attempt, if any.

    """

    def __init__(
        self,
        run: Run,
        job: JobDefinition[Any, Any],
        host: Host,
        *,
        lease_duration: float,
        preserve_steps: bool,
        persist_logs: bool,
        overrun: Overrun | None = None,
    ) -> None:
        self.run = run
        self.job = job
        self.host = host
        self.store = host.store
        self.bus = host.bus
        self.clock = host.clock
        self.lease_duration = lease_duration
        expires = run.lease_expires_at
        self.lease_until = (
            expires.timestamp() if expires is not None else self.clock.now() + lease_duration
        )
        self.preserve_steps = preserve_steps
        self.persist_logs = persist_logs
        self.overrun = overrun
        self.failed_step_name: str | None = None
        self.cancel_announced = False
        self.lost_block = False
        self.failure: StorageError | None = None
        self.step: StepContext | None = None
        self._outcome_task: asyncio.Future[Any] | None = None

    def report(self, error: BaseException, context: str) -> None:
        """Route an internal error of this execution to ``worker:error``."""
        self.host.report(error, context, self.run)

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` as a supervised background task of the worker."""
        self.host.spawn(coro, name)

    def abort(self, reason: str) -> None:
        """Abort the job's signal (``cancelled``, ``lease-lost`` or ``stopped``)."""
        if self.step is not None:
            self.step.signal.abort(reason)

    async def store_call(
        self, what: str, call: Callable[[], Awaitable[T]], *, wait_busy: bool = True
    ) -> T:
        """Make one of the engine's own storage calls for this run.

        Args:
            what: what the call does, for ``worker:error`` reports.
            call: makes the call (called again for each try).
            wait_busy: retry while the database is busy (else raise :class:`DatabaseBusy`).

        A :class:`DatabaseBusy` is retried with backoff for as long as the lock is held,
        reported as ``worker:error`` when the wait starts and once a minute after. Any other
        :class:`StorageError` means the database is broken: the attempt halts (its signal
        aborts with ``stopped``) and the error is raised. Data errors (a constraint, a value
        too large) are raised as they are: the run is at fault, not the database.
        """
        delay = _BUSY_FIRST_DELAY
        reported_at: float | None = None
        while True:
            try:
                return await call()
            except DatabaseBusy as exc:
                if not wait_busy:
                    raise
                now = self.clock.now()
                if reported_at is None or now - reported_at >= _BUSY_REPORT_EVERY:
                    reported_at = now
                    self.report(exc, f"{what}: waiting for the database lock")
                await self.clock.sleep(delay)
                delay = min(delay * 2, _BUSY_MAX_DELAY)
            except IntegrityViolation:
                raise
            except StorageError as exc:
                self.broken(exc)
                raise

    def broken(self, error: StorageError) -> None:
        """Record that the database failed under this attempt; abort the job's signal."""
        if self.failure is None:
            self.failure = error
        self.abort("stopped")

    async def execute(self) -> None:
        """Run the job to its outcome; never raises except ``asyncio.CancelledError``."""
        run, clock, store = self.run, self.clock, self.store
        started = clock.now()
        self.bus.emit(
            RunStart,
            run_id=run.id,
            job_name=run.job_name,
            labels=run.labels,
            input=run.input,
            lease_owner=run.lease_owner or "",
            lease_expires_at=wire_time(run.lease_expires_at) or "",
        )
        try:
            step = await self._begin()
            payload = parse(self.job.input_adapter, run.input, f"input of run {run.id}")
            result = await self.job.call(step, payload)
            step.throw_if_aborted()
            output_json = self._output_json(result)
            await self._outcome(
                "complete",
                lambda: store.complete_run(
                    run.id,
                    run.lease_generation,
                    output_json,
                    clock.now(),
                    step.pending,
                    delete_steps=not self.preserve_steps,
                ),
            )
        except asyncio.CancelledError:
            await self._interrupted()
            raise
        except Exception as exc:  # noqa: BLE001 - every error ends the attempt one clear way
            try:
                await self._settle(exc)
            except Exception as error:  # noqa: BLE001 - never let the task die silently
                self.report(error, "run-outcome")
                await self._interrupted()
            return
        self.bus.emit(
            RunComplete,
            run_id=run.id,
            job_name=run.job_name,
            labels=run.labels,
            output=None if output_json is None else json.loads(output_json),
            duration=int((clock.now() - started) * 1000),
        )

    async def _begin(self) -> StepContext:
        """Read what the run needs to resume, then build its step context.

        Raises:
            _RunAtFault: a checkpoint, the input or the labels cannot be read, or a step
                blocked past the lease too often.
            StorageError: the database failed (the attempt has halted).

        """
        run, store = self.run, self.store
        for column in ("input", "labels"):
            if column in run.unreadable:
                raw = run.unreadable[column]
                raise _RunAtFault(
                    f"Cannot execute run {run.id}: its stored {column} cannot be read "
                    f"({_snippet(raw)}). Fix the row in durably_runs, then retry the run."
                )
        checkpoints = await self.store_call("resume", lambda: store.completed_steps(run.id))
        logs = await self.store_call("resume", lambda: store.count_replayed_logs(run.id))
        completed: dict[str, Any] = {}
        for name, checkpoint in checkpoints.items():
            text = checkpoint.output_json
            try:
                completed[name] = None if text is None else json.loads(text)
            except (ValueError, RecursionError) as exc:
                raise _RunAtFault(
                    f"Cannot resume run {run.id}: the stored result of step {name!r} cannot "
                    f"be read ({exc}: {_snippet(text or '')}). Fix or delete that row of "
                    "durably_steps, then retry the run."
                ) from None
        current_index = max((c.index + 1 for c in checkpoints.values()), default=0)
        self.step = StepContext(self, completed, current_index, logs_written=logs)
        if self.overrun is not None:
            await self._extend_lease(self.overrun)
        return self.step

    async def _extend_lease(self, overrun: Overrun) -> None:
        """Give a run this worker lost to a blocking step a lease long enough for that step."""
        run = self.run
        if overrun.losses >= _MAX_LOSSES:
            raise _RunAtFault(
                f"Step {overrun.step!r} blocked the worker for {overrun.seconds:.1f}s, longer "
                f"than the lease, {overrun.losses} times: each time another worker took the run "
                "over and the step's result was discarded. Make the step await (run blocking "
                "code with asyncio.to_thread) or raise lease_duration above "
                f"{overrun.seconds:.0f}s, then retry the run."
            )
        duration = min(max(2 * overrun.seconds, self.lease_duration), MAX_LEASE_DURATION)
        now = self.clock.now()
        renewed = await self.store_call(
            "extend lease",
            lambda: self.store.renew_lease(run.id, run.lease_generation, now, duration),
        )
        if renewed is None:
            raise LeaseLost(f"Lease ownership was lost: {run.id}")
        self.lease_duration = duration
        self.lease_until = now + duration

    async def _outcome(self, what: str, call: Callable[[], Awaitable[None]]) -> None:
        """Write the outcome, shielded: if this task is cancelled, the write still finishes."""
        task = asyncio.ensure_future(self.store_call(what, call))
        self._outcome_task = task
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                self.host.keep(task, f"{what}-outcome")
            raise

    async def _settle(self, exc: Exception) -> None:
        """End the attempt after ``exc``: halt, stop quietly, or fail the run."""
        if self.failure is not None:
            await self._halt()
        elif isinstance(exc, RunCancelled):
            self._announce_cancel()
        elif isinstance(exc, LeaseLost):
            return
        elif isinstance(exc, _InvalidOutput):
            self.failed_step_name = None
            await self._fail(str(exc))
        else:
            await self._fail(_message(exc))

    def _output_json(self, result: Any) -> str | None:
        adapter = self.job.output_adapter
        what = f"output of job {self.job.name!r}"
        try:
            if adapter is None:
                return None if result is None else dump_json(result, what)
            data = to_json_value(adapter, adapter.validate_python(result), what)
            return None if data is None else dump_json(data, what)
        except pydantic.ValidationError as exc:
            raise _InvalidOutput(f"Invalid output: {format_pydantic_error(exc)}") from None
        except ValidationError as exc:
            raise _InvalidOutput(f"Invalid output: {exc}") from None

    @property
    def _pending(self) -> Pending:
        return Pending() if self.step is None else self.step.pending

    async def _fail(self, error: str) -> None:
        error = escape_surrogates(error)
        run = self.run
        pending = self._pending
        if len(error) > _MAX_ERROR:
            error = error[:_MAX_ERROR] + " ... (truncated)"
        try:
            await self._outcome(
                "fail",
                lambda: self.store.fail_run(
                    run.id, run.lease_generation, error, self.clock.now(), pending
                ),
            )
        except RunCancelled:
            self._announce_cancel()
            return
        except LeaseLost:
            return
        except StorageError:
            if self.failure is not None:
                await self._halt()
                return
            raise
        self.bus.emit(
            RunFail,
            run_id=run.id,
            job_name=run.job_name,
            labels=run.labels,
            error=error,
            failed_step_name=self.failed_step_name or "unknown",
        )

    async def _halt(self) -> None:
        """Hand the run back if the failed database lets us, then stop the worker."""
        assert self.failure is not None
        self.abort("stopped")
        run = self.run
        # One try: the database just failed, the lease expires anyway, and the failure itself
        # is what gets reported.
        with contextlib.suppress(Exception):
            await self.store.release_lease(
                run.id, run.lease_generation, self.clock.now(), self._pending
            )
        self.host.halt(self.failure, run)

    async def _interrupted(self) -> None:
        """Hand the run back after a cancellation (the worker stops), unless it ended."""
        self.abort("stopped")
        if self._outcome_task is not None and not self._outcome_task.done():
            return  # the outcome is being written; it decides the run's state
        run = self.run
        try:
            await self.store.release_lease(
                run.id, run.lease_generation, self.clock.now(), self._pending
            )
        except Exception as exc:  # noqa: BLE001 - best effort: the lease expires anyway
            self.report(exc, "release-lease")

    def _announce_cancel(self) -> None:
        """Emit ``run:cancel`` here when the cancellation came from another process."""
        if self.cancel_announced:
            return
        self.cancel_announced = True
        run = self.run
        self.bus.emit(RunCancel, run_id=run.id, job_name=run.job_name, labels=run.labels)

    def step_overran(self, step: str, seconds: float, lost: bool) -> None:
        """Warn that ``step`` ran past the lease unrenewed; remember it if the run was lost."""
        run = self.run
        self.report(
            StepBlocked(
                f"step {step!r} of run {run.id} ran {seconds:.1f}s and the run's lease "
                f"({self.lease_duration:g}s) expired meanwhile: the step blocked the event loop, "
                "so the lease could not be renewed"
                + (
                    ", another worker took the run over and this result was discarded"
                    if lost
                    else ", and another worker could have taken the run over"
                )
                + ". Make the step await (run blocking code with asyncio.to_thread) or raise "
                "lease_duration above the step's time (create_durably(lease_duration=...), "
                "durably-web run --lease-duration)."
            ),
            "step-blocked",
        )
        if lost:
            self.lost_block = True
            self.host.lost_to_block(run, step, seconds)


class _InvalidOutput(Exception):
    pass


def _snippet(text: str, width: int = 80) -> str:
    return repr(text if len(text) <= width else text[:width] + "...")
