"""Execution: one claimed run, from the top to its outcome, and the one owner of its state.

An :class:`Execution` owns everything about a running run: its abort signal and
cancellation, its progress and step counters, and every write it makes, through its
:class:`~durably_web.core.writer.RunWriter` (which keeps what the run produced and has not
written yet, and sorts storage errors). The job sees it through its
:class:`~durably_web.core.step.StepContext`; the :class:`~durably_web.core.worker.Worker`
asks it for what ``Durably`` needs (:meth:`Execution.overlay`, :meth:`Execution.cancel`).
The Store only ever receives plain values from it.

Completed steps replay from their checkpoints; new steps run and are checkpointed; the
outcome (completed with validated output, or failed with the error) is written with the same
lease fence. A durable wait (a sleep, a signal, a long retry backoff) is an outcome too: the
run is suspended (``waiting``, its lease released, ``run:wait``) and the attempt ends; a later
attempt resumes it. A cancellation or a lost lease ends the attempt without writing anything
more; a worker stopped mid-run hands the run back to the queue at once.

Whatever goes wrong ends in one of three clear ways, never in a task that dies silently:

- **The run is at fault** (its job raised, its input no longer validates, a stored checkpoint
  or its stored input cannot be parsed): the run fails with a message saying so (``run:fail``).
- **The database is busy** (another connection held the lock past ``busy_timeout``): the
  engine's own write is tried again, with backoff, until the lock clears
  (:mod:`~durably_web.core.busy`). A lock never fails a run.
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
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from durably_web.clock import Clock, SystemClock
from durably_web.core.batching import CheckpointGroup
from durably_web.core.fastpath import QuickCheckpoints
from durably_web.core.overrun import Overrun, blocked_warning, extended_lease, too_many_losses
from durably_web.core.replay import UnreadableCheckpoint, load_replay
from durably_web.core.signal import AbortSignal
from durably_web.core.step import StepContext, error_text
from durably_web.core.waits import Suspended
from durably_web.core.writer import RunWriter
from durably_web.errors import LeaseLost, RunCancelled, StorageError, ValidationError
from durably_web.events import (
    EventBus,
    LogWrite,
    RunCancel,
    RunComplete,
    RunFail,
    RunProgress,
    RunStart,
)
from durably_web.job import JobDefinition
from durably_web.json_value import storable_text
from durably_web.models import Progress, Run, wire_time
from durably_web.options import CheckpointPolicy
from durably_web.storage.base import Store
from durably_web.storage.records import RunDelta, completed_row
from durably_web.validation import dump_json, format_pydantic_error, parse, to_json_value

__all__ = ["Execution", "Supervisor"]

T = TypeVar("T")

_MAX_ERROR = 100_000
"""Characters of a failure message stored at most."""
LEASE_CHECK_EVERY = 0.02
"""Seconds between the pre-step lease checks (real time: see ``Execution.real_time``).

