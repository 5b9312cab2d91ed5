"""Values the Store takes and gives besides the public models.

Runs to enqueue, run filters, checkpoints read back for replay, and the run-level state a
running job has produced but not written yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CompletedStep", "LogRow", "NewRun", "Pending", "RunFilter"]

LogRow = tuple[str, str, str | None, str, str, str | None, str]
"""A log line to insert: id, run_id, step_name, level, message, data JSON, created_at."""


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


@dataclass(slots=True)
class Pending:
    """Run-level state a running job produced that is not yet written.

    A checkpoint writes only its step row (and pending log lines); the run's progress and
    step counters ride along with the next flush (within 50 ms) or the outcome, so a
    ``step.progress`` call costs no transaction and a checkpoint does not rewrite the run.

    Attributes:
        progress_json: the latest progress, as JSON text.
        current_step_index / completed_step_count: absolute counters, once changed.
        logs: log lines to insert.

    """

    progress_json: str | None = None
    current_step_index: int | None = None
    completed_step_count: int | None = None
    logs: list[LogRow] = field(default_factory=list)

    def take_logs(self) -> list[LogRow]:
        """Return and clear the pending log lines."""
        logs, self.logs = self.logs, []
        return logs

    def take_run_fields(self) -> tuple[str | None, int | None, int | None]:
        """Return and clear ``(progress_json, current_step_index, completed_step_count)``."""
        fields = (self.progress_json, self.current_step_index, self.completed_step_count)
        self.progress_json = self.current_step_index = self.completed_step_count = None
        return fields

    def __bool__(self) -> bool:
        return bool(
            self.logs
            or self.progress_json is not None
            or self.current_step_index is not None
            or self.completed_step_count is not None
        )


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Filters for :meth:`SQLiteStore.get_runs` (all optional, combined with AND)."""

    statuses: tuple[str, ...] = ()
    job_names: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    limit: int | None = None
    offset: int = 0
