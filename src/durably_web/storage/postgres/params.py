"""Parameters of the PostgreSQL store's statements, built from the engine's values.

Ids and timestamps are made here, before the first attempt, so a statement retried after a lost
connection writes the same rows (which ``ON CONFLICT (id) DO NOTHING`` then skips).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from durably_web.clock import format_timestamp
from durably_web.ids import new_ulid
from durably_web.storage.records import LogRow, Pending

__all__ = ["LOG_COLUMNS", "log_params", "run_fields", "step_params"]

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
    started_at: float,
    now: float,
) -> dict[str, Any]:
    """Return a step row's parameters (``write_step``), with a new id."""
    return {
        "id": new_ulid(now),
        "run_id": run_id,
        "name": name,
        "index": index,
        "status": status,
        "output": output_json,
        "error": error,
        "started_at": format_timestamp(started_at),
        "now": format_timestamp(now),
    }


def log_params(logs: Sequence[LogRow]) -> dict[str, list[Any]]:
    """Return the ``{logs}`` fragment's parameters: one array per column."""
    columns: list[list[Any]] = [[], [], [], [], [], [], []]
    for log in logs:
        for column, value in zip(columns, log, strict=True):
            column.append(value)
    return dict(zip(LOG_COLUMNS, columns, strict=True))


def run_fields(run_id: str, generation: int, pending: Pending, now: float) -> dict[str, Any]:
    """Return a fenced run update's parameters: pending counters, progress and logs, taken."""
    progress, index, count = pending.take_run_fields()
    return {
        "run_id": run_id,
        "generation": generation,
        "progress": progress,
        "step_index": index,
        "step_count": count,
        "now": format_timestamp(now),
        **log_params(pending.take_logs()),
    }
