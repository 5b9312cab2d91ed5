"""The step context a job function receives: checkpoints, progress, logs, cancellation.

``await step.run(name, fn)`` is the checkpoint. The first time a run reaches a step name, ``fn``
runs and its JSON result is written together with the run's counters in one fenced
transaction; when the run is resumed or retried the job is called again from the top and the
stored result is returned without calling ``fn``. ``step.run`` returns the JSON form of the
result (what a replay returns) on the first execution too, so a job behaves the same whether
its steps ran or replayed.

Steps are keyed by name, as upstream Durably keys them: a name used twice in one run is a
``ValidationError`` naming it (the second call would otherwise return the first one's result).

Step indexes count calls in order from 0 on every execution, replays included, so a resumed
run gives each new step the index it would have had without the interruption (upstream
Durably seeds the counter from the stored index and drifts).

While a resumed run replays its checkpoints (until the last one has been returned or a new
step starts), ``step.progress`` calls are skipped, so progress does not jump back. Log lines
are written once: a resumed attempt skips as many ``step.log`` calls as the run has stored
lines that will be logged again (those outside completed steps, whose functions replay without
being called). A job replays deterministically, so those are the lines an earlier attempt
wrote, up to the last one that reached the database before a crash; the rest are written.

The checkpoint write is the engine's, not the step's: a lock held past ``busy_timeout`` makes
it wait and try again, and a broken database halts the attempt; neither fails the step.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import types
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from durably_web.clock import format_timestamp
from durably_web.errors import (
    ConflictError,
    LeaseLost,
    RunCancelled,
    StorageError,
    ValidationError,
)
from durably_web.events import LogWrite, RunProgress, StepCancel, StepComplete, StepFail, StepStart
from durably_web.ids import new_ulid
from durably_web.json_value import check_text, check_value, escape_surrogates, shown
from durably_web.models import Progress, Run
from durably_web.storage.connection import DatabaseBusy
from durably_web.storage.records import Pending
from durably_web.validation import dump_json

if TYPE_CHECKING:
    from durably_web.core.execution import Execution

__all__ = ["AbortSignal", "StepContext", "StepLogger"]

T = TypeVar("T")
StepFunction = Callable[..., Awaitable[Any] | Any]

_MISSING = object()
_YIELD_EVERY = 0.005
"""Seconds a job may run synchronous steps before ``step.run`` yields to the event loop."""
_FLUSH_DELAY = 0.05
"""Seconds pending progress and logs wait for a checkpoint to carry them before a flush."""
_FLUSH_RETRY = 1.0
"""Seconds before a flush that met a locked database tries again (what it held stays pending)."""


class AbortSignal:
    """Set when the run must stop: ``reason`` is ``"cancelled"``, ``"lease-lost"`` or ``"stopped"``.

    Pass it to long operations inside a step (``step.run(name, lambda signal: ...)``), poll
    ``aborted``, or ``await signal.wait()``.
    """

    __slots__ = ("_event", "_listeners", "aborted", "reason")

    def __init__(self) -> None:
        self.aborted = False
        self.reason: str | None = None
        self._event: asyncio.Event | None = None
        self._listeners: list[Callable[[str], None]] = []

    def abort(self, reason: str) -> None:
        """Abort with ``reason``; later calls keep the first reason."""
        if self.aborted:
            return
        self.aborted = True
        self.reason = reason
        if self._event is not None:
            self._event.set()
        for listener in self._listeners:
            listener(reason)

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(reason)`` when the signal aborts."""
        self._listeners.append(listener)

    async def wait(self) -> str:
        """Wait until the signal aborts; return the reason."""
        if self._event is None:
            self._event = asyncio.Event()
            if self.aborted:
                self._event.set()
        await self._event.wait()
        assert self.reason is not None
        return self.reason

    def error(self, run_id: str) -> RunCancelled | LeaseLost:
        """Return the exception that matches the abort reason."""
        if self.reason == "cancelled":
            return RunCancelled(f"Run was cancelled: {run_id}")
        if self.reason == "stopped":
            return LeaseLost(f"Worker stopped; run released: {run_id}")
        return LeaseLost(f"Lease ownership was lost: {run_id}")


