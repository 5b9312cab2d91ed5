"""The read-only commands: ``runs`` lists runs as a table, ``run-info`` shows one run in full.

A stored value that cannot be parsed (a hand-edited row, a timestamp beyond the year 9999) does
not stop either command: ``run-info`` names such columns on an ``Unreadable`` line.

Both take a database that must already exist and be a durably database (checked read-only
first, see :func:`~durably_web.cli.common.check_database`), and neither registers a job: they
show what is stored, whichever program wrote it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

from durably_web.cli.common import UsageError, snippet
from durably_web.cli.render import format_log, format_progress, format_table
from durably_web.core.durably import Durably
from durably_web.core.factory import create_durably
from durably_web.models import Log, Run, Step

__all__ = ["list_runs", "show_run"]

_ERROR_WIDTH = 48
_OUTPUT_WIDTH = 60


async def list_runs(
    database: str,
    *,
    statuses: Sequence[str] | None = None,
    job_name: str | None = None,
    limit: int = 20,
    out: TextIO | None = None,
) -> int:
    """Print runs as an aligned table, newest first.

    Args:
        database: the URL of an existing durably database (SQLite or PostgreSQL).
        statuses: only runs with one of these statuses.
        job_name: only runs of this job.
        limit: at most this many rows (a last line says when there are more).
        out: where to print (default ``sys.stdout``).

    Returns:
        0.

    """
    out = out or sys.stdout
    durably = create_durably(database)
    try:
        runs = await durably.get_runs(status=statuses or None, job_name=job_name, limit=limit + 1)
    finally:
        await durably.close()
    if not runs:
        print("No runs found.", file=out)
        return 0
    headers = ("ID", "JOB", "STATUS", "PROGRESS", "STEPS", "CREATED", "ERROR")
    rows = [
        (
            run.id,
            run.job_name,
            run.status,
            format_progress(run.progress),
            str(run.completed_step_count),
            _local(run.created_at),
            "" if run.error is None else snippet(run.error, _ERROR_WIDTH),
        )
        for run in runs[:limit]
    ]
    print(format_table(headers, rows), file=out)
    if len(runs) > limit:
        print(f"(more runs not shown; use --limit to see more than {limit})", file=out)
    return 0


async def show_run(database: str, run_id: str, *, out: TextIO | None = None) -> int:
    """Print every field of a run, then its steps and its logs.

    Args:
        database: the URL of an existing durably database (SQLite or PostgreSQL).
        run_id: the run to show.
        out: where to print (default ``sys.stdout``).

    Returns:
        0.

    Raises:
        UsageError: there is no run with that id.

    """
    out = out or sys.stdout
    durably = create_durably(database)
    try:
        run = await durably.get_run(run_id)
        if run is None:
            raise UsageError(f"run not found: {run_id}")
        await _print_run(durably, run, out)
    finally:
        await durably.close()
    return 0


async def _print_run(durably: Durably, run: Run, out: TextIO) -> None:
    lease = "-"
    if run.lease_owner is not None or run.lease_expires_at is not None:
        lease = f"{run.lease_owner or '-'}, expires {_full(run.lease_expires_at)}"
    fields = [
        ("Run", run.id),
        ("Job", run.job_name),
        ("Status", run.status),
        ("Input", _json(run.input)),
        ("Output", _json(run.output) if run.status == "completed" else "-"),
        ("Error", run.error or "-"),
        ("Progress", format_progress(run.progress) + _message(run)),
        ("Steps done", f"{run.completed_step_count} (next step index {run.current_step_index})"),
        ("Idempotency key", run.idempotency_key or "-"),
        ("Concurrency key", run.concurrency_key or "-"),
        ("Labels", _json(run.labels) if run.labels else "-"),
        ("Lease", lease),
        ("Lease generation", str(run.lease_generation)),
        ("Created", _full(run.created_at)),
        ("Started", _full(run.started_at)),
        ("Completed", _full(run.completed_at)),
        ("Updated", _full(run.updated_at)),
    ]
    if run.unreadable:
        fields.append(("Unreadable", _unreadable(run.unreadable)))
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        print(f"{name.ljust(width)}  {value}", file=out)
    steps = await durably.get_steps(run.id)
    logs = await durably.get_logs(run.id)
    records: list[Step | Log] = [*steps, *logs]
    for record in records:
        if record.unreadable:
            kind = "step" if isinstance(record, Step) else "log line"
            print(f"Unreadable in {kind} {record.id}: {_unreadable(record.unreadable)}", file=out)
    print(file=out)
    if steps:
        print(f"Steps ({len(steps)})", file=out)
        rows = [
            (
                str(step.index),
                step.name,
                step.status,
                snippet(step.error if step.status != "completed" else step.output, _OUTPUT_WIDTH),
            )
            for step in steps
        ]
        print(format_table(("INDEX", "NAME", "STATUS", "OUTPUT"), rows), file=out)
    elif run.status == "completed":
        print(
            "Steps: none kept. Steps and logs are deleted when a run completes, unless the "
            "engine runs with preserve_steps=True (durably-web run --preserve-steps).",
            file=out,
        )
    else:
        print("Steps: none checkpointed yet", file=out)
    if logs:
        print(file=out)
        print(f"Logs ({len(logs)})", file=out)
        for log in logs:
            where = f" {log.step_name}:" if log.step_name else ""
            line = format_log(log.level, log.message, log.data)
            print(f"{_local(log.created_at)}{where} {line}", file=out)
    elif run.status != "completed":
        print("Logs: none", file=out)


def _unreadable(columns: dict[str, str]) -> str:
    """Name each stored column that could not be parsed, with (the start of) its raw text."""
    return "; ".join(
        f"{column} = {snippet(raw, _OUTPUT_WIDTH)!r} (cannot be parsed)"
        for column, raw in columns.items()
    )


def _message(run: Run) -> str:
    if run.progress is None or not run.progress.message:
        return ""
    return f" {run.progress.message}"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _in_local_time(value: datetime) -> datetime:
    """``value`` in the local time zone, or as it is if that zone would pass the year 9999."""
    try:
        return value.astimezone()
    except (OverflowError, ValueError):
        return value


def _local(value: datetime) -> str:
    return _in_local_time(value).strftime("%Y-%m-%d %H:%M:%S")


def _full(value: datetime | None) -> str:
    return "-" if value is None else _in_local_time(value).isoformat(timespec="milliseconds")
