"""The Store's reads: runs, steps and logs as records, and what resuming a run needs.

Mixed into :class:`~durably_web.storage.sqlite.SQLiteStore`, which owns the connection and the
queries; kept apart so the write side (fencing, transactions) reads on its own. No method here
writes or opens a transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from durably_web.clock import format_timestamp
from durably_web.models import Log, Run, Step
from durably_web.storage.connection import Connection, Param
from durably_web.storage.lockwait import waits_for_lock
from durably_web.storage.records import CompletedStep, PendingRetry, RunFilter
from durably_web.storage.rows import log_from_row, read_time, run_from_row, step_from_row

__all__ = ["StoreReads"]


class StoreReads:
    """Read-only domain queries over ``self.connection`` with the named queries ``self._q``."""

    connection: Connection
    _q: dict[str, str]

    @waits_for_lock
    async def completed_steps(self, run_id: str) -> dict[str, CompletedStep]:
        """See :meth:`Store.completed_steps`."""
        rows = self.connection.query(self._q["completed_steps"], (run_id,))
        return {
            row["name"]: CompletedStep(row["index"], row["output"], row["error"]) for row in rows
        }

    @waits_for_lock
    async def replayed_logs(self, run_id: str) -> dict[str | None, int]:
        """See :meth:`Store.replayed_logs`."""
        rows = self.connection.query(self._q["replayed_logs"], (run_id,))
        return {row["step"]: int(row["n"]) for row in rows}

    @waits_for_lock
    async def pending_retries(self, run_id: str) -> dict[str, PendingRetry]:
        """See :meth:`Store.pending_retries`."""
        rows = self.connection.query(self._q["pending_retries"], (run_id,))
        found: dict[str, PendingRetry] = {}
        for row in rows:
            due, readable = read_time(row["retry_at"])
            if due is not None and readable:
                found[row["name"]] = PendingRetry(int(row["attempt"] or 1), due.timestamp())
        return found

    @waits_for_lock
    async def next_wake(self, now: float, job_names: Iterable[str]) -> float | None:
        """See :meth:`Store.next_wake`."""
        params = (format_timestamp(now), json.dumps(sorted(job_names)))
        due, readable = read_time(self.connection.query(self._q["next_wake"], params)[0]["due"])
        return due.timestamp() if due is not None and readable else None

    @waits_for_lock
    async def unknown_job_runs(
        self, known: Iterable[str], waiting_since: float, now: float, limit: int
    ) -> list[Run]:
        """See :meth:`Store.unknown_job_runs`."""
        params = (
            json.dumps(sorted(known)),
            format_timestamp(waiting_since),
            format_timestamp(now),
            limit,
        )
        return [
            run_from_row(row) for row in self.connection.query(self._q["unknown_job_runs"], params)
        ]

    @waits_for_lock
    async def get_run(self, run_id: str) -> Run | None:
        """See :meth:`Store.get_run`."""
        rows = self.connection.query(self._q["get_run"], (run_id,))
        return run_from_row(rows[0]) if rows else None

    @waits_for_lock
    async def get_runs(self, run_filter: RunFilter) -> list[Run]:
        """See :meth:`Store.get_runs`."""
        clauses: list[str] = []
        params: list[Param] = []
        if len(run_filter.statuses) == 1:
            clauses.append(self._q["filter_status"])
            params.append(run_filter.statuses[0])
        elif run_filter.statuses:
            clauses.append(self._q["filter_statuses"])
            params.append(json.dumps(run_filter.statuses))
        if len(run_filter.job_names) == 1:
            clauses.append(self._q["filter_job"])
            params.append(run_filter.job_names[0])
        elif run_filter.job_names:
            clauses.append(self._q["filter_jobs"])
            params.append(json.dumps(run_filter.job_names))
        for key, value in run_filter.labels:
            clauses.append(self._q["filter_label"])
            params.extend((key, value))
        sql = self._q["list_runs"].replace("{filters}", " AND ".join(clauses) or "1")
        params.extend((-1 if run_filter.limit is None else run_filter.limit, run_filter.offset))
        return [run_from_row(row) for row in self.connection.query(sql, params)]

    @waits_for_lock
    async def get_steps(self, run_id: str) -> list[Step]:
        """See :meth:`Store.get_steps`."""
        return [
            step_from_row(row) for row in self.connection.query(self._q["get_steps"], (run_id,))
        ]

    @waits_for_lock
    async def get_logs(self, run_id: str) -> list[Log]:
        """See :meth:`Store.get_logs`."""
        return [log_from_row(row) for row in self.connection.query(self._q["get_logs"], (run_id,))]