class StepLogger:
    """``step.log``: structured log lines, emitted as ``log:write`` and persisted by default."""

    __slots__ = ("_step",)

    def __init__(self, step: StepContext) -> None:
        self._step = step

    def info(self, message: str, data: Any = None) -> None:
        """Write an ``info`` line; ``data`` must be JSON-serialisable."""
        self._step._write_log("info", message, data)

    def warn(self, message: str, data: Any = None) -> None:
        """Write a ``warn`` line."""
        self._step._write_log("warn", message, data)

    def error(self, message: str, data: Any = None) -> None:
        """Write an ``error`` line."""
        self._step._write_log("error", message, data)


class StepContext:
    """What a job function receives as ``step``: see the module docstring."""

    __slots__ = (
        "_completed",
        "_completed_count",
        "_current_step",
        "_current_step_index",
        "_execution",
        "_flush_handle",
        "_index",
        "_last_yield",
        "_logs_to_skip",
        "_pending",
        "_progress",
        "_seen",
        "_to_replay",
        "log",
        "signal",
    )

    def __init__(
        self,
        execution: Execution,
        completed: dict[str, Any],
        current_step_index: int,
        *,
        logs_written: int = 0,
    ) -> None:
        """Bind to one execution.

        Args:
            execution: the run attempt this context belongs to.
            completed: the run's checkpoints, step name → decoded result.
            current_step_index: one past the highest completed step index.
            logs_written: stored log lines this attempt will log again (that many
                ``step.log`` calls are skipped; see the module docstring).

        """
        self._execution = execution
        self._completed = completed
        self._completed_count = len(completed)
        self._to_replay = set(completed)
        self._seen: set[str] = set()
        self._logs_to_skip = logs_written
        self._current_step_index = current_step_index
        self._index = 0
        self._current_step: str | None = None
        self._pending = Pending()
        if completed:
            # A crash may have left the run's counters behind its checkpoints (they are
            # written lazily): the next write of this attempt sets them from the checkpoints.
            self._pending.current_step_index = current_step_index
            self._pending.completed_step_count = len(completed)
        self._progress: Progress | None = None
        self._flush_handle: asyncio.TimerHandle | None = None
        self._last_yield = time.monotonic()
        self.signal = AbortSignal()
        self.log = StepLogger(self)

    @property
    def run_id(self) -> str:
        """The id of the run being executed."""
        return self._execution.run.id

    def is_aborted(self) -> bool:
        """Return True once the run was cancelled, its lease lost, or the worker stopped."""
        return self.signal.aborted

    def throw_if_aborted(self) -> None:
        """Raise :class:`RunCancelled` or :class:`LeaseLost` if the signal has aborted."""
        if self.signal.aborted:
            raise self.signal.error(self.run_id)

    async def run(self, name: str, fn: StepFunction) -> Any:
        """Run ``fn`` as the checkpointed step ``name``, or return its stored result.

        Args:
            name: unique within the run; the checkpoint key.
            fn: a sync or async callable taking no argument or one (the abort signal).

        Returns:
            The step's result as JSON data (dicts, lists, str, numbers, bools, None).

        Raises:
            ValidationError: ``name`` is empty or was used before in this run, or the result
                is not JSON-serialisable (or too large to store).
            RunCancelled / LeaseLost: the run stopped belonging to this execution.
            StorageError: the database failed; the worker stops (the step is not failed).

        """
        self.throw_if_aborted()
        if not isinstance(name, str) or not name:
            raise ValidationError(f"step name must be a non-empty string, got {shown(name)}")
        check_text(name, "step name")
        execution = self._execution
        if name in self._seen:
            execution.failed_step_name = name
            raise ValidationError(
                f"step name {name!r} is used twice in run {self.run_id}: steps are keyed by "
                "name, so each step of a run needs its own (e.g. f'fetch-{i}' in a loop)"
            )
        self._seen.add(name)
        index = self._index
        self._index += 1
        cached = self._completed.get(name, _MISSING)
        if cached is not _MISSING:
            self._to_replay.discard(name)
            return cached
        run, bus, store, clock = execution.run, execution.bus, execution.store, execution.clock
        try:
            await execution.store_call(
                "lease check", lambda: store.check_lease(run.id, run.lease_generation)
            )
        except RunCancelled:
            self.signal.abort("cancelled")
            raise
        except LeaseLost:
            self.signal.abort("lease-lost")
            raise
        self._to_replay.clear()
        self._current_step = name
        if bus.wants("step:start"):  # the hot path builds no event nobody listens to
            bus.emit(
                StepStart,
                run_id=run.id,
                job_name=run.job_name,
                labels=run.labels,
                step_name=name,
                step_index=index,
            )
        else:
            bus.skip()
        started = clock.now()
        try:
            result = _call_step(fn, self.signal)
            if _awaitable(result):
                result = await result
            self.throw_if_aborted()
            output_json = None if result is None else dump_json(result, f"result of step {name!r}")
        except RunCancelled:
            self._cancelled(name, index)
            raise
        except LeaseLost:
            self.signal.abort("lease-lost")
            raise
        except Exception as exc:
            await self._step_failed(name, index, exc, started)
            raise
        finally:
            self._current_step = None
        finished = clock.now()
        overran = finished > execution.lease_until
        try:
            await execution.store_call(
                "checkpoint",
                lambda: store.checkpoint_step(
                    run.id,
                    run.lease_generation,
                    name=name,
                    index=index,
                    output_json=output_json,
                    started_at=started,
                    now=finished,
                    pending=self._pending,
                ),
            )
        except RunCancelled:
            self._cancelled(name, index)
            raise
        except LeaseLost:
            self.signal.abort("lease-lost")
            if overran:
                execution.step_overran(name, finished - started, lost=True)
            raise
        except (ValidationError, ConflictError) as exc:  # the result cannot be stored
            await self._step_failed(name, index, exc, started)
            raise
        if overran:
            execution.step_overran(name, finished - started, lost=False)
        if output_json is None:
            output = None
        elif type(result) in _JSON_SCALARS:
            output = result  # a plain str/int/float/bool is its own JSON form
        else:
            output = json.loads(output_json)
        self._completed[name] = output
        self._completed_count += 1
        self._current_step_index = max(self._current_step_index, index + 1)
        pending = self._pending
        pending.completed_step_count = self._completed_count
        pending.current_step_index = self._current_step_index
        self._schedule_flush()
        if bus.wants("step:complete"):
            bus.emit(
                StepComplete,
                run_id=run.id,
                job_name=run.job_name,
                labels=run.labels,
                step_name=name,
                step_index=index,
                output=output,
                duration=int((clock.now() - started) * 1000),
            )
        else:
            bus.skip()
        now = time.monotonic()
        if now - self._last_yield > _YIELD_EVERY:
            self._last_yield = now
            await asyncio.sleep(0)
        return output

    def _cancelled(self, name: str, index: int) -> None:
        self.signal.abort("cancelled")
        run = self._execution.run
        self._execution.bus.emit(
            StepCancel,
            run_id=run.id,
            job_name=run.job_name,
            labels=run.labels,
            step_name=name,
            step_index=index,
        )

    async def _step_failed(self, name: str, index: int, exc: Exception, started: float) -> None:
        execution = self._execution
        run = execution.run
        error = _message(exc)
        execution.failed_step_name = name
        status = "cancelled" if self.signal.aborted else "failed"
        try:
            await execution.store_call(
                "step failure",
                lambda: execution.store.record_failed_step(
                    run.id,
                    run.lease_generation,
                    name=name,
                    index=index,
                    status=status,
                    error=error,
                    started_at=started,
                    now=execution.clock.now(),
                    pending=self._pending,
                ),
            )
        except Exception as write_error:  # noqa: BLE001 - the step's own error wins
            if execution.failure is None:  # a broken database halts the attempt instead
                execution.report(write_error, "step-failure-record")
        execution.bus.emit(
            StepFail,
            run_id=run.id,
            job_name=run.job_name,
            labels=run.labels,
            step_name=name,
            step_index=index,
            error=error,
        )

    def progress(
        self, current: int | float, total: int | float | None = None, message: str | None = None
    ) -> None:
        """Report progress: persisted with the next checkpoint (or within 50 ms) and emitted.

        Raises:
            ValidationError: ``current``/``total`` are not finite numbers or ``message`` not a
                string of valid Unicode.

        """
        if isinstance(current, bool) or not isinstance(current, (int, float)):
            raise ValidationError(f"progress current must be a number, got {shown(current)}")
        check_value(current, "progress current")
        if total is not None:
            if isinstance(total, bool) or not isinstance(total, (int, float)):
                raise ValidationError(
                    f"progress total must be a number or None, got {shown(total)}"
                )
            check_value(total, "progress total")
        if message is not None:
            if not isinstance(message, str):
                raise ValidationError(
                    f"progress message must be a string or None, got {shown(message)}"
                )
            check_text(message, "progress message")
        if self._to_replay:
            return  # replaying: this progress was reported before; do not step back
        progress = self._progress = Progress(current, total, message)
        self._pending.progress_json = json.dumps(progress.to_wire(), separators=(",", ":"))
        run = self._execution.run
        self._execution.bus.emit(
            RunProgress, run_id=run.id, job_name=run.job_name, labels=run.labels, progress=progress
        )
        self._schedule_flush()

    def _write_log(self, level: str, message: str, data: Any) -> None:
        if not isinstance(message, str):
            raise ValidationError(f"log message must be a string, got {shown(message)}")
        check_text(message, "log message")
        data_json = None if data is None else dump_json(data, "log data")
        execution = self._execution
        if self._logs_to_skip:
            self._logs_to_skip -= 1
            return  # an earlier attempt wrote this line (see the module docstring)
        if self._to_replay and not execution.persist_logs:
            return  # no stored lines to count: lines before the last checkpoint were emitted
        run = execution.run
        now = execution.clock.now()
        if execution.persist_logs:
            self._pending.logs.append(
                (
                    new_ulid(now),
                    run.id,
                    self._current_step,
                    level,
                    message,
                    data_json,
                    format_timestamp(now),
                )
            )
            self._schedule_flush()
        execution.bus.emit(
            LogWrite,
            run_id=run.id,
            job_name=run.job_name,
            labels=run.labels,
            step_name=self._current_step,
            level=level,
            message=message,
            data=None if data_json is None else json.loads(data_json),
        )

    def _schedule_flush(self, delay: float = _FLUSH_DELAY) -> None:
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(delay, self._flush_now)

    def _flush_now(self) -> None:
        self._flush_handle = None
        if self._pending:
            self._execution.spawn(self.flush(), "flush")

    async def flush(self) -> None:
        """Write pending progress and log lines now (fenced; refused writes are dropped).

        A flush that meets a locked database keeps everything pending and tries again later;
        the next checkpoint or the outcome carries it if that comes first.
        """
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        execution = self._execution
        run = execution.run
        try:
            await execution.store_call(
                "flush",
                lambda: execution.store.flush(
                    run.id, run.lease_generation, self._pending, execution.clock.now()
                ),
                wait_busy=False,
            )
        except DatabaseBusy:
            self._schedule_flush(_FLUSH_RETRY)
        except StorageError:
            if execution.failure is None:
                raise
            # else the attempt has halted; it reports the failure when it ends

    def overlay(self, run: Run) -> Run:
        """Return ``run`` with this execution's progress and counters, written or not."""
        if run.lease_generation != self._execution.run.lease_generation:
            return run
        return replace(
            run,
            progress=self._progress if self._progress is not None else run.progress,
            current_step_index=self._current_step_index,
            completed_step_count=self._completed_count,
        )

    @property
    def pending(self) -> Pending:
        """Progress and logs not yet written (the outcome write takes them along)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        return self._pending

    @property
    def current_index(self) -> int:
        """The index the next step will get."""
        return self._index


_JSON_SCALARS = frozenset({str, int, float, bool})


def _awaitable(value: Any) -> bool:
    """Return True for coroutines and other awaitables (cheaper than ``inspect.isawaitable``)."""
    return type(value) is types.CoroutineType or hasattr(type(value), "__await__")


def _call_step(fn: StepFunction, signal: AbortSignal) -> Any:
    """Call ``fn`` with the signal if it has a required positional parameter, else bare."""
    code = getattr(fn, "__code__", None)
    if code is not None:
        required = code.co_argcount - len(getattr(fn, "__defaults__", None) or ())
        if inspect.ismethod(fn):
            required -= 1
        return fn(signal) if required >= 1 else fn()
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return fn()
    required = sum(
        1
        for p in parameters
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    )
    return fn(signal) if required >= 1 else fn()


def _message(exc: BaseException) -> str:
    """Return the error text stored for a failed step or run (valid Unicode, never empty)."""
    text = escape_surrogates(str(exc))
    return text if text else type(exc).__name__
