"""Decode stored rows into runs, steps and logs, whatever the columns hold.

A row is read by every listing, so one value that cannot be parsed (a timestamp beyond the
year 9999, JSON cut short by a hand edit or a foreign writer) must not make ``get_runs``, the
HTTP ``/runs`` or ``durably-web runs`` fail for every run, nor stop a run from being shown or
cancelled. Each column is decoded on its own; one that cannot be is replaced by a stand-in and
named, with its raw text, in the record's ``unreadable`` mapping. Executing a run is stricter:
the worker fails a run whose input or labels are unreadable (see ``durably_web.core.execution``).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from durably_web.ids import ulid_time
from durably_web.models import (
    WAIT_KINDS,
    Disposition,
    Log,
    Progress,
    Run,
    Schedule,
    Step,
    Waiting,
)
from durably_web.storage.connection import Row

__all__ = ["log_from_row", "read_time", "run_from_row", "schedule_from_row", "step_from_row"]

_LATEST = datetime.max.replace(tzinfo=UTC)
_FAR_FUTURE = re.compile(r"^\+?\d{5,}-")
_EPOCH = datetime.fromtimestamp(0, UTC)


def read_time(text: str | None) -> tuple[datetime | None, bool]:
    """Parse a stored ISO-8601 timestamp; return ``(value, readable)``, never raising.

    A timestamp beyond the year 9999 (five or more year digits) reads as the latest time
    ``datetime`` can hold, so "expires then" stays "far in the future"; anything else that does
    not parse reads as None.
    """
    if text is None:
        return None, True
    if not isinstance(text, str):
        return None, False
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return (_LATEST if _FAR_FUTURE.match(text) else None), False
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value, True


class _Reader:
    """Reads the columns of one row, noting each that cannot be parsed."""

    __slots__ = ("row", "unreadable")

    def __init__(self, row: Row) -> None:
        self.row = row
        self.unreadable: dict[str, str] = {}

    def _bad(self, column: str) -> None:
        self.unreadable[column] = str(self.row[column])

    def json(self, column: str, *, required: bool = False) -> Any:
        text = self.row[column]
        if text is None or (text == "" and not required):
            return None
        try:
            return json.loads(text)
        except (TypeError, ValueError, RecursionError):
            self._bad(column)
            return text

    def time(self, column: str) -> datetime | None:
        value, readable = read_time(self.row[column])
        if not readable:
            self._bad(column)
        return value

    def required_time(self, column: str, fallback: datetime | None = None) -> datetime:
        """Return the column's time; else ``fallback``, else the time of the row's ULID ``id``."""
        value = self.time(column)
        if value is not None:
            return value
        if fallback is None:  # only for a row whose column is unreadable: the id's time
            fallback = _id_time(self.row["id"])
        return fallback or _EPOCH

    def labels(self) -> dict[str, str]:
        text = self.row["labels"]
        value = self.json("labels") if text else {}
        if "labels" in self.unreadable:
            return {}
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            self._bad("labels")
            return {}
        return value

    def wait(self) -> Waiting | None:
        """Return the wait recorded on a run row (kind, step name, end, start), if any."""
        kind = self.row.get("wait_kind")
        if kind is None:
            return None
        if kind not in WAIT_KINDS:
            self._bad("wait_kind")
            return None
        name = self.row.get("wait_name")
        return Waiting(
            kind,
            name if isinstance(name, str) else "",
            self.time("wait_until"),
            self.time("wait_started_at"),
        )

    def progress(self) -> Progress | None:
        value = self.json("progress")
        if value is None or "progress" in self.unreadable:
            return None
        if isinstance(value, dict) and isinstance(value.get("current"), (int, float)):
            total, message = value.get("total"), value.get("message")
            if (total is None or isinstance(total, (int, float))) and (
                message is None or isinstance(message, str)
            ):
                return Progress.from_wire(value)
        self._bad("progress")
        return None


def _id_time(record_id: str) -> datetime | None:
    seconds = ulid_time(record_id)
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def run_from_row(row: Row, disposition: Disposition | None = None) -> Run:
    """Build a :class:`Run` from a ``durably_runs`` row (see the module docstring)."""
    read = _Reader(row)
    created = read.required_time("created_at")
    status = row["status"]
    wait = read.wait()
    run_at = read.time("wait_until") if status == "pending" else None
    return Run(
        id=row["id"],
        job_name=row["job_name"],
        input=read.json("input", required=True),
        status=status,
        idempotency_key=row["idempotency_key"],
        concurrency_key=row["concurrency_key"],
        current_step_index=row["current_step_index"],
        completed_step_count=row["completed_step_count"],
        progress=read.progress(),
        output=read.json("output"),
        error=row["error"],
        labels=read.labels(),
        lease_owner=row["lease_owner"],
        lease_expires_at=read.time("lease_expires_at"),
        lease_generation=row["lease_generation"],
        started_at=read.time("started_at"),
        completed_at=read.time("completed_at"),
        created_at=created,
        updated_at=read.required_time("updated_at", created),
        waiting=wait if status == "waiting" else None,
        run_at=run_at,
        wait=wait,
        disposition=disposition,
        unreadable=read.unreadable,
    )


def step_from_row(row: Row) -> Step:
    """Build a :class:`Step` from a ``durably_steps`` row."""
    read = _Reader(row)
    return Step(
        row["id"],
        row["run_id"],
        row["name"],
        row["index"],
        row["status"],
        read.json("output"),
        row["error"],
        read.required_time("started_at"),
        read.time("completed_at"),
        attempt=row.get("attempt") or 1,
        retry_at=read.time("retry_at"),
        unreadable=read.unreadable,
    )


def log_from_row(row: Row) -> Log:
    """Build a :class:`Log` from a ``durably_logs`` row."""
    read = _Reader(row)
    return Log(
        row["id"],
        row["run_id"],
        row["step_name"],
        row["level"],
        row["message"],
        read.json("data"),
        read.required_time("created_at"),
        unreadable=read.unreadable,
    )


def schedule_from_row(row: Row) -> Schedule:
    """Build a :class:`Schedule` from a ``durably_schedules`` row."""
    read = _Reader(row)
    created = read.required_time("created_at", None)
    return Schedule(
        name=row["name"],
        job_name=row["job_name"],
        cron=row["cron"],
        timezone=row["timezone"],
        input=read.json("input"),
        catch_up=row["catch_up"],
        next_tick=read.required_time("next_tick_at", created),
        last_tick=read.time("last_tick_at"),
        created_at=created,
        updated_at=read.required_time("updated_at", created),
    )
