"""Wait out another process's SQLite write lock without holding the event loop.

SQLite's own busy handler waits for a lock by sleeping inside the C call, and on CPython that
call runs on the event loop: with another process holding the write lock, one ``trigger``
froze the whole process (lease renewals, SSE, HTTP) for as long as the lock was held. So the
CPython adapter turns SQLite's busy handler off once the database is open: a statement that
meets a held lock raises :class:`~durably_web.storage.connection.DatabaseBusy` at once, having
written nothing (its transaction is rolled back). The SQLite store's methods are wrapped by
:func:`waits_for_lock`: on ``DatabaseBusy`` the whole operation is made again after an
``asyncio`` sleep (1 ms doubling to 50 ms, about the pace of SQLite's own busy handler), for up
to the connection's ``lock_wait`` seconds (its ``busy_timeout``); then the ``DatabaseBusy``
goes up to the engine, which waits on and reports it as before (:mod:`durably_web.core.busy`).

An uncontended call costs one ``try`` more: no thread, no executor hop on the hot path. The
Pyodide adapter keeps SQLite's busy handler (``lock_wait`` 0: its OPFS pool is exclusive, and
it stays synchronous).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from durably_web.storage.connection import Connection, DatabaseBusy

__all__ = ["waits_for_lock"]

P = ParamSpec("P")
T = TypeVar("T")

_FIRST_DELAY = 0.001
_MAX_DELAY = 0.05


class _HasConnection(Protocol):
    connection: Connection


S = TypeVar("S", bound=_HasConnection)


def waits_for_lock(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """Make a store method wait out a held lock asynchronously (see the module docstring).

    The method must write nothing when it raises ``DatabaseBusy`` (every SQLite store method:
    each write is one transaction), so making it again is safe.
    """

    @functools.wraps(method)
    async def waiting(store: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(store, *args, **kwargs)
        except DatabaseBusy:
            wait = store.connection.lock_wait
            if not wait:
                raise
        return await _again(lambda: method(store, *args, **kwargs), wait)

    return waiting


async def _again(call: Callable[[], Awaitable[T]], wait: float) -> T:
    """Call again with back-off until it gets through; past ``wait`` seconds, let it raise."""
    deadline = time.monotonic() + wait
    delay = _FIRST_DELAY
    while True:
        await asyncio.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
        delay = min(delay * 2, _MAX_DELAY)
        try:
            return await call()
        except DatabaseBusy:
            if time.monotonic() >= deadline:
                raise
