"""Values the Store takes and gives besides the public models.

Runs to enqueue, run filters, checkpoints read back for replay, and what a running job has
produced but not written yet. All are plain values: the Store reads them and changes none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from durably_web.clock import format_timestamp
from durably_web.ids import new_ulid

__all__ = ["CompletedStep", "LogRow", "NewRun", "RunDelta", "RunFilter", "StepRow", "step_row"]

LogRow = tuple[str, str, str | None, str, str, str | None, str]
"""A log line to insert: id, run_id, step_name, level, message, data JSON, created_at."""

StepRow = tuple[str, str, str, int, str, str | None, str | None, str, str, int]
"""A step to insert: id, run_id, name, index, status, output JSON, error, started_at,
completed_at, and the lease generation that fences the insert."""


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


@dataclass(frozen=True, slots=True)
class CompletedStep:
    """A checkpoint read back for replay."""

    index: int
    output_json: str | None


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
