"""Wait out a locked database: the one retry loop for the engine's own storage calls.

A database locked past ``busy_timeout`` by another connection (:class:`DatabaseBusy`) is
transient: the same call succeeds once the lock is released. The engine's own calls (a
checkpoint, an outcome, a flush, the migration at start-up) are tried again with backoff for
as long as the lock is held, and the wait is reported (``worker:error``) when it starts and
once a minute after, so a lock never fails a run and never kills the worker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from durably_web.clock import Clock
from durably_web.storage.connection import DatabaseBusy

__all__ = ["wait_out_busy"]

T = TypeVar("T")

_FIRST_DELAY = 0.05
_MAX_DELAY = 1.0
_REPORT_EVERY = 60.0
"""Seconds between two reports while one call waits for a lock."""


async def wait_out_busy(
    call: Callable[[], Awaitable[T]],
    *,
    clock: Clock,
    on_wait: Callable[[DatabaseBusy], None],
    busy: DatabaseBusy | None = None,
) -> T:
    """Make ``call()``, again with backoff (50 ms doubling to 1 s) while the database is busy.

    Args:
        call: makes the storage call (called again for each try).
        clock: the engine's time source (tests pass a fake one).
        on_wait: called with the error when the wait starts and once a minute after.
        busy: what a first try the caller already made raised: the wait starts with it
            (a caller on a hot path makes its first try itself, without this coroutine).

    Raises:
        Whatever ``call`` raises besides :class:`DatabaseBusy`.

    """
    delay = _FIRST_DELAY
    reported_at: float | None = None
    while True:
        if busy is None:
            try:
                return await call()
            except DatabaseBusy as exc:
                busy = exc
        now = clock.now()
        if reported_at is None or now - reported_at >= _REPORT_EVERY:
            reported_at = now
            on_wait(busy)
        busy = None
        await clock.sleep(delay)
        delay = min(delay * 2, _MAX_DELAY)
