"""What a running run has produced and not written yet: progress, counters, logs, steps.

A checkpoint writes only its step row; ``step.progress`` and ``step.log`` write nothing at
once. What they leave is kept here, inside the run's
:class:`~durably_web.core.execution.Execution`, and rides along with its next fenced write (a
checkpoint, a flush within 50 ms, the outcome) as a plain
:class:`~durably_web.storage.records.RunDelta`. Only a write that committed makes this forget
what it carried, so a write that fails (a lock held too long, a full disk) loses nothing:
it goes out with the next one. What changed after the delta was taken stays.

In the batched checkpoint mode (:mod:`~durably_web.core.batching`) completed steps wait
here too, and every write carries them, first, in its transaction.
"""

from __future__ import annotations

from durably_web.storage.records import LogRow, RunDelta, StepRow

__all__ = ["Unwritten"]

_NOTHING = RunDelta()
"""The delta of a write that carries nothing kept (a plain value: shared)."""


class Unwritten:
    """The unwritten state of one execution (see the module docstring)."""

    __slots__ = ("_counters", "_logs", "_progress_json", "_steps")

    def __init__(self) -> None:
        self._progress_json: str | None = None
        self._counters: tuple[int, int] | None = None
        self._logs: list[LogRow] = []
        self._steps: list[StepRow] = []

    def set_progress(self, progress_json: str) -> None:
        """Keep the latest progress (JSON text) for the next write."""
        self._progress_json = progress_json

    def set_counters(self, current_step_index: int, completed_step_count: int) -> None:
        """Keep the run's step counters (absolute values) for the next write."""
        self._counters = (current_step_index, completed_step_count)

    def add_log(self, row: LogRow) -> None:
        """Keep a log line for the next write."""
        self._logs.append(row)

    def add_step(self, row: StepRow) -> None:
        """Keep a completed step for the next write (the batched checkpoint mode)."""
        self._steps.append(row)

    def has_rows(self) -> bool:
        """Whether log lines or kept steps wait (what a checkpoint's write would carry)."""
        return bool(self._logs) or bool(self._steps)

    @property
    def steps(self) -> int:
        """How many completed steps wait for a write."""
        return len(self._steps)

    def delta(self, *, logs_only: bool = False) -> RunDelta:
        """Return what is unwritten as a plain value (nothing is forgotten yet).

        Args:
            logs_only: only the log lines and kept steps, for a write that does not touch
                the run's row (a checkpoint writes only its step row).

        """
        if logs_only:
            if not self._logs and not self._steps:
                return _NOTHING  # the common case, on every checkpoint
            return RunDelta(logs=tuple(self._logs), steps=tuple(self._steps))
        index, count = self._counters if self._counters is not None else (None, None)
        return RunDelta(self._progress_json, index, count, tuple(self._logs), tuple(self._steps))

    def written(self, delta: RunDelta) -> None:
        """Forget what ``delta`` carried, once the write that carried it committed.

        Progress or counters that changed since the delta was taken stay unwritten, and so
        do the log lines added after it.
        """
        if delta.logs:
            del self._logs[: len(delta.logs)]
        if delta.steps:
            del self._steps[: len(delta.steps)]
        if delta.progress_json is not None and self._progress_json is delta.progress_json:
            self._progress_json = None
        counters = (delta.current_step_index, delta.completed_step_count)
        if delta.completed_step_count is not None and self._counters == counters:
            self._counters = None

    def __bool__(self) -> bool:
        return (
            bool(self._logs)
            or bool(self._steps)
            or self._progress_json is not None
            or self._counters is not None
        )
