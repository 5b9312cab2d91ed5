"""The writes of one lease holder: fenced, carrying what its run has not written yet.

An :class:`~durably_web.core.execution.Execution` makes every write of its run through its
:class:`RunWriter`. The writer keeps what the run produced and has not written
(:class:`~durably_web.core.unwritten.Unwritten`: progress, step counters, log lines), hands it
to each fenced write as a plain :class:`~durably_web.storage.records.RunDelta`, and forgets it
only once a write committed. What stays unwritten is flushed within 50 ms unless a checkpoint
or the outcome carries it first.

The writes go one at a time: a flush falls due on a timer (or before a lease renewal) while the
job's own write may still be in flight, and two writes in flight would both carry the same
unwritten lines and kept steps (written twice, or refused as duplicates). A write that comes
while another is in flight waits for it, then takes what is still unwritten; a flush that
falls due then is put off by 50 ms instead (it never waits behind a write that waits out a
locked database).

Storage errors are sorted here, once: a locked database is waited out
(:func:`~durably_web.core.busy.wait_out_busy`); any other
:class:`~durably_web.errors.StorageError` means the database is broken and the writer calls
``broken`` (the attempt halts) before raising it; data errors (a constraint, a value too
large) are raised as they are: the run is at fault, not the database.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from durably_web.clock import Clock, format_timestamp
from durably_web.core.busy import wait_out_busy
from durably_web.core.unwritten import Unwritten
from durably_web.errors import StorageError
from durably_web.ids import new_ulid
from durably_web.models import Progress, Run
from durably_web.storage.base import Store
from durably_web.storage.connection import DatabaseBusy, IntegrityViolation
from durably_web.storage.records import RunDelta, StepRow

__all__ = ["RunWriter"]

T = TypeVar("T")

_FLUSH_DELAY = 0.05
"""Seconds unwritten progress and logs wait for a checkpoint to carry them before a flush."""
_FLUSH_RETRY = 1.0
"""Seconds before a flush that met a locked database tries again (what it held stays)."""


class RunWriter:
    """Every write of one attempt at one run (see the module docstring).

    Args:
        run: the run as claimed; its ``lease_generation`` fences every write.
        store / clock: the engine's store and time source.
        spawn: runs a coroutine as a supervised background task (the flushes).
        report: emits ``worker:error`` for this run.
        broken: called with the error when the database fails under a write.

    """

    def __init__(
        self,
        run: Run,
        store: Store,
        clock: Clock,
        *,
        spawn: Callable[[Coroutine[Any, Any, None], str], None],
        report: Callable[[BaseException, str], None],
        broken: Callable[[StorageError], None],
    ) -> None:
        self.run = run
        self.store = store
        self.clock = clock
        self._spawn = spawn
        self._report = report
        self._broken = broken
        self._unwritten = Unwritten()
        # A plain Handle: Pyodide's WebLoop.call_later returns one without ``when()``, so the
        # due time is kept here (on the loop's clock).
        self._flush_handle: asyncio.Handle | None = None
        self._flush_due = 0.0
        self._writing = _Turns()  # one write in flight at a time (module docstring)
        self._flush_soon = False  # the pending flush was due within _FLUSH_DELAY

    # -- what waits for the next write --------------------------------------------------

    def keep_progress(self, progress: Progress) -> None:
        """Keep the latest progress for the next write."""
        self._unwritten.set_progress(json.dumps(progress.to_wire(), separators=(",", ":")))
        self._schedule_flush()

    def keep_counters(self, current_step_index: int, completed_step_count: int) -> None:
        """Keep the run's step counters for the next write."""
        self._unwritten.set_counters(current_step_index, completed_step_count)
        if self._flush_handle is None or not self._flush_soon:  # else: a flush comes soon
            self._schedule_flush()

    def keep_log(self, level: str, message: str, data_json: str | None, step: str | None) -> None:
        """Keep a log line for the next write."""
        now = self.clock.now()
        row = (new_ulid(now), self.run.id, step, level, message, data_json, format_timestamp(now))
        self._unwritten.add_log(row)
        self._schedule_flush()

    def keep_step(self, row: StepRow, *, within: float) -> None:
        """Keep a completed step for the next write, and flush within ``within`` seconds.

        For the batched checkpoint mode (:mod:`~durably_web.core.batching`).
        """
        self._unwritten.add_step(row)
        if self._unwritten.steps == 1:  # the group's first step sets its deadline
            self._schedule_flush(within)

    def idle(self) -> bool:
        """Whether no write is in flight and a checkpoint's write would carry nothing else.

        Then a checkpoint may be written directly (:mod:`~durably_web.core.fastpath`).
        """
        return not self._writing._taken and not self._unwritten.has_rows()

    @property
    def kept_steps(self) -> int:
        """How many completed steps wait for a write (the batched checkpoint mode)."""
        return self._unwritten.steps

    # -- writes -------------------------------------------------------------------------

    async def call(
        self, what: str, call: Callable[[], Awaitable[T]], *, wait_busy: bool = True
    ) -> T:
        """Make one of the engine's own storage calls for this run (errors sorted, see above).

        Args:
            what: what the call does, for ``worker:error`` reports.
            call: makes the call (called again for each try).
            wait_busy: wait out a locked database (else raise :class:`DatabaseBusy`).

        """
        try:
            try:
                return await call()  # the common case: no lock to wait out
            except DatabaseBusy as busy:
                if not wait_busy:
                    raise
                return await wait_out_busy(
                    call,
                    clock=self.clock,
                    on_wait=lambda exc: self._report(exc, f"{what}: waiting for the database lock"),
                    busy=busy,
                )
        except (DatabaseBusy, IntegrityViolation):
            raise
        except StorageError as exc:
            self._broken(exc)
            raise

    async def write(
        self,
        what: str,
        write: Callable[[RunDelta], Awaitable[T]],
        *,
        wait_busy: bool = True,
        logs_only: bool = False,
    ) -> T:
        """Make a fenced write carrying what is unwritten; forget that once it committed.

        Args:
            what: what the write does, for ``worker:error`` reports.
            write: makes the write with the delta it is given.
            wait_busy: wait out a locked database (else raise :class:`DatabaseBusy`).
            logs_only: the write carries only the log lines (it leaves the run's row alone).

        """

        async def attempt() -> T:
            delta = self._unwritten.delta(logs_only=logs_only)
            result = await write(delta)
            if result is not False:  # False: the fence refused, nothing was written
                self._unwritten.written(delta)
            return result

        turns = self._writing
        if not turns.take_now():
            await turns.take()
        try:
            result = await self.call(what, attempt, wait_busy=wait_busy)
        finally:
            turns.give()
        if not self._unwritten:
            self.cancel_flush()
        return result

    async def flush(self) -> None:
        """Write what is unwritten now (fenced; when refused it is dropped with the run).

        A flush that meets a locked database keeps everything unwritten and tries again
        later; the next checkpoint or the outcome carries it if that comes first.
        """
        self.cancel_flush()
        if self._writing.locked():
            # Never queued behind a write that may wait out a lock for long (a lease renewal
            # calls this): that write carries the kept steps; the rest is flushed after it.
            self._schedule_flush()
            return
        run = self.run

        def flush(delta: RunDelta) -> Awaitable[bool]:
            return self.store.flush(run.id, run.lease_generation, delta, self.clock.now())

        try:
            await self.write("flush", flush, wait_busy=False)
        except DatabaseBusy:
            self._schedule_flush(_FLUSH_RETRY)
        except IntegrityViolation:
            raise
        except StorageError:
            pass  # the database broke: the attempt has halted and reports it when it ends

    async def release(self) -> None:
        """Hand the run back to the queue with what is unwritten (one try, fenced)."""
        self.cancel_flush()
        run = self.run
        await self._writing.take()  # after a flush still in flight
        try:
            delta = self._unwritten.delta()
            if await self.store.release_lease(
                run.id, run.lease_generation, self.clock.now(), delta
            ):
                self._unwritten.written(delta)
        finally:
            self._writing.give()

    def cancel_flush(self) -> None:
        """Cancel the pending flush (the outcome or a release carries what is unwritten)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None

    def _schedule_flush(self, delay: float = _FLUSH_DELAY) -> None:
        """Flush in ``delay`` seconds, or at the pending flush if that comes first."""
        handle = self._flush_handle
        if handle is not None and self._flush_soon and delay >= _FLUSH_DELAY:
            return  # the common case, on every step: a flush is pending, soon enough
        loop = asyncio.get_running_loop()
        if handle is not None:
            if self._flush_due <= loop.time() + delay:
                return
            handle.cancel()
        self._flush_soon = delay <= _FLUSH_DELAY
        self._flush_due = loop.time() + delay
        self._flush_handle = loop.call_later(delay, self._flush_now)

    def _flush_now(self) -> None:
        self._flush_handle = None
        if self._unwritten:
            self._spawn(self.flush(), "flush")


class _Turns:
    """A mutex for one run's writes whose free turn is taken without a coroutine.

    ``async with asyncio.Lock()`` costs four coroutine steps even when nobody waits, and
    every checkpoint takes it. A write takes a free turn at once (:meth:`take_now`), or
    awaits :meth:`take`; :meth:`give` hands the turn to the oldest waiter (it stays taken),
    or frees it. First come, first served, as ``asyncio.Lock``.
    """

    __slots__ = ("_taken", "_waiters")

    def __init__(self) -> None:
        self._taken = False
        self._waiters: deque[asyncio.Future[None]] = deque()

    def locked(self) -> bool:
        """Whether a write holds the turn."""
        return self._taken

    def take_now(self) -> bool:
        """Take the turn if it is free (nobody waits then); return whether it was taken."""
        if self._taken:
            return False
        self._taken = True
        return True

    async def take(self) -> None:
        """Take the turn, after the writes that hold it or wait for it."""
        if self.take_now():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed the turn, then cancelled: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        """Give the turn back: to the oldest write still waiting, else free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._taken = False
