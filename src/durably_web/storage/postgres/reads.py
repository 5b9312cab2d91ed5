"""The PostgreSQL store's reads: runs, steps and logs as records, and what resuming needs.

Mixed into :class:`~durably_web.storage.postgres.store.PostgresStore`, as
:class:`~durably_web.storage.reads.StoreReads` is into the SQLite store. Every read is retried
through a lost connection (see :class:`~durably_web.storage.postgres.database.Database`).

What resuming reads (completed steps, replayed log lines, pending retries) is answered without
a statement for a run this store has just leased for the first time (lease generation 1, see
:meth:`PostgresReads._note_lease`), until its holder writes anything: only a lease holder
writes a run's steps and log lines (a signal from elsewhere writes neither), and every lease
adds one to the generation, so before the first lease there are none. A fresh run then costs
three round trips fewer (of ~100 for a 100-step run; more with short runs).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from durably_web.clock import format_timestamp
from durably_web.models import Log, Run, Step
from durably_web.storage.postgres.database import Database
from durably_web.storage.records import CompletedStep, PendingRetry, RunFilter
from durably_web.storage.rows import log_from_row, read_time, run_from_row, step_from_row

__all__ = ["REPLAY_READS", "PostgresReads"]

REPLAY_READS = frozenset({"completed_steps", "replayed_logs", "pending_retries"})
"""What the engine reads to resume a run: nothing to read on a run's first lease."""
_FIRST_LEASES_KEPT = 10_000
"""At most this many first leases are remembered (forgetting one only costs its reads)."""


class PostgresReads:
    """Read-only domain queries over ``self.database`` with the named queries ``self._q``."""

    database: Database
    _q: dict[str, str]
    _first_leases: dict[str, set[str]]
    """Runs this store leased for the first time: the replay reads not answered yet."""

    async def _read(self, sql: str, params: Any) -> list[dict[str, Any]]:
        return await self.database.fetch(sql, params, retry=True)

    def _note_lease(self, run: Run) -> Run:
        """Note a run just leased (returned): on its first lease, replay reads need no statement."""
        if run.lease_generation != 1:  # a later lease reads; what an earlier left is void
            self._first_leases.pop(run.id, None)
            return run
        if len(self._first_leases) >= _FIRST_LEASES_KEPT:  # runs that never read (halted)
            self._first_leases.clear()
        self._first_leases[run.id] = set(REPLAY_READS)
        return run

    def _lease_over(self, run_id: str | None) -> None:
        """Forget a run's first lease: its holder is about to write (steps, logs, outcome).

        Called before every statement of a lease holder (``_held``, ``await_signal``): the
        replay reads are the first thing an attempt does, and after a write they must ask.
        """
        if run_id is not None:
            self._first_leases.pop(run_id, None)

    def _nothing_written(self, run_id: str, read: str) -> bool:
        """Whether ``read`` of ``run_id`` is known empty: the first read of its first lease."""
        unread = self._first_leases.get(run_id)
        if unread is None or read not in unread:
            return False
        unread.discard(read)
        if not unread:
            del self._first_leases[run_id]
        return True

    async def completed_steps(self, run_id: str) -> dict[str, CompletedStep]:
        """See :meth:`Store.completed_steps`."""
        if self._nothing_written(run_id, "completed_steps"):
            return {}
        rows = await self._read(self._q["completed_steps"], {"run_id": run_id})
        return {
            row["name"]: CompletedStep(row["index"], row["output"], row["error"]) for row in rows
        }

    async def replayed_logs(self, run_id: str) -> dict[str | None, int]:
        """See :meth:`Store.replayed_logs`."""
        if self._nothing_written(run_id, "replayed_logs"):
            return {}
        rows = await self._read(self._q["replayed_logs"], {"run_id": run_id})
        return {row["step"]: int(row["n"]) for row in rows}

    async def pending_retries(self, run_id: str) -> dict[str, PendingRetry]:
        """See :meth:`Store.pending_retries`."""
        if self._nothing_written(run_id, "pending_retries"):
            return {}
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
