"""Values the Store takes and gives besides the public models.

Runs to enqueue, run filters, checkpoints read back for replay, and what a running job has
produced but not written yet. All are plain values: the Store reads them and changes none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from durably_web.clock import format_timestamp
from durably_web.errors import ConflictError
from durably_web.ids import new_ulid
from durably_web.models import Run

__all__ = [
    "CompletedStep",
    "LogRow",
    "NewRun",
    "NewSchedule",
    "NewWait",
    "PendingRetry",
    "RunDelta",
    "RunFilter",
    "SignalWait",
    "StepRow",
    "completed_row",
    "refuse_signal",
    "step_row",
]

LogRow = tuple[str, str, str | None, str, str, str | None, str]
"""A log line to insert: id, run_id, step_name, level, message, data JSON, created_at."""

StepRow = tuple[str, str, str, int, str, str | None, str | None, str, str, int, int, str | None]
"""A step to insert: id, run_id, name, index, status, output JSON, error, started_at,
completed_at, the lease generation that fences the insert, the attempt (from 1), and when a
failed attempt's next one is due (or None)."""


def step_row(
    run_id: str,
    generation: int,
    *,
    name: str,
    index: int,
    status: str,
    output_json: str | None,
    error: str | None,
    started_at: float,
    now: float,
    attempt: int = 1,
    retry_at: float | None = None,
) -> StepRow:
    """Build the row of a step that ended at ``now`` (epoch seconds), fenced by ``generation``."""
    return (
        new_ulid(now),
        run_id,
        name,
        index,
        status,
        output_json,
        error,
        format_timestamp(started_at),
        format_timestamp(now),
        generation,
        attempt,
        None if retry_at is None else format_timestamp(retry_at),
    )


def completed_row(
    run_id: str,
    generation: int,
    *,
    name: str,
    index: int,
    output_json: str | None,
    started_at: float,
    now: float,
    attempt: int = 1,
) -> StepRow:
    """Build the row of a step that completed at ``now`` (see :func:`step_row`).

    The tuple is spelled out rather than passed through :func:`step_row`: this runs once per
    checkpoint, and with the keyword relay the CPython benchmark measured 45.3-46.6% of the
    raw floor (default mode) and 90-94% (batched) against 48.3-49.1% and 105-106% without
    it (three interleaved quiet pairs, bench/RESULTS.md "Quiet re-run at the end of stop 20").
    """
    return (
        new_ulid(now),
        run_id,
        name,
        index,
        "completed",
        output_json,
        None,
        format_timestamp(started_at),
        format_timestamp(now),
        generation,
        attempt,
        None,
    )


@dataclass(frozen=True, slots=True)
class NewRun:
    """A validated run to enqueue."""

    job_name: str
    input_json: str
    idempotency_key: str | None = None
    concurrency_key: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    coalesce: bool = False
    run_at: float | None = None
    """A delayed run's start (epoch seconds): it is not claimed before. None: at once."""


@dataclass(frozen=True, slots=True)
class NewSchedule:
    """A validated schedule to store (:meth:`Store.put_schedule`).

    ``next_tick`` is its first tick after now (epoch seconds): it is stored for a new
    schedule or a changed definition, while an unchanged one keeps the tick it has.
    """

    name: str
    job_name: str
    cron: str
    timezone: str
    input_json: str
    catch_up: str
    next_tick: float


@dataclass(frozen=True, slots=True)
class NewWait:
    """A wait the lease holder puts its run in (:meth:`Store.suspend_run`).

    Attributes:
        kind: ``sleep``, ``signal`` or ``retry``.
        name: the waiting step (a signal wait's signal has the same name).
        until: when the run becomes claimable again (epoch seconds); None only for a signal
            wait without timeout.
        since: when the wait began (the waiting step's start).

    """

    kind: Literal["sleep", "signal", "retry"]
    name: str
    until: float | None
    since: float


@dataclass(frozen=True, slots=True)
class PendingRetry:
    """A step whose last attempt failed with another one due: resumed there, not from 1."""

    attempt: int
    """The attempt that failed (from 1)."""
    retry_at: float
    """When the next attempt is due (epoch seconds)."""


def refuse_signal(run: Run, name: str, sent_at: str | None, completed_at: str | None) -> None:
    """Raise the :class:`ConflictError` a signal ``name`` to ``run`` meets, if any.

    What every store's :meth:`Store.signal_run` refuses, in one wording: a terminal run, a
    signal of that name already sent (``sent_at``), a step of that name already completed
    (``completed_at``).
    """
    if run.is_terminal:
        raise ConflictError(f"Cannot signal {run.status} run: {run.id}")
    if sent_at is not None:
        raise ConflictError(
            f"Run {run.id} already has a signal {name!r} (sent at {sent_at}): a run takes "
            "one signal of each name"
        )
    if completed_at is not None:
        raise ConflictError(
            f"Run {run.id} no longer waits for signal {name!r}: its step {name!r} completed "
            f"at {completed_at}"
        )


@dataclass(frozen=True, slots=True)
class SignalWait:
    """What :meth:`Store.await_signal` did.

    ``received``: the signal was there; it is taken and the step checkpointed with its
    ``payload_json``. ``timed-out``: none came before the timeout; the step is checkpointed as
    timed out. ``waiting``: the run now waits for it (status ``waiting``, lease released).
    """

    state: Literal["received", "timed-out", "waiting"]
    payload_json: str | None = None


@dataclass(frozen=True, slots=True)
class CompletedStep:
    """A checkpoint read back for replay.

    ``error`` is set only on a completed wait that ended without its event (a signal wait
    that timed out): the step replays by raising it again.
    """

    index: int
    output_json: str | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RunDelta:
    """What a running run produced that its row and the logs table do not hold yet.

    A checkpoint writes only its step row; the run's progress and step counters, the log
    lines, and in the batched checkpoint mode the checkpoints themselves, ride along with
    the next write of the lease holder (a checkpoint, a flush, or the outcome), so
    ``step.progress`` and ``step.log`` cost no transaction. The execution builds a delta
    from what it has not written, the Store writes it with the fenced write it is given
    to, and the execution forgets what a write that committed held
    (:class:`durably_web.core.unwritten.Unwritten`). A plain value: the Store never
    changes it.

    Attributes:
        progress_json: the latest progress as JSON text, if not written yet.
        current_step_index / completed_step_count: the run's counters, if not written yet.
        logs: log lines to insert, oldest first.
        steps: completed steps to insert (checkpoints kept for a group commit), oldest first.

    """

    progress_json: str | None = None
    current_step_index: int | None = None
    completed_step_count: int | None = None
    logs: tuple[LogRow, ...] = ()
    steps: tuple[StepRow, ...] = ()

    def run_fields(self) -> tuple[str | None, int | None, int | None]:
        """Return ``(progress_json, current_step_index, completed_step_count)``."""
        return (self.progress_json, self.current_step_index, self.completed_step_count)

    def __bool__(self) -> bool:
        return bool(
            self.logs
            or self.steps
            or self.progress_json is not None
            or self.current_step_index is not None
            or self.completed_step_count is not None
        )


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Filters for :meth:`Store.get_runs` (all optional, combined with AND)."""

    statuses: tuple[str, ...] = ()
    job_names: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    limit: int | None = None
    offset: int = 0
