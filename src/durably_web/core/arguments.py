"""Checks of the arguments of :class:`~durably_web.Durably`'s methods, with clear errors.

Every public method checks what it is given before touching the database: a run id, a
``get_runs`` filter, a purge cutoff, a count. Each check raises
:class:`~durably_web.errors.ValidationError` naming the argument and what was wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from durably_web.core.trigger import validate_label_filter
from durably_web.errors import ValidationError
from durably_web.json_value import check_text, shown
from durably_web.models import RUN_STATUSES
from durably_web.options import MAX_RETENTION, check_int, check_seconds, parse_duration
from durably_web.storage.records import RunFilter

__all__ = ["MAX_INT", "check_run_id", "purge_cutoff", "run_filter"]

MAX_INT = 2**31 - 1


def check_run_id(value: Any) -> str:
    """Return a run id: a non-empty string of valid Unicode."""
    if not isinstance(value, str) or not value:
        raise ValidationError(f"run_id must be a non-empty string, got {shown(value)}")
    return check_text(value, "run_id")


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (check_text(value, name),)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(check_text(v, name) for v in value)
    raise ValidationError(f"{name} must be a string or a list of strings, got {shown(value)}")


def run_filter(
    status: str | Sequence[str] | None,
    job_name: str | Sequence[str] | None,
    labels: Mapping[str, str] | None,
    limit: int | None,
    offset: int,
) -> RunFilter:
    """Return the store's filter for ``get_runs`` arguments (statuses in upstream's words)."""
    statuses = _strings(status, "status")
    for value in statuses:
        if value not in RUN_STATUSES:
            named = value if value.isprintable() else shown(value)  # one line, whatever it is
            raise ValidationError(
                f"Invalid status: {named or 'empty value'}. "
                f"Must be one of: {', '.join(RUN_STATUSES)}"
            )
    if limit is not None:
        check_int(limit, "limit", minimum=0, maximum=MAX_INT)
    check_int(offset, "offset", minimum=0, maximum=MAX_INT)
    return RunFilter(
        statuses=statuses,
        job_names=_strings(job_name, "job_name"),
        labels=validate_label_filter(labels),
        limit=limit,
        offset=offset,
    )


def purge_cutoff(older_than: Any, now: float) -> float:
    """Return the epoch seconds before which ``purge_runs`` deletes finished runs.

    Args:
        older_than: an aware datetime, a ``timedelta`` before ``now``, or a duration before
            ``now`` like ``"7d"``, ``"12h"``, ``"30m"``.
        now: the engine's time.

    """
    if isinstance(older_than, str):
        return now - parse_duration(older_than, "older_than")
    if isinstance(older_than, timedelta):
        age = older_than.total_seconds()
        return now - check_seconds(age, "older_than", maximum=MAX_RETENTION, allow_zero=True)
    if isinstance(older_than, datetime):
        if older_than.tzinfo is None:
            raise ValidationError("older_than must be timezone-aware (e.g. UTC)")
        # Any time before 1970 selects what the epoch does: no run is older.
        return max(older_than.timestamp(), 0.0)
    raise ValidationError(
        f"older_than must be a datetime, timedelta or duration like '7d', got {shown(older_than)}"
    )
