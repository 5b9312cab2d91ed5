"""Follow one run: its current state first, then its events until it ends.

Events of runs executing in this process arrive from the event bus as they happen. For a run
another process executes, the watcher reads the run again and turns what changed (status,
progress) into the same events, so ``subscribe`` and ``wait_for_run`` work across processes
too: at once when the store reports a change (a store with
:class:`~durably_web.storage.base.Notifications`: PostgreSQL's NOTIFY), else every
``poll_interval``. Snapshot and polled events carry ``sequence`` 0. :func:`changes` is also
how :mod:`durably_web.core.remote` turns other processes' writes into events.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from durably_web.clock import Clock
from durably_web.errors import NotFoundError, RunCancelled, RunFailed
from durably_web.events import (
    TERMINAL_EVENT_TYPES,
    Event,
    EventBus,
    LogWrite,
    RunCancel,
    RunComplete,
    RunDelete,
    RunFail,
    RunProgress,
    RunStart,
    RunTrigger,
)
from durably_web.models import Run, wire_time
from durably_web.storage.base import Notifications

__all__ = ["changes", "snapshot", "wait_for", "watch"]


def snapshot(run: Run, now: float) -> list[Event]:
    """Return events describing a run's current state (sequence 0)."""
    base: dict[str, Any] = {
        "run_id": run.id,
        "job_name": run.job_name,
        "labels": run.labels,
        "sequence": 0,
        "at": now,
    }
    if run.status == "pending":
        return [RunTrigger(input=run.input, **base)]
    if run.status == "leased":
        events: list[Event] = [
            RunStart(
                input=run.input,
                lease_owner=run.lease_owner or "",
                lease_expires_at=wire_time(run.lease_expires_at) or "",
                **base,
            )
        ]
        if run.progress is not None:
            events.append(RunProgress(progress=run.progress, **base))
        return events
    if run.status == "completed":
        return [RunComplete(output=run.output, duration=0, **base)]
    if run.status == "failed":
        return [RunFail(error=run.error or "Unknown error", failed_step_name="", **base)]
    return [RunCancel(**base)]


def changes(before: Run, after: Run, now: float) -> list[Event]:
    """Return the events that take a run from ``before`` to ``after`` (read twice, sequence 0).

    A new status or lease gives the snapshot of ``after``; new progress a ``run:progress``.
    """
    if after.status != before.status or (
        after.status == "leased" and after.lease_generation != before.lease_generation
    ):
        return snapshot(after, now)
    if after.progress != before.progress and after.progress is not None:
        return [
            RunProgress(
                run_id=after.id,
                job_name=after.job_name,
                labels=after.labels,
                progress=after.progress,
                at=now,
            )
        ]
    return []


async def watch(
    run_id: str,
    *,
    load: Callable[[str], Awaitable[Run | None]],
    bus: EventBus,
    clock: Clock,
    poll_interval: float,
    is_local: Callable[[str], bool],
    timeout: float | None = None,
    notifications: Notifications | None = None,
) -> AsyncGenerator[Event, None]:
    """Yield the run's current state, then its events, ending after a terminal one.

    With ``notifications`` (the store's, if it has them), a change another process reports is
    read at once instead of at the next poll (polling goes on, as the fallback).

    Raises:
        NotFoundError: the run does not exist.
        TimeoutError: ``timeout`` seconds of the engine's clock passed first.

    """
    queue: deque[Event] = deque()
    arrived = asyncio.Event()

    def listen(event: Event) -> None:
        if event.run_id == run_id:
            queue.append(event)
            arrived.set()

    unsubscribe = bus.on("*", listen)
    changed = asyncio.Event()
    stop_changes = (
        None
        if notifications is None
        else notifications.on_run_change(lambda _: changed.set(), run_id)
    )
    try:
        run = await load(run_id)
        if run is None:
            raise NotFoundError(f"Run not found: {run_id}")
        deadline = None if timeout is None else clock.now() + timeout
        for event in snapshot(run, clock.now()):
            yield event
            if event.type in TERMINAL_EVENT_TYPES:
                return
        last = run
        while True:
            while queue:
                event = queue.popleft()
                yield event
                if event.type in TERMINAL_EVENT_TYPES:
                    return
            wait = poll_interval
            if deadline is not None:
                remaining = deadline - clock.now()
                if remaining <= 0:
                    raise TimeoutError(f"run {run_id} did not finish within {timeout:g}s")
                wait = min(wait, remaining)
            arrived.clear()
            event_arrived = await _arrival(arrived, changed, clock, wait)
            changed.clear()
            if event_arrived or is_local(run_id):
                continue
            current = await load(run_id)
            now = clock.now()
            if current is None:
                yield RunDelete(run_id=run.id, job_name=run.job_name, labels=run.labels, at=now)
                return
            for event in changes(last, current, now):
                queue.append(event)
            last = current
    finally:
        unsubscribe()
        if stop_changes is not None:
            stop_changes()


async def _arrival(
    arrived: asyncio.Event, changed: asyncio.Event, clock: Clock, seconds: float
) -> bool:
    """Wait for an event, a reported change or ``seconds``; return True if an event arrived."""
    if changed.is_set():
        await asyncio.sleep(0)  # a change already reported: read it, letting others run first
        return arrived.is_set()
    waiters = [asyncio.ensure_future(arrived.wait()), asyncio.ensure_future(changed.wait())]
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait((*waiters, sleeper), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in (*waiters, sleeper):
            future.cancel()
    return arrived.is_set()


async def wait_for(
    events: AsyncIterator[Event],
    run_id: str,
    load: Callable[[str], Awaitable[Run | None]],
    on_progress: Callable[[Any], Any] | None = None,
    on_log: Callable[[Any], Any] | None = None,
) -> Run:
    """Consume a run's events until it ends; return it completed or raise.

    Raises:
        RunFailed: the run failed (the message is the run's error).
        RunCancelled: the run was cancelled.
        NotFoundError: the run does not exist or was deleted.

    """
    async for event in events:
        callback = None
        argument: Any = None
        if isinstance(event, RunProgress):
            callback, argument = on_progress, event.progress
        elif isinstance(event, LogWrite):
            callback, argument = on_log, event
        elif isinstance(event, RunComplete):
            run = await load(run_id)
            if run is None:
                raise NotFoundError(f"Run not found: {run_id}")
            return run
        elif isinstance(event, RunFail):
            raise RunFailed(event.error or "Run failed")
        elif isinstance(event, RunCancel):
            raise RunCancelled(f"Run was cancelled: {run_id}")
        elif isinstance(event, RunDelete):
            raise NotFoundError(f"Run was deleted: {run_id}")
        if callback is not None:
            result = callback(argument)
            if inspect.isawaitable(result):
                await result
    raise NotFoundError(f"Run not found: {run_id}")
