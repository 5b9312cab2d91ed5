"""The PostgreSQL store's reads: runs, steps and logs as records, and what resuming needs.

Mixed into :class:`~durably_web.storage.postgres.store.PostgresStore`, as
:class:`~durably_web.storage.reads.StoreReads` is into the SQLite store. Every read is retried
through a lost connection (see :class:`~durably_web.storage.postgres.database.Database`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from durably_web.clock import format_timestamp
from durably_web.models import Log, Run, Step
from durably_web.storage.postgres.database import Database
from durably_web.storage.records import CompletedStep, PendingRetry, RunFilter
from durably_web.storage.rows import log_from_row, read_time, run_from_row, step_from_row

__all__ = ["PostgresReads"]


class PostgresReads:
    """Read-only domain queries over ``self.database`` with the named queries ``self._q``."""

    database: Database
    _q: dict[str, str]

    async def _read(self, sql: str, params: Any) -> list[dict[str, Any]]:
        return await self.database.fetch(sql, params, retry=True)

    async def completed_steps(self, run_id: str) -> dict[str, CompletedStep]:
        """See :meth:`Store.completed_steps`."""
        rows = await self._read(self._q["completed_steps"], {"run_id": run_id})
        return {
            row["name"]: CompletedStep(row["index"], row["output"], row["error"]) for row in rows
        }

    async def replayed_logs(self, run_id: str) -> dict[str | None, int]:
        """See :meth:`Store.replayed_logs`."""
        rows = await self._read(self._q["replayed_logs"], {"run_id": run_id})
        return {row["step"]: int(row["n"]) for row in rows}

    async def pending_retries(self, run_id: str) -> dict[str, PendingRetry]:
        """See :meth:`Store.pending_retries`."""
        rows = await self._read(self._q["pending_retries"], {"run_id": run_id})
        found: dict[str, PendingRetry] = {}
        for row in rows:
            due, readable = read_time(row["retry_at"])
            if due is not None and readable:
                found[row["name"]] = PendingRetry(int(row["attempt"] or 1), due.timestamp())
        return found

    async def next_wake(self, now: float, job_names: Iterable[str]) -> float | None:
        """See :meth:`Store.next_wake`."""
        params = {"now": format_timestamp(now), "jobs": sorted(job_names)}
        due, readable = read_time((await self._read(self._q["next_wake"], params))[0]["due"])
        return due.timestamp() if due is not None and readable else None

    async def unknown_job_runs(
        self, known: Iterable[str], waiting_since: float, now: float, limit: int
    ) -> list[Run]:
        """See :meth:`Store.unknown_job_runs`."""
        params = {
            "known": sorted(known),
            "since": format_timestamp(waiting_since),
            "now": format_timestamp(now),
            "limit": limit,
        }
        rows = await self.database.fetch(self._q["unknown_job_runs"], params, retry=True)
        return [run_from_row(row) for row in rows]

    async def get_run(self, run_id: str) -> Run | None:
        """See :meth:`Store.get_run`."""
        rows = await self.database.fetch(self._q["get_run"], {"run_id": run_id}, retry=True)
        return run_from_row(rows[0]) if rows else None

    async def get_runs(self, run_filter: RunFilter) -> list[Run]:
        """See :meth:`Store.get_runs`."""
        clauses: list[str] = []
        params: list[Any] = []
        if len(run_filter.statuses) == 1:
            clauses.append(self._q["filter_status"])
            params.append(run_filter.statuses[0])
        elif run_filter.statuses:
            clauses.append(self._q["filter_statuses"])
            params.append(list(run_filter.statuses))
        if len(run_filter.job_names) == 1:
            clauses.append(self._q["filter_job"])
            params.append(run_filter.job_names[0])
        elif run_filter.job_names:
            clauses.append(self._q["filter_jobs"])
            params.append(list(run_filter.job_names))
        for key, value in run_filter.labels:
            clauses.append(self._q["filter_label"])
            params.extend((key, value))
        sql = self._q["list_runs"].replace("{filters}", " AND ".join(clauses) or "TRUE")
        params.extend((run_filter.limit, run_filter.offset))
        return [run_from_row(row) for row in await self.database.fetch(sql, params, retry=True)]

    async def get_steps(self, run_id: str) -> list[Step]:
        """See :meth:`Store.get_steps`."""
        rows = await self.database.fetch(self._q["get_steps"], {"run_id": run_id}, retry=True)
        return [step_from_row(row) for row in rows]

    async def get_logs(self, run_id: str) -> list[Log]:
        """See :meth:`Store.get_logs`."""
        rows = await self.database.fetch(self._q["get_logs"], {"run_id": run_id}, retry=True)
        return [log_from_row(row) for row in rows]
