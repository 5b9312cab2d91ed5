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

The context is the job's view of its :class:`~durably_web.core.execution.Execution`: it keeps
what replaying needs (the checkpoints, the names seen, the log lines to skip) and hands
everything else (the signal, progress, log lines, the writes) to the execution, which owns it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import types
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from durably_web.core.signal import AbortSignal
from durably_web.errors import ConflictError, LeaseLost, RunCancelled, ValidationError
from durably_web.events import StepCancel, StepComplete, StepFail, StepStart
from durably_web.json_value import check_text, check_value, shown, storable_text
from durably_web.models import Progress
from durably_web.validation import dump_json

if TYPE_CHECKING:
    from durably_web.core.execution import Execution

__all__ = ["StepContext", "StepLogger", "error_text"]

StepFunction = Callable[..., Awaitable[Any] | Any]

_MISSING = object()
_YIELD_EVERY = 0.005
"""Seconds a job may run synchronous steps before ``step.run`` yields to the event loop."""


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
        "_current_step",
        "_execution",
        "_index",
        "_last_yield",
        "_logs_to_skip",
        "_seen",
        "_to_replay",
        "log",
    )

    def __init__(
        self, execution: Execution, completed: dict[str, Any], *, logs_written: int = 0
    ) -> None:
        """Bind to one execution.

        Args:
            execution: the run attempt this context belongs to.
            completed: the run's checkpoints, step name → decoded result.
            logs_written: stored log lines this attempt will log again (that many
                ``step.log`` calls are skipped; see the module docstring).

        """
        self._execution = execution
        self._completed = completed
        self._to_replay = set(completed)
        self._seen: set[str] = set()
        self._logs_to_skip = logs_written
        self._index = 0
        self._current_step: str | None = None
        self._last_yield = time.monotonic()
        self.log = StepLogger(self)

    @property
    def run_id(self) -> str:
        """The id of the run being executed."""
        return self._execution.run.id

    @property
    def signal(self) -> AbortSignal:
        """Aborted when the run is cancelled, its lease lost, or the worker stops."""
        return self._execution.signal

    def is_aborted(self) -> bool:
        """Return True once the run was cancelled, its lease lost, or the worker stopped."""
        return self._execution.signal.aborted

    def throw_if_aborted(self) -> None:
        """Raise :class:`RunCancelled` or :class:`LeaseLost` if the signal has aborted."""
        signal = self._execution.signal
        if signal.aborted:
            raise signal.error(self.run_id)

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
        index = self._next_index(name)
        cached = self._completed.get(name, _MISSING)
        if cached is not _MISSING:
            self._to_replay.discard(name)
            return cached
        execution = self._execution
        await execution.check_lease()
        self._to_replay.clear()
        self._emit(StepStart, name, index)
        started = execution.clock.now()
        self._current_step = name
        try:
            result, output_json = await self._call(name, fn)
        except RunCancelled:
            self._cancelled(name, index)
            raise
        except LeaseLost:
            execution.abort("lease-lost")
            raise
        except Exception as exc:
            await self._failed(name, index, exc, started)
            raise
        finally:
            self._current_step = None
        try:
            await execution.checkpoint(name, index, output_json, started, execution.clock.now())
        except RunCancelled:
            self._cancelled(name, index)
            raise
        except (ValidationError, ConflictError) as exc:  # the result cannot be stored
            await self._failed(name, index, exc, started)
            raise
        if output_json is None:
            output = None
        elif type(result) in _JSON_SCALARS:
            output = result  # a plain str/int/float/bool is its own JSON form
        else:
            output = json.loads(output_json)
        self._completed[name] = output
        duration = int((execution.clock.now() - started) * 1000)
        self._emit(StepComplete, name, index, output=output, duration=duration)
        now = time.monotonic()
        if now - self._last_yield > _YIELD_EVERY:
            self._last_yield = now
            await asyncio.sleep(0)
        return output

    def _next_index(self, name: str) -> int:
        """Check a step name (valid, not used before in this run); return the step's index."""
        if not isinstance(name, str) or not name:
            raise ValidationError(f"step name must be a non-empty string, got {shown(name)}")
        check_text(name, "step name")
        if name in self._seen:
            self._execution.failed_step_name = name
            raise ValidationError(
                f"step name {name!r} is used twice in run {self.run_id}: steps are keyed by "
                "name, so each step of a run needs its own (e.g. f'fetch-{i}' in a loop)"
            )
        self._seen.add(name)
        index = self._index
        self._index += 1
        return index

    async def _call(self, name: str, fn: StepFunction) -> tuple[Any, str | None]:
        """Call the step function; return its result and the result's JSON text."""
        result = _call_step(fn, self._execution.signal)
        if _awaitable(result):
            result = await result
        self.throw_if_aborted()
        return result, None if result is None else dump_json(result, f"result of step {name!r}")

    def _emit(self, cls: type[Any], name: str, index: int, **values: Any) -> None:
        """Emit a step event, unless nobody listens (step events are on the hot path)."""
        bus, run = self._execution.bus, self._execution.run
        if bus.wants(cls.type):
            bus.emit(
                cls,
                run_id=run.id,
                job_name=run.job_name,
                labels=run.labels,
                step_name=name,
                step_index=index,
                **values,
            )
        else:
            bus.skip()

    def _cancelled(self, name: str, index: int) -> None:
        self._execution.abort("cancelled")
        self._emit(StepCancel, name, index)

    async def _failed(self, name: str, index: int, exc: Exception, started: float) -> None:
        error = error_text(exc)
        await self._execution.record_step_failure(name, index, error, started)
        self._emit(StepFail, name, index, error=error)

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
        self._execution.record_progress(Progress(current, total, message))

    def _write_log(self, level: str, message: str, data: Any) -> None:
        if not isinstance(message, str):
            raise ValidationError(f"log message must be a string, got {shown(message)}")
        check_text(message, "log message")
        data_json = None if data is None else dump_json(data, "log data")
        if self._logs_to_skip:
            self._logs_to_skip -= 1
            return  # an earlier attempt wrote this line (see the module docstring)
        if self._to_replay and not self._execution.persist_logs:
            return  # no stored lines to count: lines before the last checkpoint were emitted
        self._execution.record_log(level, message, data_json, self._current_step)


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


def error_text(exc: BaseException) -> str:
    """Return the error text stored for a failed step or run (valid Unicode, never empty)."""
    text = storable_text(str(exc))
    return text if text else type(exc).__name__
