"""The ``run`` command: run one job in this process, show it live, and resume it when rerun.

Resuming works without any bookkeeping of the CLI's own: an unfinished (pending or leased)
run of the same job with the same input *is* the interrupted command, so running the command
again follows that run instead of triggering a new one, and its checkpointed steps replay.
With ``--idempotency-key`` the key decides instead, as it does for any trigger.

Ctrl-C (or SIGTERM) stops the worker with ``stop(timeout=0)``: the run in flight is
interrupted at its next ``await`` and handed back (pending again, checkpoints kept), so the
next command picks it up at once. A process killed outright cannot do that; its run stays
leased until the lease expires, and the next command says it is waiting for that.

If the database fails under the worker (a full disk, a corrupt or read-only file), the worker
stops and so does the command, with the error and exit status 1; the run is not marked failed
and the same command resumes it once the database is healthy. The command's worker claims only
runs of its own job and leaves runs of other jobs alone (``unknown_job_grace=None``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from durably_web.cli.render import ProgressLine, format_log
from durably_web.core.durably import Durably
from durably_web.core.factory import create_durably
from durably_web.core.handles import JobHandle
from durably_web.events import (
    Event,
    LogWrite,
    RunCancel,
    RunComplete,
    RunDelete,
    RunFail,
    RunProgress,
    RunStart,
    StepComplete,
    WorkerError,
)
from durably_web.job import JobDefinition
from durably_web.models import Run

__all__ = ["run_job"]

_TERMINAL = (RunComplete, RunFail, RunCancel, RunDelete)
_TICK = 0.5


async def run_job(
    *,
    key: str,
    job: JobDefinition[Any, Any],
    input: Any,
    database: str,
    idempotency_key: str | None = None,
    lease_duration: float | None = None,
    preserve_steps: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run ``job`` to its end in this process, or resume its interrupted run.

    Args:
        key: the key to register the job under (the ``JOB`` of ``MODULE:JOB``).
        job: the job definition.
        input: the validated input, as JSON data (see :func:`~.loading.validate_input`).
        database: a ``sqlite:///`` or ``postgresql://`` URL.
        idempotency_key: trigger with this key (its existing run, if any, is followed).
        lease_duration: seconds a lease lasts unrenewed (default: the engine's 30).
        preserve_steps: keep the run's steps and logs after it completes.
        out: where progress, logs and the output go (default ``sys.stdout``).
        err: where notices and errors go (default ``sys.stderr``).

    Returns:
        0 if the run completed, 1 if it failed, was cancelled or was deleted, or the database
        failed under the worker (the run is then resumable, not failed).

    Raises:
        asyncio.CancelledError: the task was cancelled (Ctrl-C); the run was released first.

    """
    out = out or sys.stdout
    err = err or sys.stderr
    options: dict[str, Any] = {"preserve_steps": preserve_steps, "unknown_job_grace": None}
    if lease_duration is not None:
        options["lease_duration"] = lease_duration
    durably = create_durably(database, **options)
    durably.register({key: job})
    follower = _Follower(durably, out, err)
    with _sigterm_cancels_task():
        try:
            await durably.migrate()
            run = await _find_or_trigger(durably, durably.jobs[key], input, idempotency_key, err)
            return await follower.follow(run)
        except asyncio.CancelledError:
            await durably.stop(timeout=0)
            await follower.interrupted()
            raise
        finally:
            await durably.close(timeout=0)


