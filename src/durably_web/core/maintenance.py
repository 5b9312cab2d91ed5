"""Idle maintenance: purge old runs, and deal with runs of jobs no worker knows.

The worker loop runs it when it has nothing to do, and ``process_until_idle`` when it ran out
of work (upstream Durably does the same), so a cron-driven worker keeps the database tidy too.

**Retention.** With ``retain_runs``, finished runs older than that are deleted, at most once a
minute, a hundred at a time.

**Unknown jobs.** A run whose job no worker registers would wait forever (a job renamed or
removed, a typo in a trigger from another program). Unless ``unknown_job_grace`` is None, the
worker looks for runs of jobs it does not register that nobody has claimed for a while (and
whose job has no live lease anywhere, which would show a worker that knows it is busy with it):

- once such a run has waited ``min(unknown_job_grace, lease_duration)``, the worker stores a
  warning as the run's ``error`` (``durably-web runs``/``run-info`` and the HTTP API show it;
  a worker that claims the run clears it) and emits ``worker:error`` with context
  ``unknown-job``;
- once it has waited ``unknown_job_grace`` (5 minutes by default), the worker fails it with
  ``Unknown job: <name>``, as upstream Durably does at once, and emits ``run:fail``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from durably_web.clock import Clock, format_timestamp
from durably_web.events import EventBus, RunFail
from durably_web.job import JobDefinition
from durably_web.models import Run
from durably_web.options import Options
from durably_web.storage.base import Store

__all__ = ["Maintenance", "UnknownJob"]

_PURGE_EVERY = 60.0
_PURGE_BATCH = 100
_UNKNOWN_EVERY = 10.0
_UNKNOWN_BATCH = 100

Report = Callable[[BaseException, str, Run | None], None]


class UnknownJob(Warning):
    """A run waits for a job no worker registers (``worker:error`` context ``unknown-job``)."""


class Maintenance:
    """What an idle worker does besides claiming (see the module docstring).

    Args:
        store / bus / clock / options: the engine's services and settings.
        jobs: the registered job definitions by name (read live).
        report: emits ``worker:error``.

    """

    def __init__(
        self,
        *,
        store: Store,
        bus: EventBus,
        clock: Clock,
        options: Options,
        jobs: Mapping[str, JobDefinition[Any, Any]],
        report: Report,
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self.options = options
        self.jobs = jobs
        self.report = report
        self._last_purge: float | None = None
        self._last_unknown: float | None = None

    async def run(self, *, now_due: bool = False) -> None:
        """Do what is due; with ``now_due`` check for unknown jobs whatever the last check."""
        now = self.clock.now()
        retain = self.options.retain_runs
        if retain is not None and (
            self._last_purge is None or now - self._last_purge >= _PURGE_EVERY
        ):
            self._last_purge = now
            await self.store.purge_runs(now - retain, _PURGE_BATCH)
        if self.options.unknown_job_grace is not None and (
            now_due or self._last_unknown is None or now - self._last_unknown >= _UNKNOWN_EVERY
        ):
            self._last_unknown = now
            await self._unknown_jobs(now, self.options.unknown_job_grace)

    async def _unknown_jobs(self, now: float, grace: float) -> None:
        known = list(self.jobs)
        warn_after = min(grace, self.options.lease_duration)
        runs = await self.store.unknown_job_runs(known, now - warn_after, now, _UNKNOWN_BATCH)
        for run in runs:
            since = _waiting_since(run)
            if since is not None and since <= now - grace:
                await self._fail(run, now, grace)
            else:
                await self._warn(run, now, grace, since)

    async def _warn(self, run: Run, now: float, grace: float, since: float | None) -> None:
        deadline = (since if since is not None else now) + grace
        warning = (
            f"Unknown job: {run.job_name}. No worker that registers this job has claimed the "
            f"run since {format_timestamp(since or now)}; it fails at "
            f"{format_timestamp(deadline)} unless one does."
        )
        if await self.store.flag_unknown_job(run.id, warning):
            self.report(UnknownJob(warning), "unknown-job", run)

    async def _fail(self, run: Run, now: float, grace: float) -> None:
        error = (
            f"Unknown job: {run.job_name} (no worker that registers it claimed the run within "
            f"{grace:g}s; register the job under this name, then retry the run)"
        )
        failed = await self.store.fail_unknown_job(run.id, error, now - grace, now)
        if failed is not None:
            self.bus.emit(
                RunFail,
                run_id=failed.id,
                job_name=failed.job_name,
                labels=failed.labels,
                error=error,
                failed_step_name="unknown",
            )


def _waiting_since(run: Run) -> float | None:
    """When the run started waiting: its lease's expiry if leased, else its last update."""
    when = run.lease_expires_at if run.status == "leased" else run.updated_at
    return None if when is None or "updated_at" in run.unreadable else when.timestamp()
