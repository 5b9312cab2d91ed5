"""The step context a job function receives: checkpoints, retries, waits, progress, logs.

``await step.run(name, fn)`` is the checkpoint. The first time a run reaches a step name, ``fn``
runs and its JSON result is written in one fenced transaction; when the run is resumed or
retried the job is called again from the top and the stored result is returned without
calling ``fn``. ``step.run`` returns the JSON form of the result (what a replay returns) on the
first execution too, so a job behaves the same whether its steps ran or replayed.

A step with ``retry`` (or the job's ``retry=``) runs ``fn`` again when it raises, after a
backoff (:mod:`durably_web.retry`): each failed attempt is recorded with the time of the next
one, so a resumed run continues at that attempt and time. ``step:retry`` is emitted for each
failed attempt but the last; ``step:fail`` for the last. Durable waits (``step.sleep``,
``sleep_until``, ``wait_for_signal``) are in :mod:`durably_web.core.waits`, parallel steps
(``step.all``) in :mod:`durably_web.core.parallel`.

Steps are keyed by name, as upstream Durably keys them: a name used twice in one run is a
``ValidationError`` naming it (the second call would otherwise return the first one's result).

Step indexes count calls in order from 0 on every execution, replays included, so a resumed
run gives each new step the index it would have had without the interruption (upstream
Durably seeds the counter from the stored index and drifts). ``step.all`` numbers its steps in
the mapping's order before any starts.

While a resumed run replays its checkpoints (until the last one has been returned or a new
step starts), ``step.progress`` calls are skipped, so progress does not jump back. Log lines
are written once: a resumed attempt skips, separately outside steps and inside each step, as
many ``step.log`` calls as the run has stored lines that will be logged again (those outside
steps, and those of each step's unfinished attempt: a completed step replays without calling
its function, and a failed attempt is over). A job replays deterministically (and each step's
function does too), so those are the lines an earlier attempt wrote, up to the last one that
reached the database before a crash; the rest are written. Counting per step keeps that true
when steps run in parallel, whose lines interleave differently on each attempt.

The checkpoint write is the engine's, not the step's: a lock held past ``busy_timeout`` makes
it wait and try again, and a broken database halts the attempt; neither fails the step.

The context is the job's view of its :class:`~durably_web.core.execution.Execution`: it keeps
what replaying needs (the checkpoints, the names seen, the log lines to skip, the retries in
progress) and hands everything else (the signal, progress, log lines, the writes) to the
execution, which owns it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import types
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from durably_web.clock import now_of
from durably_web.core import waits
from durably_web.core.parallel import run_all
from durably_web.core.replay import Replay
from durably_web.core.signal import AbortSignal
from durably_web.core.waits import CURRENT_STEP, RetryLater, seconds_of, time_of
from durably_web.errors import ConflictError, LeaseLost, RunCancelled, ValidationError
from durably_web.events import StepCancel, StepComplete, StepFail, StepRetry, StepStart
from durably_web.json_value import check_text, check_value, shown, storable_text
from durably_web.models import Progress
from durably_web.retry import Retry, retry_policy
from durably_web.storage.records import NewWait
from durably_web.validation import dump_json, dump_json_exact

if TYPE_CHECKING:
    from durably_web.core.execution import Execution

__all__ = [
    "LONGEST_HELD_BACKOFF",
    "StepContext",
    "StepFunction",
    "StepLogger",
    "check_step_name",
    "error_text",
]

StepFunction = Callable[..., Awaitable[Any] | Any]

LONGEST_HELD_BACKOFF = 2.0
"""Seconds of retry backoff a step waits in place, keeping its run's lease and worker slot.
A longer backoff makes the run ``waiting`` (no lease, no slot) until the next attempt."""

_MISSING = object()
_PLAIN_DATA = frozenset({dict, list, str, int, float, bool, type(None)})
"""What a step function returns most: never awaitable, so not looked at further."""
_STEP_START = StepStart.type
_STEP_COMPLETE = StepComplete.type
_YIELD_EVERY = 0.005
"""Seconds a job may run synchronous steps before ``step.run`` yields to the event loop."""
_YIELD_CHECK_STEPS = 8
"""Steps between two looks at the time for :data:`_YIELD_EVERY` (a clock read is not free)."""


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
        "_bus",
        "_completed",
        "_errors",
        "_execution",
        "_index",
        "_job_policy",
        "_last_yield",
        "_logs_to_skip",
        "_now",
        "_retries",
        "_seen",
        "_steps_since_yield",
        "_to_replay",
        "log",
    )

    _MISSING: Any = _MISSING

    def __init__(self, execution: Execution, replay: Replay | None = None) -> None:
        """Bind to one execution.

        Args:
            execution: the run attempt this context belongs to.
            replay: what earlier attempts left (checkpoints, log lines to skip, retries in
                progress); nothing for a fresh run.

        """
        replay = replay or Replay.empty()
        self._execution = execution
        self._bus = execution.bus
        self._now = now_of(execution.clock)
        self._job_policy = self._policy(None, "")
        self._completed = dict(replay.outputs)
        self._errors = dict(replay.errors)
        self._to_replay = set(replay.outputs)
        self._seen: set[str] = set()
        self._logs_to_skip = {scope: n for scope, n in replay.logs.items() if n}
        self._retries = dict(replay.retries)
        self._index = 0
        self._last_yield = time.monotonic()
        self._steps_since_yield = 0
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

    async def run(self, name: str, fn: StepFunction, retry: Retry | int | None = None) -> Any:
        """Run ``fn`` as the checkpointed step ``name``, or return its stored result.

        Args:
            name: unique within the run; the checkpoint key.
            fn: a sync or async callable taking no argument or one (the abort signal).
            retry: run ``fn`` again when it raises: a number of attempts (with the default
                backoff) or a :class:`~durably_web.Retry`; ``None`` takes the job's
                ``retry=``, if any (see :mod:`durably_web.retry`). A backoff of up to
                ``LONGEST_HELD_BACKOFF`` (2 s) is waited in place; a longer one makes the
                run ``waiting`` (no lease, no worker slot) until the next attempt is due.

        Returns:
            The step's result as JSON data (dicts, lists, str, numbers, bools, None).

        Raises:
            ValidationError: ``name`` is empty or was used before in this run, ``retry`` is
                not valid, or the result is not JSON-serialisable (or too large to store).
            RunCancelled / LeaseLost: the run stopped belonging to this execution.
            StorageError: the database failed; the worker stops (the step is not failed).
            Whatever ``fn`` raised, once its last attempt failed.

        """
        policy = self._job_policy if retry is None else self._policy(retry, name)
        index, cached = self._begin(name)
        if cached is not _MISSING:
            return cached
        try:
            return await self._attempts(name, index, fn, policy)
        except RetryLater as later:
            await waits.suspend(self._execution, NewWait("retry", name, later.until, later.since))

    async def sleep(self, name: str, duration: float | timedelta) -> None:
        """Sleep ``duration`` (seconds or a ``timedelta``) as the step ``name``, durably.

        The run waits without holding a worker (status ``waiting``); a crash, reload or
        restart meanwhile does not restart the sleep, and a resumed run wakes when it was due
        (at once if that passed). On replay it returns at once.

        Raises:
            ValidationError: a bad name or duration (0 to 100 years), or a call made inside
                a step function.

        """
        seconds = seconds_of(duration, f"duration of step.sleep({name!r})")
        await waits.sleep(self, name, lambda now: now + seconds)

    async def sleep_until(self, name: str, when: datetime) -> None:
        """Sleep until ``when`` (a timezone-aware datetime) as the step ``name``; see :meth:`sleep`.

        A time that already passed returns at once (the step is still checkpointed).
        """
        until = time_of(when, f"time of step.sleep_until({name!r})")
        await waits.sleep(self, name, lambda _now: until)

    async def wait_for_signal(self, name: str, timeout: float | timedelta | None = None) -> Any:
        """Wait for ``durably.signal(run_id, name, payload)`` as the step ``name``; return payload.

        A signal sent before the run gets here is kept for it (it returns at once). The run
        waits without holding a worker; a crash or restart meanwhile loses nothing. On replay
        it returns the payload it received (or raises its timeout again).

        Args:
            name: the step's name, and the signal's.
            timeout: seconds (or a ``timedelta``) after which to give up; ``None``: forever.

        Raises:
            SignalTimeout: no signal arrived within ``timeout``.
            ValidationError: a bad name or timeout, or a call made inside a step function.

        """
        seconds = None if timeout is None else seconds_of(timeout, f"timeout of signal {name!r}")
        return await waits.wait_for_signal(self, name, seconds)

    async def all(
        self, steps: Mapping[str, StepFunction], concurrency: int | None = None
    ) -> dict[str, Any]:
        """Run several steps at once, each checkpointed; return ``{name: result}`` in order.

        Each entry is a step like ``step.run(name, fn)`` (the job's ``retry=`` applies):
        indexes are given in the mapping's order before any starts; on resume the completed
        ones replay and only the others run. The first step that fails (after its retries)
        cancels the ones still running and is raised; a long retry backoff makes the run wait
        once the others have settled.

        Args:
            steps: step name → step function (sync or async, no argument or the signal).
            concurrency: run at most this many at once (``None``: all).

        """
        return await run_all(self, steps, concurrency)

    # -- one step, from the first attempt to its checkpoint -------------------------------

    def _policy(self, retry: Any, name: Any) -> Retry | None:
        if retry is None:
            policy = self._execution.job.retry
        else:
            policy = retry_policy(retry, f"retry of step {name!r}")
        return None if policy is None or policy.attempts == 1 else policy

    def _begin(self, name: str) -> tuple[int, Any]:
        """Start a step call: check the run and name; return its index and checkpoint (if any)."""
        signal = self._execution.signal
        if signal.aborted:
            raise signal.error(self.run_id)
        # The name: valid (a plain ASCII one needs no more look), not used before in this run.
        if type(name) is not str or not name.isascii() or "\x00" in name or not name:
            check_step_name(name)
        if name in self._seen:
            self._execution.failed_step_name = name
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
        return index, cached

    async def _start_new(self) -> None:
        """Start a step without a checkpoint: the run must still be ours; replay is over."""
        execution = self._execution
        if execution.lease_check_due():  # a coroutine less on most steps
            await execution.check_lease()
        if self._to_replay:
            self._to_replay.clear()

    async def _attempts(self, name: str, index: int, fn: StepFunction, policy: Retry | None) -> Any:
        """Run a step's attempts until one succeeds; checkpoint it; return its JSON result.

        Raises:
            RetryLater: a failed attempt's next one is due later than can be waited in place.

        """
        execution = self._execution
        group = execution.group
        if group is not None and group.full:  # a full group commits before another step runs
            group.full = False
            await execution.commit_checkpoints()
        signal = execution.signal
        read_clock = self._now
        # The first attempt's start, read once: on the system clock it is also the lease
        # check's reading (Execution.real_time), a clock read less per step.
        started = read_clock()
        if execution.lease_check_due(started):  # _start_new, inline: a coroutine less
            await execution.check_lease()
            started = read_clock()  # the check may have read the database
        if self._to_replay:
            self._to_replay.clear()
        attempt = 1
        pending = self._retries.pop(name, None) if self._retries else None
        if pending is not None:  # an earlier attempt at the run got this far
            attempt = pending.attempt + 1
            await self._wait_for_attempt(name, pending.retry_at, started)
            started = read_clock()
        bus = self._bus
        while True:
            if _STEP_START in bus.listened:  # as _emit, without a call when nobody listens
                self._emit(StepStart, name, index)
            else:
                bus.skip()
            token = CURRENT_STEP.set(name)
            try:
                result = _call_step(fn, signal)
                kind = type(result)  # awaitable? (plain JSON data never is: no further look)
                if kind not in _PLAIN_DATA and (
                    kind is types.CoroutineType or hasattr(kind, "__await__")
                ):
                    result = await result
                if signal.aborted:
                    raise signal.error(self.run_id)
                break
            except RunCancelled:
                self._cancelled(name, index)
                raise
            except LeaseLost:
                execution.abort("lease-lost")
                raise
            except Exception as exc:
                if policy is None or attempt >= policy.attempts or execution.signal.aborted:
                    await self._failed(name, index, exc, started, attempt)
                    raise
                await self._retry(name, index, exc, started, attempt, policy)
                attempt += 1
                started = read_clock()  # the next attempt's start
            finally:
                CURRENT_STEP.reset(token)
        finished = read_clock()
        try:
            if result is None:
                output_json, exact = None, True
            else:
                output_json, exact = dump_json_exact(result, lambda: f"result of step {name!r}")
            if not execution.quick.write(name, index, output_json, started, finished, attempt):
                await execution.checkpoint(
                    name, index, output_json, started, finished, attempt=attempt
                )
        except RunCancelled:
            self._cancelled(name, index)
            raise
        except (ValidationError, ConflictError) as exc:  # the result cannot be stored
            await self._failed(name, index, exc, started, attempt)
            raise
        # Plain JSON data is its own JSON form: only a converted result is decoded again.
        output = result if exact else json.loads(output_json) if output_json else None
        self._completed[name] = output
        if _STEP_COMPLETE in bus.listened:
            duration = int((finished - started) * 1000)
            self._emit(StepComplete, name, index, output=output, duration=duration)
        else:
            bus.skip()
        self._steps_since_yield += 1
        if self._steps_since_yield >= _YIELD_CHECK_STEPS:
            self._steps_since_yield = 0
            now = time.monotonic()
            if now - self._last_yield > _YIELD_EVERY:
                self._last_yield = now
                await asyncio.sleep(0)
        return output

    async def _retry(
        self, name: str, index: int, exc: Exception, started: float, attempt: int, policy: Retry
    ) -> None:
        """Record a failed attempt with the time of the next; wait for it (or raise RetryLater)."""
        execution = self._execution
        error = error_text(exc)
        delay = policy.delay(attempt)
        now = execution.clock.now()
        retry_at = now + delay
        await execution.record_step_failure(
            name, index, error, started, attempt=attempt, retry_at=retry_at
        )
        self._logs_to_skip.pop(name, None)  # that attempt is over: the next one logs anew
        self._emit(StepRetry, name, index, attempt=attempt, delay=delay, error=error)
        await self._wait_for_attempt(name, retry_at, now)
        await execution.check_lease()

    async def _wait_for_attempt(self, name: str, due: float, since: float) -> None:
        """Wait in place for a step's next attempt, or raise RetryLater if it is due later."""
        execution = self._execution
        remaining = due - execution.clock.now()
        if remaining <= 0:
            return
        if remaining > LONGEST_HELD_BACKOFF:
            raise RetryLater(name, due, since)
        signal = execution.signal
        if not signal.aborted:
            aborted = asyncio.ensure_future(signal.wait())
            backoff = asyncio.ensure_future(execution.clock.sleep(remaining))
            try:
                await asyncio.wait((aborted, backoff), return_when=asyncio.FIRST_COMPLETED)
            finally:
                aborted.cancel()
                backoff.cancel()
        self.throw_if_aborted()

    def _emit(self, cls: type[Any], name: str, index: int, **values: Any) -> None:
        """Emit a step event, unless nobody listens (step events are on the hot path)."""
        bus = self._bus
        if bus.wants(cls.type):
            run = self._execution.run
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

    async def _failed(
        self, name: str, index: int, exc: Exception, started: float, attempt: int = 1
    ) -> None:
        error = error_text(exc)
        await self._execution.record_step_failure(name, index, error, started, attempt=attempt)
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
        step = CURRENT_STEP.get()
        if self._logs_to_skip:
            skip = self._logs_to_skip.get(step, 0)
            if skip:
                self._logs_to_skip[step] = skip - 1
                return  # an earlier attempt wrote this line (see the module docstring)
        if self._to_replay and not self._execution.persist_logs:
            return  # no stored lines to count: lines before the last checkpoint were emitted
        self._execution.record_log(level, message, data_json, step)


def check_step_name(name: Any) -> str:
    """Return a step (or signal) name: a non-empty string of valid Unicode."""
    if not isinstance(name, str) or not name:
        raise ValidationError(f"step name must be a non-empty string, got {shown(name)}")
    return check_text(name, "step name")


_TAKES_SIGNAL: dict[tuple[types.CodeType, int, bool], bool] = {}
"""Whether a step function wants the signal, by (code, defaults, bound): lambdas made in a
loop share one code object, so a job's steps are looked at once. Bounded, see below."""
_TAKES_SIGNAL_MAX = 4096


def _call_step(fn: StepFunction, signal: AbortSignal) -> Any:
    """Call ``fn`` with the signal if it has a required positional parameter, else bare."""
    code = getattr(fn, "__code__", None)
    if code is not None:
        defaults = getattr(fn, "__defaults__", None)
        key = (code, len(defaults) if defaults else 0, type(fn) is types.MethodType)
        takes = _TAKES_SIGNAL.get(key)
        if takes is None:
            required = code.co_argcount - key[1]
            if key[2]:  # a bound method: self is not a parameter the caller fills
                required -= 1
            takes = required >= 1
            if len(_TAKES_SIGNAL) >= _TAKES_SIGNAL_MAX:
                _TAKES_SIGNAL.clear()  # code objects made at run time (exec) must not pile up
            _TAKES_SIGNAL[key] = takes
        return fn(signal) if takes else fn()
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
