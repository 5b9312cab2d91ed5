"""The worker: claims runs, executes them, renews their leases, keeps the database tidy.

A trigger in the same process wakes the loop at once; on a store that tells of other
processes' writes (:class:`~durably_web.storage.base.Notifications`: PostgreSQL), so does a
trigger, a signal or a wait ending in another process. The polling interval only matters for
work written by another process or tab that no notification announced. An idle loop also wakes
when the next run becomes claimable (a wait ends, a delayed run starts) and when one of its
timers is due (:mod:`durably_web.core.timers`). A waiting run holds no slot. Up to
``max_concurrent_runs`` runs execute at once, each in its own named task; one renewal task
extends every held lease; idle maintenance (:mod:`durably_web.core.maintenance`) purges old
runs and fails runs of jobs no worker knows.
Background tasks are supervised: their errors go to ``worker:error`` and never kill the loop.

Storage errors are sorted once, here and in the run writer (:mod:`durably_web.core.writer`):
a database locked past ``busy_timeout`` is waited out (the loop backs off and tries again); a
broken one (disk full, corrupt, read-only) stops the worker: it emits ``worker:error`` with context
``worker-stopped``, hands its runs back, and keeps the error in :attr:`Worker.failure` (the CLI
exits with it). Runs keep their checkpoints and resume once the database is healthy.

A step that blocks the event loop past the lease cannot have its lease renewed, and another
worker takes the run over. A worker that lost a run that way remembers it: when it claims the
run again it first extends the lease to twice the step's time, and the second time it loses
the run so it fails it with a message saying to raise ``lease_duration``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from durably_web.clock import Clock, SystemClock
from durably_web.core.batching import policy_for
from durably_web.core.execution import Execution
from durably_web.core.maintenance import Maintenance
from durably_web.core.overrun import Overruns
from durably_web.core.timers import Timers
from durably_web.errors import LeaseLost, RunCancelled, StorageError
from durably_web.events import EventBus, RunLeaseRenewed, WorkerError
from durably_web.job import JobDefinition
from durably_web.models import Run
from durably_web.options import Options
from durably_web.storage.base import Notifications, Store, Unsubscribe
from durably_web.storage.connection import DatabaseBusy, IntegrityViolation

__all__ = ["Worker"]

_ERROR_BACKOFF = 1.0


class Worker:
    """Runs claimed runs for one engine instance.

    Args:
        store / bus / clock / options: the engine's services and settings.
        jobs: the registered job definitions by job name (read live: registering later works).
        worker_id: this worker's lease owner name.
        notifications: the store's notifications, if it has them: a run of a job of ours
            that another process makes claimable wakes the loop.

    """

    def __init__(
        self,
        *,
        store: Store,
        bus: EventBus,
        clock: Clock,
        options: Options,
        jobs: Mapping[str, JobDefinition[Any, Any]],
        worker_id: str,
        notifications: Notifications | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self.options = options
        self.jobs = jobs
        self.worker_id = worker_id
        self.active: dict[str, Execution] = {}
        self._run_tasks: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Future[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._renew_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._overruns = Overruns()
        self._notifications = notifications
        self._unsubscribe: Unsubscribe | None = None
        self.timers = Timers(lambda error, context: self.report(error, context))
        self.failure: StorageError | None = None
        self.maintenance = Maintenance(
            store=store, bus=bus, clock=clock, options=options, jobs=jobs, report=self.report
        )

    def overlay(self, run: Run) -> Run:
        """Return ``run`` with the progress and counters its execution here has not written.

        A run this worker is not executing (or executed under another lease) is returned as
        it is.
        """
        execution = self.active.get(run.id)
        return run if execution is None else execution.overlay(run)

    def cancel_local(self, run_id: str) -> None:
        """Stop the execution of a run just cancelled in this process, if it runs here.

        Its signal aborts with ``cancelled`` and it does not announce the cancellation again
        (the caller emitted ``run:cancel``).
        """
        execution = self.active.get(run_id)
        if execution is not None:
            execution.cancel()

    def is_executing(self, run_id: str) -> bool:
        """Return True while this worker executes the run (its events come from here)."""
        return run_id in self.active

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`; False from the moment it halted.

        A halt (:meth:`halt`, the database failed) is seen at once, not only once the loop
        task has ended (it does so at its next turn).
        """
        return self._loop_task is not None and not self._loop_task.done() and self.failure is None

    def start(self) -> None:
        """Start the loop (idempotent). Must be called with an event loop running.

        Starting again after the worker stopped on a storage error clears :attr:`failure`.
        """
        if self.running:
            return
        if self._loop_task is not None and not self._loop_task.done():
            self._loop_task.cancel()  # halted, and ending at its next turn anyway
        self._stopping = False
        self.failure = None
        if self._notifications is not None and self._unsubscribe is None:
            self._unsubscribe = self._notifications.on_ready(self._ready)
        self._loop_task = asyncio.create_task(self._loop(), name="durably-worker")

    def wake(self) -> None:
        """Make an idle loop look for work now (called after a trigger or retry)."""
        self._wake.set()

    def _ready(self, job_name: str | None) -> None:
        """Another process made a run of ``job_name`` claimable (None: maybe missed some)."""
        if job_name is None or job_name in self.jobs:
            self._wake.set()

    def stop_claiming(self) -> None:
        """Claim no more runs from now on; runs in flight go on (``stop()`` starts so)."""
        self._stopping = True
        self._wake.set()

    async def stop(self, timeout: float | None = None) -> None:
        """Stop claiming; wait for running runs (at most ``timeout`` seconds, then hand back).

        Runs still executing when the timeout passes are interrupted at their next
        ``await`` and released: they go back to pending at once for the next worker.
        """
        self.stop_claiming()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._loop_task is not None:
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        tasks = list(self._run_tasks.values())
        if tasks:
            _, still_running = await asyncio.wait(tasks, timeout=timeout)
            for task in still_running:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._cancel_renewal()
        while self._background:
            # Remove what finished ourselves: on Python >= 3.12 gathering tasks that are
            # already done does not yield, so their done callbacks (which would remove them)
            # might never get to run and this loop would spin.
            finished = list(self._background)
            await asyncio.gather(*finished, return_exceptions=True)
            self._background.difference_update(finished)
        await self.bus.drain()

    # -- the loop -----------------------------------------------------------------------

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                looked = self.clock.now()  # what came due by now, the claims below see
                claimed = await self._fill_slots()
                if not claimed and not self.active:
                    await self.maintenance.run()
                due = await self._next_due(looked)
            except DatabaseBusy as exc:  # locked past busy_timeout: try again shortly
                self.report(exc, "worker-loop")
                await self._idle(_ERROR_BACKOFF)
                continue
            except StorageError as exc:
                if isinstance(exc, IntegrityViolation):
                    self.report(exc, "worker-loop")
                    await self._idle(_ERROR_BACKOFF)
                    continue
                self.halt(exc)
                return
            except Exception as exc:  # noqa: BLE001 - the loop must survive anything else
                self.report(exc, "worker-loop")
                await self._idle(_ERROR_BACKOFF)
                continue
            if not self._stopping:
                idle = self.options.polling_interval
                if due is not None:
                    idle = min(idle, max(due - self.clock.now(), 0.0))
                await self._idle(idle)

    async def _next_due(self, looked: float) -> float | None:
        """Fire the timers that are due; return the earliest time the loop must look again.

        That is the earliest of the timers' next due times and, when a slot is free, the time
        the next run of a registered job becomes claimable (the end of a wait, a delayed
        start) after ``looked``, the time taken before this turn's claims: a wait that ended
        after they looked, even one that ended before this read, is looked for again at once
        (asking only for what ends after *now* lost it: the run then waited for the polling
        interval, as a due sleep on PostgreSQL did under load). With every slot taken a
        finishing run wakes the loop instead.
        """
        due = await self.timers.run_due(self.clock.now())
        if self.jobs and len(self.active) < self.options.max_concurrent_runs:
            wake = await self.store.next_wake(looked, self.jobs.keys())
            if wake is not None and (due is None or wake < due):
                due = wake
        return due

    async def _fill_slots(self) -> bool:
        """Claim runs until every slot is taken or none is claimable; return whether any was.

        The first claim goes alone. Once it found a run, every other free slot is claimed at
        once, one claim each, concurrently: a store on a server (PostgreSQL) answers them in
        parallel, so a backlog (runs woken at once, a burst of triggers) does not cost one
        round trip per run in series. The store's claim is safe with concurrent claimers (as
        with several workers); every run claimed is launched even if a sibling claim failed.
        """
        claimed = False
        batch = 1
        while not self._stopping:
            batch = min(batch, self.options.max_concurrent_runs - len(self.active))
            if batch <= 0:
                break
            results: list[Run | BaseException | None]
            if batch == 1:
                # Awaited in place: gather would run the claim as a task of its own, three more
                # turns of the event loop per run (in the browser each is a task of the
                # worker's, ~30-100 us; bench/NOTES.md).
                results = [await self.claim()]
            else:
                results = await asyncio.gather(
                    *(self.claim() for _ in range(batch)), return_exceptions=True
                )
            runs = [run for run in results if isinstance(run, Run)]
            for run in runs:
                self.launch(run)
            claimed = claimed or bool(runs)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            if len(runs) < batch:
                break
            batch = self.options.max_concurrent_runs
        return claimed

    async def _idle(self, seconds: float) -> None:
        """Wait for a wake-up or ``seconds`` of the engine's clock, whichever comes first."""
        if self._wake.is_set():
            return
        if type(self.clock) is SystemClock:  # a timeout on the loop: no task per wait
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), seconds)
            return
        waiter = asyncio.ensure_future(self._wake.wait())
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait((waiter, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()

    async def claim(self, run_id: str | None = None) -> Run | None:
        """Lease the next run of a registered job (or run ``run_id``), or return None."""
        if not self.jobs:
            return None
        return await self.store.claim_next(
            self.worker_id,
            self.clock.now(),
            self.options.lease_duration,
            self.jobs.keys(),
            run_id,
        )

    def launch(self, run: Run) -> asyncio.Task[None]:
        """Execute a claimed run in its own task; return the task."""
        execution = self.execution(run)
        task = asyncio.create_task(self._execute(execution), name=f"durably-run-{run.id}")
        self._run_tasks[run.id] = task
        return task

    def execution(self, run: Run) -> Execution:
        """Build the execution of a claimed run and register it as active."""
        execution = Execution(
            run,
            self.jobs[run.job_name],
            self,
            lease_duration=self.options.lease_duration,
            preserve_steps=self.options.preserve_steps,
            persist_logs=self.options.persist_logs,
            overrun=self._overruns.get(run.id),
            checkpoint=policy_for(self.jobs[run.job_name], self.options.checkpoint, self.store),
        )
        self.active[run.id] = execution
        self._ensure_renewal()
        return execution

    async def _execute(self, execution: Execution) -> None:
        try:
            await execution.execute()
        finally:
            run_id = execution.run.id
            self.active.pop(run_id, None)
            self._run_tasks.pop(run_id, None)
            if not execution.lost_block:
                self._overruns.forget(run_id)
            self._wake.set()

    async def run_inline(self, run: Run) -> None:
        """Execute a claimed run in the calling task (``process_one``).

        Raises:
            StorageError: the database failed under the run (it was handed back, not failed).

        """
        execution = self.execution(run)
        await self._execute(execution)
        if execution.failure is not None:
            raise execution.failure

    # -- leases -------------------------------------------------------------------------

    def _ensure_renewal(self) -> None:
        if self._renew_task is None or self._renew_task.done():
            self._renew_task = asyncio.create_task(self._renew_loop(), name="durably-leases")

    async def _cancel_renewal(self) -> None:
        if self._renew_task is not None:
            self._renew_task.cancel()
            await asyncio.gather(self._renew_task, return_exceptions=True)
            self._renew_task = None

    async def _renew_loop(self) -> None:
        while self.active:
            await self.clock.sleep(self.options.lease_renew_interval)
            for execution in list(self.active.values()):
                try:
                    await self._renew(execution)
                except Exception as exc:  # noqa: BLE001 - keep renewing the others
                    self.report(exc, "lease-renewal", execution.run)

    async def _renew(self, execution: Execution) -> None:
        run = execution.run
        if execution.writer.kept_steps:
            await execution.writer.flush()  # a renewal never outlives kept checkpoints
        now = self.clock.now()
        try:
            expires = await self.store.renew_lease(
                run.id, run.lease_generation, now, execution.lease_duration
            )
        except DatabaseBusy:
            raise  # reported; the next renewal tries again
        except StorageError as exc:
            if isinstance(exc, IntegrityViolation):
                raise
            execution.broken(exc)
            self.halt(exc, run)
            return
        if expires is None:
            execution.abort("lease-lost")
            self.report(RuntimeError(f"Lease ownership was lost: {run.id}"), "lease-renewal", run)
            return
        execution.lease_until = now + execution.lease_duration
        self.bus.emit(
            RunLeaseRenewed,
            run_id=run.id,
            job_name=run.job_name,
            labels=run.labels,
            lease_owner=self.worker_id,
            lease_expires_at=expires,
        )

    # -- maintenance and supervision ----------------------------------------------------

    async def maintain(self) -> None:
        """Run idle maintenance now (``process_until_idle`` calls it when out of work).

        Raises:
            StorageError: the database failed.

        """
        await self.maintenance.run(now_due=True)

    # -- failures -----------------------------------------------------------------------

    def halt(self, error: StorageError, run: Run | None = None) -> None:
        """Stop the worker because the database failed: hand every run back, keep the error.

        Emits ``worker:error`` with context ``worker-stopped`` once; :attr:`failure` holds the
        error until the worker is started again.
        """
        if self.failure is not None:
            return
        self.failure = error
        self._stopping = True
        self._wake.set()
        self.report(error, "worker-stopped", run)
        current = asyncio.current_task()
        for task in list(self._run_tasks.values()):
            if task is not current:
                task.cancel()  # each hands its run back (if the database lets it)

    def lost_to_block(self, run: Run, step: str, seconds: float) -> None:
        """Remember that ``step`` blocked past the lease and another worker took ``run``."""
        self._overruns.lost(run.id, step, seconds)

    def keep(self, task: asyncio.Future[Any], name: str) -> None:
        """Let ``task`` finish in the background; ``stop()`` waits for it."""
        self._background.add(task)
        task.add_done_callback(self._background_done(name))

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coro`` as a supervised background task; its error goes to ``worker:error``."""
        self.keep(asyncio.ensure_future(coro), name)

    def _background_done(self, name: str) -> Callable[[asyncio.Future[Any]], None]:
        def done(task: asyncio.Future[Any]) -> None:
            self._background.discard(task)
            if task.cancelled():
                return
            error = task.exception()
            if error is not None and not isinstance(error, (RunCancelled, LeaseLost)):
                self.report(error, name)

        return done

    def report(self, error: BaseException, context: str, run: Run | None = None) -> None:
        """Emit ``worker:error`` for an error outside a job."""
        self.bus.emit(
            WorkerError,
            run_id=None if run is None else run.id,
            job_name=None if run is None else run.job_name,
            labels={} if run is None else run.labels,
            error=f"{type(error).__name__}: {error}",
            context=context,
        )
