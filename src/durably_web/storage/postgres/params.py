"""Parameters of the PostgreSQL store's statements, built from the engine's values.

Ids and timestamps are made here, before the first attempt, so a statement retried after a lost
connection writes the same rows (which ``ON CONFLICT (id) DO NOTHING`` then skips).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from durably_web.clock import format_timestamp
from durably_web.ids import new_ulid
from durably_web.storage.records import LogRow, RunDelta

__all__ = ["LOG_COLUMNS", "log_params", "run_update", "step_params"]

LOG_COLUMNS = (
    "log_ids",
    "log_run_ids",
    "log_steps",
    "log_levels",
    "log_messages",
    "log_data",
    "log_times",
)
"""The ``{logs}`` fragment's array parameters, in ``LogRow`` order."""


def step_params(
    run_id: str,
    name: str,
    index: int,
    status: str,
    output_json: str | None,
    error: str | None,
) -> dict[str, Any]:
    """Return a step row's parameters (``write_step``) with a new id; times are added later."""
    return {
        "id": new_ulid(),
        "run_id": run_id,
        "name": name,
        "index": index,
        "status": status,
        "output": output_json,
        "error": error,
    }


def log_params(logs: Sequence[LogRow]) -> dict[str, list[Any]]:
    """Return the ``{logs}`` fragment's parameters: one array per column."""
    columns: list[list[Any]] = [[], [], [], [], [], [], []]
    for log in logs:
        for column, value in zip(columns, log, strict=True):
            column.append(value)
    return dict(zip(LOG_COLUMNS, columns, strict=True))


def run_update(run_id: str, generation: int, delta: RunDelta, now: float) -> dict[str, Any]:
    """Return a fenced run update's parameters: the delta's progress, counters and log lines."""
    return {
        "run_id": run_id,
        "generation": generation,
        "progress": delta.progress_json,
        "step_index": delta.current_step_index,
        "step_count": delta.completed_step_count,
        "now": format_timestamp(now),
        **log_params(delta.logs),
    }
