"""Durable waits inside a job: ``step.sleep``, ``step.sleep_until``, ``step.wait_for_signal``.

A wait is a step: it takes a step name and index, and once it is over it is checkpointed like
any step, so a resumed run replays it (a sleep returns at once, a signal wait returns the
payload it received or raises :class:`~durably_web.errors.SignalTimeout` again).

While it is not over, the run does not hold its worker: the execution records the wait on the
run's row (kind, step, end, start) and releases its lease in one write; the run is ``waiting``
and the job function is unwound by :class:`Suspended`, a ``BaseException`` so that an
``except Exception`` in the job does not swallow it (``finally`` blocks do run). When the wait
ends (its time came, or its signal arrived) a worker claims the run again and calls the job
from the top; completed steps replay, and the waiting step finds its wait recorded on the run,
so it neither starts the wait again nor changes its end: a crash, a reload or a restart of
every worker during a wait loses nothing.

A wait cannot be made inside a step function (or a branch of ``step.all``): the run would be
unwound in the middle of a step.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from durably_web.clock import format_timestamp
from durably_web.errors import SignalTimeout, ValidationError
from durably_web.events import RunWait, StepComplete, StepStart
from durably_web.json_value import shown
from durably_web.models import Waiting, WaitKind
from durably_web.options import MAX_DELAY, check_seconds
from durably_web.storage.records import NewWait, RunDelta, SignalWait

if TYPE_CHECKING:
    from durably_web.core.execution import Execution
    from durably_web.core.step import StepContext

__all__ = [
    "CURRENT_STEP",
    "RetryLater",
    "Suspended",
    "check_outside_steps",
    "seconds_of",
    "sleep",
    "suspend",
    "time_of",
    "wait_for_signal",
]

CURRENT_STEP: ContextVar[str | None] = ContextVar("durably_current_step", default=None)
"""The step whose function the current task is running (log lines are attributed to it)."""


class Suspended(BaseException):  # not an error: the run waits
    """The run now waits (its wait is written and its lease released); the job unwinds.

    The engine catches it at the top of the attempt. A ``BaseException``, like
    ``asyncio.CancelledError``, so that ``except Exception`` in a job lets it through.
    """


class RetryLater(Exception):  # not an error: the next attempt is due later
    """A step's next attempt is due too late to wait for in place: the run must wait for it.

    Raised by the step's attempt loop after it recorded the failed attempt; ``step.run`` (or
    ``step.all`` once its other steps settled) turns it into a ``retry`` wait.
    """

    def __init__(self, name: str, until: float, since: float) -> None:
        super().__init__(f"step {name!r} retries at {format_timestamp(until)}")
        self.name = name
        self.until = until
        self.since = since


def seconds_of(value: Any, what: str) -> float:
    """Return a duration given as seconds or a ``timedelta``, checked (0 to 100 years)."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(
            f"{what} must be a number of seconds or a timedelta, got {shown(value)}"
        )
    return check_seconds(value, what, maximum=MAX_DELAY, allow_zero=True)


