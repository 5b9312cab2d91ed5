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
    The Store reads what it writes without removing it and calls :meth:`written` once the
    write committed: nothing pending is lost to a write that failed.

    Attributes:
        progress_json: the latest progress, as JSON text.
        current_step_index / completed_step_count: absolute counters, once changed.
        logs: log lines to insert.

    """

    progress_json: str | None = None
    current_step_index: int | None = None
    completed_step_count: int | None = None
    logs: list[LogRow] = field(default_factory=list)

    def run_fields(self) -> tuple[str | None, int | None, int | None]:
        """Return ``(progress_json, current_step_index, completed_step_count)``, kept."""
        return (self.progress_json, self.current_step_index, self.completed_step_count)

    def written(self, fields: tuple[str | None, int | None, int | None], logs: int) -> None:
        """Forget what a write committed: its first ``logs`` lines and the run ``fields``.

        Called only after the write succeeded, so a write that fails (a lock held too long,
        a full disk) leaves everything pending for the next one. Fields that changed since
        the write read them stay pending.
        """
        del self.logs[:logs]
        progress, index, count = fields
        if progress is not None and self.progress_json is progress:
            self.progress_json = None
        if index is not None and self.current_step_index == index:
            self.current_step_index = None
        if count is not None and self.completed_step_count == count:
            self.completed_step_count = None

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
