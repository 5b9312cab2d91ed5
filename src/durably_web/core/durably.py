"""The `Durably` facade: job registry, triggers, run management, queries, events, worker.

Create one with :func:`durably_web.create_durably`. It delegates storage to the Store,
execution to the Worker and Runtime, and following a run to :mod:`durably_web.core.watch`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from durably_web.clock import Clock
from durably_web.core.arguments import check_run_id, purge_cutoff, run_filter
from durably_web.core.busy import wait_out_busy
from durably_web.core.handles import JobHandle, Jobs
from durably_web.core.remote import RemoteRuns
from durably_web.core.schedules import Schedules
from durably_web.core.step import check_step_name
from durably_web.core.trigger import TriggerItem, announce, prepare
from durably_web.core.watch import wait_for, watch
from durably_web.core.worker import Worker
from durably_web.errors import ConflictError, NotFoundError, ValidationError
from durably_web.events import (
    Event,
    EventBus,
    EventHandler,
    RunCancel,
    RunDelete,
    RunRetry,
    RunSignal,
    RunTrigger,
)
from durably_web.job import JobDefinition
from durably_web.json_value import check_text, shown
from durably_web.models import Log, Run, Schedule, Step
from durably_web.options import (
    MAX_WAIT,
    Options,
    check_int,
    check_seconds,
)
from durably_web.storage.base import Notifications, Store
from durably_web.validation import dump_json

__all__ = ["Durably"]

InputT = TypeVar("InputT")
OutputT = TypeVar("OutputT")


class Durably:
    """A durable job engine on one database.

    Args:
        store: the Store to keep runs in.
        options: validated settings (see :func:`durably_web.create_durably`).
        clock: the engine's time source.
        worker_id: this instance's lease owner name.
        owns_store: close the store's connection in :meth:`close`.

    """

    def __init__(
        self,
        store: Store,
        options: Options,
        clock: Clock,
        worker_id: str,
        *,
        owns_store: bool = True,
    ) -> None:
        self.store = store
        self.options = options
        self.clock = clock
        self.worker_id = worker_id
        self.jobs: Jobs[JobHandle[Any, Any]] = Jobs()
        self._by_name: dict[str, JobDefinition[Any, Any]] = {}
        self._bus = EventBus(clock)
        self._owns_store = owns_store
        self._migrated = False
        # Optional part of the Store protocol: a store that tells of other processes' writes.
        self._notifications = store if isinstance(store, Notifications) else None
        self.worker = Worker(
            store=store,
            bus=self._bus,
            clock=clock,
            options=options,
            jobs=self._by_name,
            worker_id=worker_id,
            notifications=self._notifications,
        )
        self._remote = RemoteRuns(
            self._notifications,
            load=store.get_run,
            bus=self._bus,
            clock=clock,
            is_local=self.worker.is_executing,
            report=self.worker.report,
        )
        self._schedules = Schedules(self)
        self.worker.timers.add(self._schedules)

    # -- registry -----------------------------------------------------------------------

    def register(
        self, jobs: Mapping[str, JobDefinition[Any, Any]] | Iterable[JobDefinition[Any, Any]]
    ) -> Durably:
        """Register job definitions under keys; return this instance for chaining.

        Args:
            jobs: ``{"key": definition}``; or definitions alone, keyed by their name with
                ``-`` turned into ``_``.

        Raises:
            ConflictError: a key or job name is taken by a different definition (nothing is
                registered then).
            ValidationError: a value is not a :class:`JobDefinition` or a key not an identifier.

        """
        if isinstance(jobs, Mapping):
            pairs = list(jobs.items())
        else:
            pairs = [(getattr(job, "name", "").replace("-", "_"), job) for job in jobs]
        for key, job in pairs:
            if not isinstance(job, JobDefinition):
                raise ValidationError(f"job {key!r} must be a JobDefinition, got {job!r}")
            if not isinstance(key, str) or not key.isidentifier():
                raise ValidationError(f"job key must be a Python identifier, got {key!r}")
            taken = self.jobs.get(key)
            if taken is not None and not taken.definition.same_as(job):
                raise ConflictError(
                    f"job key {key!r} is already registered with a different definition"
                )
            named = self._by_name.get(job.name)
            if named is not None and not named.same_as(job):
                raise ConflictError(
                    f'Job "{job.name}" is already registered with a different definition'
                )
        for key, job in pairs:
            self._by_name.setdefault(job.name, job)
            if key not in self.jobs:
                self.jobs._add(key, JobHandle(self, job))
        if pairs:
            self.worker.wake()
        return self

    def job(self, definition: JobDefinition[InputT, OutputT]) -> JobHandle[InputT, OutputT]:
        """Return the typed handle of a registered definition (registering it if needed)."""
        for _, handle in self.jobs.items():
            if handle.definition is definition:
                return handle
        self.register([definition])
        return self.job(definition)

    def job_by_name(self, name: str) -> JobHandle[Any, Any]:
        """Return the handle of the job named ``name`` (its definition's name, or its key).

        Raises:
            NotFoundError: no such job.
            ValidationError: ``name`` is not a string of valid Unicode.

        """
        if not isinstance(name, str):
            raise ValidationError(f"job name must be a string, got {shown(name)}")
        check_text(name, "job name")
        for _, handle in self.jobs.items():
            if handle.name == name:
                return handle
        handle_by_key = self.jobs.get(name)
        if handle_by_key is not None:
            return handle_by_key
        raise NotFoundError(f"Job not found: {name}")

    # -- lifecycle ----------------------------------------------------------------------

    async def migrate(self) -> None:
        """Create or upgrade the schema (idempotent; safe from several processes at once).

        Another process holding the database's write lock past ``busy_timeout`` is waited
        out, as every write of the engine's own is (reported as ``worker:error`` with context
        ``migrate: waiting for the database lock``), so a worker starting beside a busy one
        starts once the lock clears instead of failing.
        """
        if not self._migrated:
            await wait_out_busy(
                lambda: self.store.migrate(self.clock.now()),
                clock=self.clock,
                on_wait=lambda exc: self.worker.report(
                    exc, "migrate: waiting for the database lock"
                ),
            )
            self._migrated = True

    async def init(self) -> None:
        """Migrate, then start the worker."""
        await self.migrate()
        self.start()

    def start(self) -> None:
        """Start the worker loop in the running event loop (idempotent)."""
        self.worker.start()

    async def stop(self, timeout: float | None = None) -> None:
        """Stop the worker; wait for runs in flight.

        Args:
            timeout: wait at most this many seconds, then interrupt the runs still in
                flight at their next ``await`` and hand them back to the queue (pending again,
                checkpoints kept). ``None`` waits for them to finish.

        """
        if timeout is not None:
            timeout = check_seconds(timeout, "timeout", maximum=MAX_WAIT, allow_zero=True)
        await self.worker.stop(timeout)

    async def close(self, timeout: float | None = None) -> None:
        """Stop the worker, then close the database connection if this instance opened it."""
        await self.stop(timeout)
        self._remote.close()
        if self._owns_store:
            await self.store.close()

    async def __aenter__(self) -> Durably:
        await self.init()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- events -------------------------------------------------------------------------

    def on(
        self, event_type: str, handler: EventHandler, *, remote: bool = False
    ) -> Callable[[], None]:
        """Call ``handler(event)`` for each event of ``event_type`` (``"*"`` for all).

        Handlers may be sync or async; one that raises does not stop the others and its
        error is emitted as ``worker:error``. Returns a function that unsubscribes.

        Args:
            event_type: an event type, or ``"*"``.
            handler: called with each event.
            remote: also the run-level events of runs other processes change, read as the
                store reports them (PostgreSQL's NOTIFY; see :mod:`durably_web.core.remote`):
                for a process that follows runs it does not execute, like a dashboard's
                server. They carry ``sequence`` 0. A store without notifications (SQLite)
                reports nothing: the handler gets this process's events only.

        """
        unsubscribe = self._bus.on(event_type, handler, remote=remote)
        if not remote:
            return unsubscribe
        self._remote.retain()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                unsubscribe()
                self._remote.release()

        return release

    # -- triggers -----------------------------------------------------------------------

    async def _enqueue(
        self, job: JobDefinition[Any, Any], items: Sequence[TriggerItem], *, batch: bool = False
    ) -> list[Run]:
        now = self.clock.now()
        prepared = [
            prepare(job, item, self.options.labels, f" at index {i}" if batch else "", now=now)
            for i, item in enumerate(items)
        ]
        if not prepared:
            return []
        await self.migrate()
        runs = await self.store.enqueue([new for new, _ in prepared], self.clock.now())
        announce(self._bus, runs, prepared)
        self.worker.wake()
        return runs

    # -- run management -----------------------------------------------------------------

    async def cancel(self, run_id: str) -> Run:
        """Cancel a pending, leased or waiting run; a running job stops at its next step boundary.

        Raises:
            NotFoundError: no such run.
            ConflictError: the run already finished.

        """
        run_id = check_run_id(run_id)
        await self.migrate()
        run = await self.store.cancel_run(run_id, self.clock.now())
        self.worker.cancel_local(run.id)
        self._bus.emit(RunCancel, run_id=run.id, job_name=run.job_name, labels=run.labels)
        return run

    async def signal(self, run_id: str, name: str, payload: Any = None) -> Run:
        """Send the signal ``name`` to a run: ``step.wait_for_signal(name)`` returns ``payload``.

        A signal sent before the run waits for it is kept until it does. A run waiting for it
        resumes at once (in this process; on PostgreSQL a worker in another process too, through
        NOTIFY; on SQLite another process's worker sees it at its next poll).
        A run takes one signal of each name: a second one is refused, as is one whose wait is
        over (its step completed, or timed out). Emits ``run:signal``.

        Args:
            run_id: the run.
            name: the signal's name (the waiting step's name).
            payload: JSON data handed to the waiting step.

        Returns:
            The run (``waiting`` still, if it was woken: a worker takes it up next).

        Raises:
            NotFoundError: no such run.
            ConflictError: the run has ended, already has a signal ``name``, or no longer
                waits for it.
            ValidationError: a bad name, or a payload that is not JSON data.

        """
        run_id = check_run_id(run_id)
        name = check_step_name(name)
        payload_json = (
            None if payload is None else dump_json(payload, f"payload of signal {name!r}")
        )
        await self.migrate()
        run, woken = await self.store.signal_run(run_id, name, payload_json, self.clock.now())
        self._bus.emit(
            RunSignal,
            run_id=run.id,
            job_name=run.job_name,
            labels=run.labels,
            name=name,
            payload=None if payload_json is None else json.loads(payload_json),
        )
        if woken:
            self.worker.wake()
        return run

    # -- schedules ----------------------------------------------------------------------

    async def schedule(
        self,
        name: str,
        job_key: str,
        cron: str,
        input: Any = None,
        timezone: str = "UTC",
        catch_up: str = "latest",
    ) -> Schedule:
        """Run ``job_key`` on a cron schedule: exactly one run per tick, whatever the workers.

        Declaring an unchanged schedule again (at every start) keeps its next tick, so missed
        ticks are caught up; a changed one starts from its next tick after now. Ticks fire in
        the workers that register the job (:mod:`durably_web.core.schedules`).

        Args:
            name: the schedule's unique name.
            job_key: the job (its key or name) each tick triggers.
            cron: a 5-field cron expression (``"0 3 * * *"``: 03:00 every day).
            input: the input of every run (validated now).
            timezone: the IANA time zone ``cron`` is read in; DST is handled as cron does.
            catch_up: after downtime, ``"latest"`` (one run for the last missed tick),
                ``"all"`` (one per missed tick) or ``"none"``.

        Raises:
            ValidationError: a bad name, cron, time zone, catch_up or input.
            NotFoundError: no such job registered.

        """
        return await self._schedules.schedule(name, job_key, cron, input, timezone, catch_up)

    async def unschedule(self, name: str) -> None:
        """Delete a schedule (the runs it triggered stay); ``NotFoundError`` if there is none."""
        await self._schedules.unschedule(name)

    async def get_schedules(self) -> list[Schedule]:
        """Return every schedule with its next tick, by name."""
        return await self._schedules.get_schedules()

    async def retry(self, run_id: str) -> Run:
        """Re-run a failed or cancelled run in place: same id, completed steps replay.

        Raises:
            NotFoundError: no such run.
            ConflictError: the run is not failed or cancelled, or its concurrency key is
                held by another pending run.

        """
        run_id = check_run_id(run_id)
        await self.migrate()
        run = await self.store.retry_run(run_id, self.clock.now())
        self._bus.emit(RunRetry, run_id=run.id, job_name=run.job_name, labels=run.labels)
        self.worker.wake()
        return run

    async def retrigger(self, run_id: str) -> Run:
        """Start a new run of a finished run's job with the same input, labels and key.

        Raises:
            NotFoundError: no such run, or its job is not registered here.
            ConflictError: the run is still pending or leased.
            ValidationError: its input no longer validates against the job's input type.

        """
        run = await self._require(run_id)
        if not run.is_terminal:
            raise ConflictError(f"Cannot retrigger {run.status} run: {run.id}")
        job = self._by_name.get(run.job_name)
        if job is None:
            raise NotFoundError(f"Unknown job: {run.job_name}")
        try:
            new_run, data = prepare(
                job, TriggerItem(run.input, labels=run.labels), None, now=self.clock.now()
            )
        except ValidationError as exc:
            raise ValidationError(f"Cannot retrigger run {run.id}: {exc}") from None
        # The key as stored (scoped by the original trigger's key scope, if any).
        new_run = replace(new_run, concurrency_key=run.concurrency_key)
        created = (await self.store.enqueue([new_run], self.clock.now()))[0]
        self._bus.emit(
            RunTrigger,
            run_id=created.id,
            job_name=created.job_name,
            labels=created.labels,
            input=data,
        )
        self.worker.wake()
        return created

    async def delete_run(self, run_id: str) -> Run:
        """Delete a finished run with its steps and logs; return what was deleted.

        Raises:
            NotFoundError: no such run.
            ConflictError: the run is pending, leased or waiting (cancel it first).

        """
        run_id = check_run_id(run_id)
        await self.migrate()
        run = await self.store.delete_run(run_id)
        self._bus.emit(RunDelete, run_id=run.id, job_name=run.job_name, labels=run.labels)
        return run

    async def purge_runs(self, older_than: datetime | timedelta | str, limit: int = 500) -> int:
        """Delete up to ``limit`` finished runs that completed before ``older_than``.

        Args:
            older_than: an aware datetime, a ``timedelta`` before now, or a duration before
                now like ``"7d"``, ``"12h"``, ``"30m"``.
            limit: at most this many runs (1-100000).

        Returns:
            How many runs were deleted.

        """
        cutoff = purge_cutoff(older_than, self.clock.now())
        check_int(limit, "limit", minimum=1, maximum=100_000)
        await self.migrate()
        return await self.store.purge_runs(cutoff, limit)

    # -- queries ------------------------------------------------------------------------

    async def get_run(self, run_id: str) -> Run | None:
        """Return the run, or None if there is none with that id."""
        run_id = check_run_id(run_id)
        await self.migrate()
        run = await self.store.get_run(run_id)
        return None if run is None else self.worker.overlay(run)

    async def _require(self, run_id: str) -> Run:
        run = await self.get_run(run_id)
        if run is None:
            raise NotFoundError(f"Run not found: {run_id}")
        return run

    async def get_runs(
        self,
        *,
        status: str | Sequence[str] | None = None,
        job_name: str | Sequence[str] | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Run]:
        """List runs, newest first.

        Args:
            status: one status or several (any of them).
            job_name: one job name or several.
            labels: every label given must match exactly.
            limit: at most this many (None: all).
            offset: skip this many first.

        """
        query = run_filter(status, job_name, labels, limit, offset)
        await self.migrate()
        return [self.worker.overlay(run) for run in await self.store.get_runs(query)]

    async def get_steps(self, run_id: str) -> list[Step]:
        """Return the run's step records (checkpoints and failures) in index order."""
        run_id = check_run_id(run_id)
        await self.migrate()
        return await self.store.get_steps(run_id)

    async def get_logs(self, run_id: str) -> list[Log]:
        """Return the run's persisted log lines, oldest first."""
        run_id = check_run_id(run_id)
        await self.migrate()
        return await self.store.get_logs(run_id)

    def subscribe(self, run_id: str) -> AsyncGenerator[Event, None]:
        """Iterate over a run's events: its current state first, ending after it finishes."""
        return self._watch(check_run_id(run_id), None)

    async def _watch(self, run_id: str, timeout: float | None) -> AsyncGenerator[Event, None]:
        await self.migrate()
        events = watch(
            run_id,
            load=self.get_run,
            bus=self._bus,
            clock=self.clock,
            poll_interval=self.options.polling_interval,
            is_local=self.worker.is_executing,
            timeout=timeout,
            notifications=self._notifications,
        )
        async with aclosing(events):
            async for event in events:
                yield event

    async def wait_for_run(
        self,
        run_id: str,
        *,
        timeout: float | None = None,
        on_progress: Callable[[Any], Any] | None = None,
        on_log: Callable[[Any], Any] | None = None,
    ) -> Run:
        """Wait until the run completes and return it.

        Args:
            run_id: the run to wait for.
            timeout: seconds to wait at most (None: forever).
            on_progress: called with each :class:`~durably_web.models.Progress`.
            on_log: called with each ``log:write`` event.

        Raises:
            RunFailed: the run failed; the message is its error.
            RunCancelled: the run was cancelled.
            NotFoundError: no such run (or it was deleted meanwhile).
            TimeoutError: ``timeout`` passed first.

        """
        if timeout is not None:
            timeout = check_seconds(timeout, "timeout", maximum=MAX_WAIT)
        run_id = check_run_id(run_id)
        events = self._watch(run_id, timeout)
        try:
            return await wait_for(events, run_id, self.get_run, on_progress, on_log)
        finally:
            await events.aclose()

    # -- driving the worker by hand -----------------------------------------------------

    async def process_one(self, run_id: str | None = None) -> Run | None:
        """Claim and execute one run in the calling task; return its final state, or None.

        Args:
            run_id: execute this run, if it is claimable now (pending, or leased with an
                expired lease, its job registered here, its concurrency key free); otherwise
                return None. Without it, the oldest claimable run is taken.

        Raises:
            StorageError: the database failed under the run; it was handed back (pending
                again, or its lease expires), not failed.

        """
        run_id = None if run_id is None else check_run_id(run_id)
        await self.migrate()
        run = await self.worker.claim(run_id)
        if run is None:
            return None
        await self.worker.run_inline(run)
        return await self.get_run(run.id)

    async def process_until_idle(self, max_runs: int | None = None) -> int:
        """Execute runs one by one until none is claimable (or ``max_runs``); return the count.

        Due schedule ticks are triggered first. When it stops because nothing is claimable
        (not at ``max_runs``), it runs the idle
        maintenance the worker loop runs, as upstream Durably does: runs older than
        ``retain_runs`` are purged and runs of jobs no worker knows are flagged or failed
        (see :mod:`durably_web.core.maintenance`). A cron job driving the engine this way keeps the
        database as tidy as a long-lived worker.

        Raises:
            StorageError: the database failed (the run in flight was handed back, not failed).

        """
        if max_runs is not None:
            check_int(max_runs, "max_runs", minimum=1)
        await self.migrate()
        await self.worker.timers.run_due(self.clock.now())  # due schedule ticks
        count = 0
        while max_runs is None or count < max_runs:
            if await self.process_one() is None:
                await self.worker.maintain()
                break
            count += 1
        return count

    async def release_all_leases(self) -> int:
        """Expire every lease so those runs are reclaimed at once; return how many.

        Only for an engine that knows no other engine is alive on this database, like the
        browser worker that holds the origin's exclusive OPFS pool.
        """
        await self.migrate()
        count = await self.store.expire_leases(self.clock.now())
        if count:
            self.worker.wake()
        return count
