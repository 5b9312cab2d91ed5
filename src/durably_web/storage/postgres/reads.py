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
from durably_web.storage.records import CompletedStep, RunFilter
from durably_web.storage.rows import log_from_row, run_from_row, step_from_row

__all__ = ["PostgresReads"]


class PostgresReads:
    """Read-only domain queries over ``self.database`` with the named queries ``self._q``."""

    database: Database
    _q: dict[str, str]

    async def _read(self, sql: str, params: Any) -> list[dict[str, Any]]:
        return await self.database.fetch(sql, params, retry=True)

    async def completed_steps(self, run_id: str) -> dict[str, CompletedStep]:
        """Return the completed checkpoints of a run by step name."""
        rows = await self._read(self._q["completed_steps"], {"run_id": run_id})
        return {row["name"]: CompletedStep(row["index"], row["output"]) for row in rows}

    async def count_replayed_logs(self, run_id: str) -> int:
        """Return how many of the run's stored log lines a resumed attempt logs again.

        Those written outside any completed step: a completed step replays from its
        checkpoint without calling its function, so its lines are not logged again.
        """
        rows = await self._read(self._q["count_replayed_logs"], {"run_id": run_id})
        return int(rows[0]["n"])

    async def unknown_job_runs(
        self, known: Iterable[str], waiting_since: float, now: float, limit: int
    ) -> list[Run]:
        """Return runs of jobs not in ``known`` that nothing has claimed since ``waiting_since``.

        That is: pending since then, or leased with a lease that expired then, and no live
        lease on any run of their job (which would show a worker that knows the job).
        """
        params = {
            "known": sorted(known),
            "since": format_timestamp(waiting_since),
            "now": format_timestamp(now),
            "limit": limit,
        }
        rows = await self.database.fetch(self._q["unknown_job_runs"], params, retry=True)
        return [run_from_row(row) for row in rows]

    async def get_run(self, run_id: str) -> Run | None:
        """Return the run, or None."""
        rows = await self.database.fetch(self._q["get_run"], {"run_id": run_id}, retry=True)
        return run_from_row(rows[0]) if rows else None

    async def get_runs(self, run_filter: RunFilter) -> list[Run]:
        """Return runs matching the filter, newest first."""
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
        """Return a run's step records in index order."""
        rows = await self.database.fetch(self._q["get_steps"], {"run_id": run_id}, retry=True)
        return [step_from_row(row) for row in rows]

    async def get_logs(self, run_id: str) -> list[Log]:
        """Return a run's log lines, oldest first."""
        rows = await self.database.fetch(self._q["get_logs"], {"run_id": run_id}, retry=True)
        return [log_from_row(row) for row in rows]