def time_of(value: Any, what: str) -> float:
    """Return an aware ``datetime`` (or ISO-8601 text with an offset) as epoch seconds.

    Raises:
        ValidationError: a naive datetime, text that is not ISO-8601 with an offset, or a
            time outside the years 1000-9999.

    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(f"{what} must be an ISO-8601 time, got {shown(value)}") from None
    if not isinstance(value, datetime):
        raise ValidationError(f"{what} must be a timezone-aware datetime, got {shown(value)}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{what} must be timezone-aware (e.g. UTC), got {value!r}")
    seconds = value.timestamp()
    format_timestamp(seconds)  # raises ValidationError outside the years 1000-9999
    return seconds


def check_outside_steps(what: str) -> None:
    """Refuse a wait (``what``) made inside a step function."""
    inside = CURRENT_STEP.get()
    if inside is not None:
        raise ValidationError(
            f"{what} cannot be called inside step {inside!r}: a wait unwinds the job, so it "
            "belongs between steps (call it from the job function)"
        )


def _recorded(step: StepContext, kind: WaitKind, name: str) -> Waiting | None:
    """Return the wait of this kind and step recorded on the run, if an attempt began it."""
    wait = step._execution.run.wait
    if wait is None or wait.kind != kind or wait.name != name:
        return None
    return wait


async def sleep(step: StepContext, name: str, until_of: Callable[[float], float]) -> None:
    """Sleep as step ``name`` until ``until_of(start)``; see the module docstring."""
    check_outside_steps("step.sleep")
    index, cached = step._begin(name)
    if cached is not step._MISSING:
        return
    execution = step._execution
    await step._start_new()
    now = execution.clock.now()
    recorded = _recorded(step, "sleep", name)
    if recorded is not None:
        since = _epoch(recorded.since, now)
        until = _epoch(recorded.until, now)
    else:
        since, until = now, until_of(now)
        step._emit(StepStart, name, index)
    if until > now:
        await suspend(execution, NewWait("sleep", name, until, since))
    await execution.checkpoint(name, index, None, since, now)
    step._completed[name] = None
    step._emit(StepComplete, name, index, output=None, duration=_millis(now - since))


async def wait_for_signal(step: StepContext, name: str, timeout: float | None) -> Any:
    """Wait as step ``name`` for the signal ``name``; see the module docstring."""
    check_outside_steps("step.wait_for_signal")
    index, cached = step._begin(name)
    if cached is not step._MISSING:
        error = step._errors.get(name)
        if error is not None:
            raise SignalTimeout(error)
        return cached
    execution = step._execution
    await step._start_new()
    now = execution.clock.now()
    recorded = _recorded(step, "signal", name)
    if recorded is not None:  # its end is recomputed: a signal sets the recorded one to now
        since = _epoch(recorded.since, now)
    else:
        since = now
        step._emit(StepStart, name, index)
    until = None if timeout is None else since + timeout
    message = (
        "no deadline"
        if until is None
        else f"no signal {name!r} arrived within {_number(until - since)}s "
        f"(by {format_timestamp(until)})"
    )
    outcome = await _await_signal(execution, name, index, since, until, now, message)
    duration = _millis(now - since)
    if outcome.state == "timed-out":
        step._completed[name] = None
        step._errors[name] = message
        step._emit(StepComplete, name, index, output=None, duration=duration)
        raise SignalTimeout(message)
    payload = None if outcome.payload_json is None else json.loads(outcome.payload_json)
    step._completed[name] = payload
    step._emit(StepComplete, name, index, output=payload, duration=duration)
    return payload


# -- the writes: the execution's, fenced, with what the run has not written yet ----------------


async def suspend(execution: Execution, wait: NewWait) -> NoReturn:
    """Put the run to wait (status ``waiting``, lease released), emit ``run:wait``; unwind.

    Raises:
        Suspended: always, once the run waits (the job unwinds; the attempt ends).
        RunCancelled / LeaseLost: the fence refused (the signal is aborted).
        StorageError: the database failed (the attempt has halted).

    """
    run = execution.run

    def write(delta: RunDelta) -> Awaitable[None]:
        now = execution.clock.now()
        return execution.store.suspend_run(run.id, run.lease_generation, wait, now, delta)

    await execution.fenced_write("suspend", write)
    _waiting(execution, wait)


async def _await_signal(
    execution: Execution,
    name: str,
    index: int,
    since: float,
    until: float | None,
    now: float,
    timed_out: str,
) -> SignalWait:
    """Take the signal for step ``name``, or time out (checkpointed), or suspend the run."""
    run = execution.run

    def write(delta: RunDelta) -> Awaitable[SignalWait]:
        return execution.store.await_signal(
            run.id,
            run.lease_generation,
            name=name,
            index=index,
            since=since,
            until=until,
            now=now,
            delta=delta,
            timed_out=timed_out,
        )

    outcome = await execution.fenced_write("signal", write)
    if outcome.state == "waiting":
        _waiting(execution, NewWait("signal", name, until, since))
    execution.advance(index)
    return outcome


def _waiting(execution: Execution, wait: NewWait) -> NoReturn:
    """Emit ``run:wait`` for the run that now waits, and unwind the job."""
    execution.writer.cancel_flush()
    run = execution.run
    until = None if wait.until is None else datetime.fromtimestamp(wait.until, UTC)
    execution.bus.emit(
        RunWait,
        run_id=run.id,
        job_name=run.job_name,
        labels=run.labels,
        waiting=Waiting(wait.kind, wait.name, until, datetime.fromtimestamp(wait.since, UTC)),
    )
    raise Suspended


def _epoch(value: datetime | None, fallback: float) -> float:
    return fallback if value is None else value.timestamp()


def _millis(seconds: float) -> int:
    return max(0, int(seconds * 1000))


def _number(value: float) -> str:
    value = max(value, 0.0)
    return str(int(value)) if math.isclose(value, round(value)) else f"{value:.3f}".rstrip("0")