async def _find_or_trigger(
    durably: Durably,
    handle: JobHandle[Any, Any],
    data: Any,
    idempotency_key: str | None,
    err: TextIO,
) -> Run:
    if idempotency_key is None:
        unfinished = await durably.get_runs(job_name=handle.name, status=["pending", "leased"])
        same = [run for run in unfinished if _canonical(run.input) == _canonical(data)]
        if not same:
            run = await handle.trigger(data)
            print(f"Started run {run.id} (job {handle.name})", file=err)
            return run
        run = same[-1]  # the oldest: the queue would reach it first anyway
    else:
        run = await handle.trigger(data, idempotency_key=idempotency_key)
        if run.disposition == "created":
            print(f"Started run {run.id} (job {handle.name})", file=err)
            return run
        if _canonical(run.input) != _canonical(data):
            print(
                f"note: run {run.id} has idempotency key {idempotency_key!r} and was "
                f"triggered with different input: {_canonical(run.input)}",
                file=err,
            )
        if run.is_terminal:
            print(f"Run {run.id} (idempotency key {idempotency_key!r}) is {run.status}", file=err)
            return run
    done = await _steps_done(durably, run)
    print(f"Resuming run {run.id} ({done} step{'' if done == 1 else 's'} already done)", file=err)
    if run.status == "leased" and "lease_expires_at" in run.unreadable:
        print(
            f"Run {run.id} is leased with an expiry that cannot be read "
            f"({run.unreadable['lease_expires_at']!r}): it may never be claimed. Cancel it "
            f"(durably.cancel) and retry it to run it again.",
            file=err,
        )
    elif run.status == "leased" and run.lease_expires_at is not None:
        left = (run.lease_expires_at - datetime.now(UTC)).total_seconds()
        if left > 0:
            until = run.lease_expires_at.astimezone().strftime("%H:%M:%S")
            print(
                f"Run {run.id} is leased by {run.lease_owner or 'another worker'} until "
                f"{until}: waiting up to {math.ceil(left)}s for the previous worker's lease "
                f"to expire, or following that worker if it is still running",
                file=err,
            )
    return run