The check only avoids *starting* a step on a run another process cancelled or reclaimed:
every write is fenced by the lease generation anyway, and an in-process cancel aborts the
signal at once. So a step starts at most this long after its run was lost elsewhere. A
checkpoint that committed counts as a check made when it was sent (its fence proved the
lease), so a run whose steps each take less than this reads nothing between them.
"""


class Supervisor(Protocol):
    """What an execution needs from the worker that runs it."""

    store: Store
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


class _RunAtFault(Exception):
    """The stored run cannot be executed; the message says why. The run fails with it."""


class _InvalidOutput(Exception):
    pass


class Execution:
    """One attempt at one claimed run.

    Args:
        run: the run as claimed; its ``lease_generation`` fences every write.
        job: the job definition to call.
        supervisor: the worker executing it (store, bus, clock, supervision).
        lease_duration: seconds each lease renewal extends the lease by.
        preserve_steps: keep step and log rows after the run completes.
        persist_logs: write ``step.log`` lines to the database.
        checkpoint: when completed steps are committed (one by one, or grouped: see
            :mod:`~durably_web.core.batching`).
        overrun: set when this worker lost this run before to a step that blocked past its
            lease: the lease is extended for this attempt, or the run fails after too many
            such losses (:mod:`~durably_web.core.overrun`).

    Attributes:
        signal: aborted when the run is cancelled, its lease lost or the worker stops.
        progress: the last progress the job reported, written or not.
        current_step_index / completed_step_count: the run's counters, written or not.
        lease_until: when the lease expires (epoch seconds), as last claimed or renewed.
        failure: the storage error that broke this attempt, if any.
        lost_block: this attempt lost the run to a step that blocked past the lease.
        writer: makes every write of this attempt (see :mod:`~durably_web.core.writer`).

    """

    def __init__(
        self,
        run: Run,
        job: JobDefinition[Any, Any],
        supervisor: Supervisor,
        *,
        lease_duration: float,
        preserve_steps: bool,
        persist_logs: bool,
        overrun: Overrun | None = None,
        checkpoint: CheckpointPolicy | None = None,
    ) -> None:
        self.run = run
        self.job = job
        self.supervisor = supervisor
        self.store = supervisor.store
        self.bus = supervisor.bus
        self.clock = supervisor.clock
        self.lease_duration = lease_duration
        expires = run.lease_expires_at
        self.lease_until = (
            expires.timestamp() if expires is not None else self.clock.now() + lease_duration
        )
        self.preserve_steps = preserve_steps
        self.persist_logs = persist_logs
        self.overrun = overrun
        self.signal = AbortSignal()
        self.progress: Progress | None = None
        self.current_step_index = run.current_step_index
        self.completed_step_count = run.completed_step_count
        self.failed_step_name: str | None = None
        self.lost_block = False
        self.failure: StorageError | None = None
        self.writer = RunWriter(
            run,
            self.store,
            self.clock,
            spawn=supervisor.spawn,
            report=self.report,
            broken=self.broken,
        )
        self.wall = type(self.clock) is SystemClock
        """The engine's clock is the system clock: its readings are real time (see
        :meth:`real_time`), and a step's own time stamps stand in for clock reads."""
        self.real_time: Callable[[], float] = time.time if self.wall else time.monotonic
        """Real time for the lease checks: the system clock (``time.time``, the clock the
        step path reads anyway, so a step's start time serves as the lease check's reading:
        in the browser a read costs 1-3 us), else ``time.monotonic`` (a fake clock does not
        move by itself)."""
        self.group = (
            CheckpointGroup(checkpoint, self.writer, wall=self.wall)
            if checkpoint is not None and checkpoint.batched
            else None
        )
        """The batched mode's checkpoint group (:mod:`.batching`); None in the default mode."""
        self._cancel_announced = False
        self._outcome_task: asyncio.Future[Any] | None = None
        self._lease_checked = -LEASE_CHECK_EVERY
        self.quick = QuickCheckpoints(self, self.group)
        """Writes the plain step's checkpoint without an await (see :mod:`.fastpath`)."""

    # -- what the worker asks ------------------------------------------------------------

    def overlay(self, run: Run) -> Run:
        """Return ``run`` (as read from the store) with this attempt's progress and counters."""
        if run.status != "leased" or run.lease_generation != self.run.lease_generation:
            return run
        return replace(
            run,
            progress=self.progress if self.progress is not None else run.progress,
            current_step_index=self.current_step_index,
            completed_step_count=self.completed_step_count,
        )

    def cancel(self) -> None:
        """Stop the run: it was cancelled in this process (which emitted ``run:cancel``)."""
        self._cancel_announced = True
        self.abort("cancelled")

    def abort(self, reason: str) -> None:
        """Abort the job's signal (``cancelled``, ``lease-lost`` or ``stopped``)."""
        self.signal.abort(reason)

    def broken(self, error: StorageError) -> None:
        """Record that the database failed under this attempt; abort the job's signal."""
        if self.failure is None:
            self.failure = error
        self.abort("stopped")

    def report(self, error: BaseException, context: str) -> None:
        """Route an internal error of this execution to ``worker:error``."""
        self.supervisor.report(error, context, self.run)

    # -- what the job's StepContext records ---------------------------------------------

    def record_progress(self, progress: Progress) -> None:
        """Keep the job's progress (written with the next write) and emit ``run:progress``."""
        self.progress = progress
        self.writer.keep_progress(progress)
        run = self.run
        self.bus.emit(
            RunProgress, run_id=run.id, job_name=run.job_name, labels=run.labels, progress=progress
        )

    def record_log(
        self, level: str, message: str, data_json: str | None, step_name: str | None
    ) -> None:
        """Keep a log line (unless logs are not persisted) and emit ``log:write``."""
        run = self.run
        if self.persist_logs:
            self.writer.keep_log(level, message, data_json, step_name)
        self.bus.emit(
            LogWrite,
            run_id=run.id,
            job_name=run.job_name,
            labels=run.labels,
            step_name=step_name,
            level=level,
            message=message,
            data=None if data_json is None else json.loads(data_json),
        )

    def lease_check_due(self, now: float | None = None) -> bool:
        """Whether :meth:`check_lease` would read the database now (or return at once).

        ``now``: the engine clock's time just read by the caller, used on the system clock
        (:attr:`wall`) instead of reading :meth:`real_time` again.
        """
        if now is None or not self.wall:
            now = self.real_time()
        return now - self._lease_checked >= LEASE_CHECK_EVERY

    async def check_lease(self) -> None:
        """Raise :class:`RunCancelled` or :class:`LeaseLost` (aborting the signal) if gone.

        Reads the database at most every :data:`LEASE_CHECK_EVERY` seconds (see there).
        """
        now = self.real_time()
        if now - self._lease_checked < LEASE_CHECK_EVERY:
            return
        self._lease_checked = now
        run = self.run
        with self.signal.on_refusal:
            await self.store_call(
                "lease check", lambda: self.store.check_lease(run.id, run.lease_generation)
            )

    def lease_proven(self, sent: float) -> None:
        """Count a fenced write sent at ``sent`` (:meth:`real_time`) that committed as a check."""
        if sent > self._lease_checked:
            self._lease_checked = sent

    async def checkpoint(
        self,
        name: str,
        index: int,
        output_json: str | None,
        started: float,
        finished: float,
        *,
        attempt: int = 1,
    ) -> None:
        """Write a completed step (fenced) with what is unwritten; advance the counters.

        Raises:
            RunCancelled / LeaseLost: the fence refused (the signal is aborted).
            ConflictError / ValidationError: the result cannot be stored.
            StorageError: the database failed (the attempt has halted).

        """
        run = self.run
        overran = finished > self.lease_until
        if self.group is not None:
            row = completed_row(
                run.id,
                run.lease_generation,
                name=name,
                index=index,
                output_json=output_json,
                started_at=started,
                now=finished,
                attempt=attempt,
            )
            due = self.group.keep(row, finished)
            self.advance(index)
            if due or overran:
                try:
                    await self.commit_checkpoints()
                except LeaseLost:
                    if overran:
                        self._step_overran(name, finished - started, lost=True)
                    raise
                if overran:
                    self._step_overran(name, finished - started, lost=False)
            return

        def write(delta: RunDelta) -> Awaitable[None]:
            return self.store.checkpoint_step(
                run.id,
                run.lease_generation,
                name=name,
                index=index,
                output_json=output_json,
                started_at=started,
                now=finished,
                logs=delta.logs,
                attempt=attempt,
                steps=delta.steps,
            )

        sent = self.real_time()
        try:
            with self.signal.on_refusal:
                await self.writer.write("checkpoint", write, logs_only=True)
        except LeaseLost:
            if overran:
                self._step_overran(name, finished - started, lost=True)
            raise
        self.lease_proven(sent)  # the fence proved the lease
        if overran:
            self._step_overran(name, finished - started, lost=False)
        self.advance(index)

    def advance(self, index: int) -> None:
        """Count a step checkpointed at ``index`` (the counters ride with the next write)."""
        self.completed_step_count += 1
        self.current_step_index = max(self.current_step_index, index + 1)
        self.writer.keep_counters(self.current_step_index, self.completed_step_count)

    async def commit_checkpoints(self) -> None:
        """Commit the completed steps kept for a group now (the batched mode), fenced.

        Anything that must not happen before the steps before it are durable (a wait, an
        answer to the outside) calls this first; a no-op when nothing is kept.

        Raises:
            RunCancelled / LeaseLost: the fence refused (the signal is aborted).
            StorageError: the database failed (the attempt has halted).

        """
        if not self.writer.kept_steps:
            return
        run = self.run

        def write(delta: RunDelta) -> Awaitable[bool]:
            return self.store.flush(run.id, run.lease_generation, delta, self.clock.now())

        if await self.writer.write("checkpoint", write):
            return
        self._lease_checked = -LEASE_CHECK_EVERY  # the fence refused: find out why
        await self.check_lease()
        self.abort("lease-lost")
        raise LeaseLost(f"Lease ownership was lost: {run.id}")

    def resumed(self, current_step_index: int, completed_step_count: int) -> None:
        """Set the counters from the run's checkpoints (a crash may have left them behind)."""
        self.current_step_index = current_step_index
        self.completed_step_count = completed_step_count
        if completed_step_count:
            self.writer.keep_counters(current_step_index, completed_step_count)

    async def fenced_write(self, what: str, write: Callable[[RunDelta], Awaitable[T]]) -> T:
        """Make a fenced write of the run with what is unwritten (a wait, a signal's step).

        Raises:
            RunCancelled / LeaseLost: the fence refused (the signal is aborted).
            StorageError: the database failed (the attempt has halted).

        """
        with self.signal.on_refusal:
            return await self.writer.write(what, write)

    async def record_step_failure(
        self,
        name: str,
        index: int,
        error: str,
        started: float,
        *,
        attempt: int = 1,
        retry_at: float | None = None,
    ) -> None:
        """Record a step that raised (``failed``, or ``cancelled`` once the signal aborted).

        Args:
            name: the step.
            index: its index.
            error: what it raised, as stored.
            started: when this attempt started.
            attempt: which attempt of the step this was (from 1).
            retry_at: when its next attempt is due (None: this was its last).

        """
        run = self.run
        if retry_at is None:
            self.failed_step_name = name
        status = "cancelled" if self.signal.aborted else "failed"

        def write(delta: RunDelta) -> Awaitable[bool]:
            return self.store.record_failed_step(
                run.id,
                run.lease_generation,
                name=name,
                index=index,
                status=status,
                error=error,
                started_at=started,
                now=self.clock.now(),
                logs=delta.logs,
                attempt=attempt,
                retry_at=retry_at,
                steps=delta.steps,
            )

        try:
            await self.writer.write("step failure", write, logs_only=True)
        except Exception as write_error:  # noqa: BLE001 - the step's own error wins
            if self.failure is None:  # a broken database halts the attempt instead
                self.report(write_error, "step-failure-record")

    async def store_call(
        self, what: str, call: Callable[[], Awaitable[T]], *, wait_busy: bool = True
    ) -> T:
        """Make one of the engine's own storage calls for this run (see :class:`RunWriter`)."""
        return await self.writer.call(what, call, wait_busy=wait_busy)

    # -- the attempt --------------------------------------------------------------------

    async def execute(self) -> None:
        """Run the job to its outcome; never raises except ``asyncio.CancelledError``."""
        run, clock = self.run, self.clock
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

            def complete(delta: RunDelta) -> Awaitable[None]:
                return self.store.complete_run(
                    run.id,
                    run.lease_generation,
                    output_json,
                    clock.now(),
                    delta,
                    delete_steps=not self.preserve_steps,
                )

            await self._outcome("complete", complete)
        except Suspended:
            return  # the run waits: a later attempt resumes it
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
        """Read what the run needs to resume, then build the job's step context.

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
        try:
            replay = await load_replay(store, run, lambda call: self.store_call("resume", call))
        except UnreadableCheckpoint as exc:
            raise _RunAtFault(str(exc)) from None
        if replay.outputs:
            self.resumed(replay.next_index, len(replay.outputs))
        step = StepContext(self, replay)
        if self.overrun is not None:
            await self._extend_lease(self.overrun)
        return step

    async def _extend_lease(self, overrun: Overrun) -> None:
        """Give a run this worker lost to a blocking step a lease long enough for that step."""
        run = self.run
        duration = extended_lease(overrun, self.lease_duration)
        if duration is None:
            raise _RunAtFault(too_many_losses(overrun))
        now = self.clock.now()
        renewed = await self.store_call(
            "extend lease",
            lambda: self.store.renew_lease(run.id, run.lease_generation, now, duration),
        )
        if renewed is None:
            raise LeaseLost(f"Lease ownership was lost: {run.id}")
        self.lease_duration = duration
        self.lease_until = now + duration

    async def _outcome(self, what: str, write: Callable[[RunDelta], Awaitable[None]]) -> None:
        """Write the outcome, shielded: if this task is cancelled, the write still finishes."""
        self.writer.cancel_flush()
        task = _started_now(self.writer.write(what, write))
        self._outcome_task = task
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                self.supervisor.keep(task, f"{what}-outcome")
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
            await self._fail(error_text(exc))

    def _output_json(self, result: Any) -> str | None:
        import pydantic  # a browser engine starts without it (trigger.py)

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

    async def _fail(self, error: str) -> None:
        error = storable_text(error)
        run = self.run
        if len(error) > _MAX_ERROR:
            error = error[:_MAX_ERROR] + " ... (truncated)"

        def fail(delta: RunDelta) -> Awaitable[None]:
            return self.store.fail_run(run.id, run.lease_generation, error, self.clock.now(), delta)

        try:
            await self._outcome("fail", fail)
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
        # One try: the database just failed, the lease expires anyway, and the failure itself
        # is what gets reported.
        with contextlib.suppress(Exception):
            await self.writer.release()
        self.supervisor.halt(self.failure, self.run)

    async def _interrupted(self) -> None:
        """Hand the run back after a cancellation (the worker stops), unless it ended."""
        self.abort("stopped")
        self.writer.cancel_flush()
        if self._outcome_task is not None and not self._outcome_task.done():
            return  # the outcome is being written; it decides the run's state
        try:
            await self.writer.release()
        except Exception as exc:  # noqa: BLE001 - best effort: the lease expires anyway
            self.report(exc, "release-lease")

    def _announce_cancel(self) -> None:
        """Emit ``run:cancel`` here when the cancellation came from another process."""
        if self._cancel_announced:
            return
        self._cancel_announced = True
        run = self.run
        self.bus.emit(RunCancel, run_id=run.id, job_name=run.job_name, labels=run.labels)

    def _step_overran(self, step: str, seconds: float, lost: bool) -> None:
        """Warn that ``step`` ran past the lease unrenewed; tell the worker if the run was lost."""
        run = self.run
        self.report(
            blocked_warning(run.id, step, seconds, self.lease_duration, lost), "step-blocked"
        )
        if lost:
            self.lost_block = True
            self.supervisor.lost_to_block(run, step, seconds)


def _snippet(text: str, width: int = 80) -> str:
    return repr(text if len(text) <= width else text[:width] + "...")


def _started_now(coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
    """Start ``coro`` as a task that runs at once, up to its first suspension.

    The outcome's write on SQLite never suspends, so the task is done when this returns and
    the caller's ``shield`` awaits nothing: no turn of the event loop for the task's first
    step, the shield's callbacks or the wake-up. In Pyodide's browser loop each such turn is
    a task of the worker (30-200 us; five of them a run, bench/NOTES.md). A write that does
    suspend (a lock waited out, a server's round trip) goes on as any task. Python 3.11 has
    no eager tasks: the task starts at the next turn there. The task is a plain
    ``asyncio.Task`` whatever the loop's task factory (it runs engine code only).
    """
    if sys.version_info >= (3, 12):
        return asyncio.Task(coro, loop=asyncio.get_running_loop(), eager_start=True)
    return asyncio.ensure_future(coro)
