"""Events of runs other processes change, for listeners of every run (the dashboard's feed).

The event bus carries what happens in this process. A store with
:class:`~durably_web.storage.base.Notifications` (PostgreSQL) also reports each change another
process makes to a run. While some handler asked for them (``Durably.on(..., remote=True)``),
each reported run is read again and what changed since it was last seen is dispatched to those
handlers as the run-level events ``subscribe`` gives for a run another process executes
(:func:`durably_web.core.watch.changes`): ``run:trigger``, ``run:start``, ``run:progress``,
``run:complete``, ``run:fail``, ``run:cancel``, ``run:delete``, and ``run:retry`` for a finished
run put back to pending. Step and log events of other processes are not reported: the
notifications do not carry them. Runs executing in this process are left to the bus.

Reads are coalesced: a run reported many times while a read is in flight is read once more.
A failed read is reported (``worker:error``, context ``remote-runs``) and tried again a second
later. On a store without notifications (SQLite) nothing is read: remote handlers get this
process's events only.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from durably_web.clock import Clock
from durably_web.core.watch import changes, snapshot
from durably_web.events import Event, EventBus, RunDelete, RunRetry
from durably_web.models import Run
from durably_web.storage.base import Notifications, Unsubscribe

__all__ = ["RemoteRuns"]

_KNOWN = 10_000
"""Runs remembered (their last state read) to tell what changed; the oldest are forgotten."""
_RETRY = 1.0


class RemoteRuns:
    """Turns other processes' run changes into events (see the module docstring).

    Args:
        notifications: the store's notifications, or None for a store without them.
        load: reads a run (None once it was deleted).
        bus: where the events go (to its ``remote`` handlers).
        clock: the engine's time source.
        is_local: True for a run this process executes.
        report: reports an error outside a job (``worker:error``).

    """

    def __init__(
        self,
        notifications: Notifications | None,
        *,
        load: Callable[[str], Awaitable[Run | None]],
        bus: EventBus,
        clock: Clock,
        is_local: Callable[[str], bool],
        report: Callable[[BaseException, str], None],
    ) -> None:
        self._notifications = notifications
        self._load = load
        self._bus = bus
        self._clock = clock
        self._is_local = is_local
        self._report = report
        self._holders = 0
        self._unsubscribe: Unsubscribe | None = None
        self._known: OrderedDict[str, Run] = OrderedDict()
        self._dirty: dict[str, None] = {}
        self._task: asyncio.Task[None] | None = None

    def retain(self) -> None:
        """Listen for other processes' changes while at least one handler wants them."""
        self._holders += 1
        if self._notifications is not None and self._unsubscribe is None:
            self._unsubscribe = self._notifications.on_run_change(self._changed)

    def release(self) -> None:
        """Drop one handler; after the last one, stop listening and forget every run."""
        self._holders -= 1
        if self._holders == 0:
            self._stop_listening()

    def close(self) -> None:
        """Stop listening and reading (the engine is closing)."""
        self._stop_listening()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _stop_listening(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._known.clear()
        self._dirty.clear()

    def _changed(self, run_id: str | None) -> None:
        if run_id is None:  # changes may have been missed: read every run still going again
            going = (run.id for run in self._known.values() if not run.is_terminal)
            self._dirty.update(dict.fromkeys(going))
        else:
            self._dirty[run_id] = None
        if self._dirty and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._drain(), name="durably-remote-runs")

    async def _drain(self) -> None:
        while self._dirty:
            run_id = next(iter(self._dirty))
            del self._dirty[run_id]
            try:
                await self._read(run_id)
            except Exception as exc:  # noqa: BLE001 - reported; read again shortly
                self._report(exc, "remote-runs")
                self._dirty[run_id] = None
                await self._clock.sleep(_RETRY)

    async def _read(self, run_id: str) -> None:
        if self._is_local(run_id):
            self._known.pop(run_id, None)  # its events come from this process
            return
        current = await self._load(run_id)
        if self._unsubscribe is None:
            return  # nobody listens any more
        before = self._known.pop(run_id, None)
        now = self._clock.now()
        if current is None:
            if before is not None:
                self._emit(
                    RunDelete(run_id=run_id, job_name=before.job_name, labels=before.labels, at=now)
                )
            return
        self._known[run_id] = current
        while len(self._known) > _KNOWN:
            self._known.popitem(last=False)
        if before is None:
            events = snapshot(current, now)
        elif before.is_terminal and current.status == "pending":
            events = [
                RunRetry(run_id=run_id, job_name=current.job_name, labels=current.labels, at=now)
            ]
        else:
            events = changes(before, current, now)
        for event in events:
            self._emit(event)

    def _emit(self, event: Event) -> None:
        self._bus.dispatch(event, remote=True)