class _Follower:
    """Follows one run's events and draws them; owns the progress line."""

    def __init__(self, durably: Durably, out: TextIO, err: TextIO) -> None:
        self.durably = durably
        self.out = out
        self.err = err
        self.line = ProgressLine(out, live=out.isatty())
        self.run_id: str | None = None
        self.owner: str | None = None
        self.started = time.monotonic()
        self.halted = asyncio.Event()

    async def follow(self, run: Run) -> int:
        """Start the worker, draw the run's events until it ends; return the exit status.

        Ends early, with status 1, if the worker stops because the database failed.
        """
        self.run_id = run.id
        self.owner = run.lease_owner
        self.line.update(run.progress, steps=await _steps_done(self.durably, run))
        unsubscribe = self.durably.on("*", self._on_any_event)
        ticker = asyncio.create_task(self._tick(), name="durably-cli-ticker")
        drawing = asyncio.create_task(self._draw(run), name="durably-cli-follow")
        halted = asyncio.create_task(self.halted.wait(), name="durably-cli-halted")
        try:
            await asyncio.wait((drawing, halted), return_when=asyncio.FIRST_COMPLETED)
            if self.halted.is_set():
                return self._worker_stopped()
            status = drawing.result()
            if status is None:
                self.line.finish()
                print(f"Run {run.id} ended without an outcome", file=self.err)
                return 1
            return status
        finally:
            for task in (ticker, drawing, halted):
                task.cancel()
            await asyncio.gather(drawing, halted, return_exceptions=True)
            unsubscribe()

    async def _draw(self, run: Run) -> int | None:
        """Draw the run's events; return the exit status, or None if they end without one."""
        events = self.durably.subscribe(run.id)
        async with contextlib.aclosing(events):
            async for event in events:
                if self.halted.is_set():
                    return None
                if not self.durably.worker.running and not isinstance(event, _TERMINAL):
                    # Only now: the subscription is listening, so no event is missed.
                    self.durably.start()
                status = await self._show(event)
                if status is not None:
                    return status
        return None

    def _worker_stopped(self) -> int:
        self.line.finish()
        failure = self.durably.worker.failure
        print(
            f"The worker stopped: the database failed ({failure}). Run {self.run_id} is not "
            "marked failed: once the database is healthy again (free disk space, or restore "
            "the file), run the same command to resume it.",
            file=self.err,
        )
        return 1

    async def _show(self, event: Event) -> int | None:
        line = self.line
        if isinstance(event, RunProgress):
            steps = None
            if event.sequence == 0:  # polled: another process runs it; count its steps
                current = await self.durably.get_run(event.run_id or "")
                steps = None if current is None else await _steps_done(self.durably, current)
            line.update(event.progress, steps=steps)
        elif isinstance(event, StepComplete):
            line.update(steps=line.steps + 1)
        elif isinstance(event, LogWrite):
            line.message(format_log(event.level, event.message, event.data))
        elif isinstance(event, RunStart) and event.lease_owner != self.owner:
            previous, self.owner = self.owner, event.lease_owner
            if event.lease_owner != self.durably.worker_id:
                line.message(f"Run {event.run_id} is executing in worker {event.lease_owner}")
            elif previous is not None:
                line.message(f"The previous lease expired; continuing run {event.run_id} here")
        elif isinstance(event, _TERMINAL):
            if event.sequence == 0 and not isinstance(event, RunDelete):
                # Seen by polling (another process ran it): take the final step count.
                final = await self.durably.get_run(event.run_id or "")
                if final is not None:
                    line.steps = final.completed_step_count
            return self._outcome(event)
        return None

    def _outcome(self, event: Event) -> int:
        self.line.finish()
        took = f"{time.monotonic() - self.started:.1f}s"
        if isinstance(event, RunComplete):
            steps = self.line.steps
            print(f"Run {event.run_id} completed in {took} ({steps} steps)", file=self.err)
            print(json.dumps(event.output, indent=2, ensure_ascii=False), file=self.out)
            return 0
        if isinstance(event, RunFail):
            where = f" at step {event.failed_step_name!r}" if event.failed_step_name else ""
            print(f"Run {event.run_id} failed{where}: {event.error}", file=self.err)
        elif isinstance(event, RunCancel):
            print(f"Run {event.run_id} was cancelled", file=self.err)
        else:
            print(f"Run {event.run_id} was deleted", file=self.err)
        return 1

    def _on_any_event(self, event: Event) -> None:
        if isinstance(event, _TERMINAL) and event.run_id == self.run_id:
            # At once, in the task that ended the run: the worker must not claim a run
            # queued after ours in the moment before the command stops it.
            self.durably.worker.stop_claiming()
        elif isinstance(event, RunStart) and event.run_id != self.run_id:
            self.line.message(
                f"note: running run {event.run_id} first (queued earlier for this job)"
            )
        elif isinstance(event, WorkerError):
            if event.context == "worker-stopped":
                self.halted.set()
            else:
                self.line.message(f"[worker:error] {event.context}: {event.error}", self.err)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(_TICK)
            self.line.tick()

    async def interrupted(self) -> None:
        """Report what an interruption left behind (call after stopping the worker)."""
        self.line.finish()
        if self.run_id is None:
            print("Interrupted", file=self.err)
            return
        run = await self.durably.get_run(self.run_id)
        if run is None:
            print(f"Interrupted; run {self.run_id} no longer exists", file=self.err)
        elif run.status == "pending":
            done = await _steps_done(self.durably, run)
            print(
                f"Interrupted: run {run.id} is pending again with {done} steps checkpointed; "
                f"run the same command again to resume it",
                file=self.err,
            )
        elif run.status == "leased":
            print(
                f"Interrupted: run {run.id} is still leased by {run.lease_owner}; "
                f"run the same command again to follow or resume it",
                file=self.err,
            )
        else:
            print(f"Interrupted: run {run.id} is {run.status}", file=self.err)


async def _steps_done(durably: Durably, run: Run) -> int:
    """Count a run's checkpointed steps.

    The run's ``completed_step_count`` rides along with the next write after a checkpoint,
    so after a crash it can be one step behind; the checkpoints themselves are exact. A
    completed run's steps are usually deleted, and then its counter is final.
    """
    if run.is_terminal:
        return run.completed_step_count
    steps = await durably.get_steps(run.id)
    return max(run.completed_step_count, sum(step.status == "completed" for step in steps))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@contextlib.contextmanager
def _sigterm_cancels_task() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C: cancel the current task so the run is released."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    try:
        loop.add_signal_handler(signal.SIGTERM, task.cancel if task else lambda: None)
    except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
