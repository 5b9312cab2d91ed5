"""LISTEN on a dedicated PostgreSQL connection and hand each notification to its subscribers.

One connection per store, outside the pool, LISTENs on the store's channels. A subscriber is a
plain function of the payload, called in the event loop as each notification arrives. When the
connection breaks, the listener backs off (50 ms doubling to 2 s), reconnects, LISTENs again,
and then calls every subscriber once with ``None``: notifications sent while it was away are
lost, so whoever waits on them must look at the database again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import psycopg
from psycopg import sql

from durably_web.storage.postgres.database import Database, DatabaseUnreachable

__all__ = ["Listener", "Subscriber"]

Subscriber = Callable[[str | None], None]
"""Called with each notification's payload, or ``None`` after a reconnection (see also
:meth:`Listener.watch`, for one payload)."""

_FIRST_BACKOFF = 0.05
_MAX_BACKOFF = 2.0
_HEARTBEAT = 15.0  # seconds without a notification before the connection is proved alive

_log = logging.getLogger("durably_web")


class Listener:
    """Delivers NOTIFY payloads of some channels to subscribers.

    Args:
        database: where to connect (the listener's connection is its own, not pooled).
        channels: the channels to LISTEN on.

    """

    def __init__(self, database: Database, channels: tuple[str, ...]) -> None:
        self._database = database
        self._channels = channels
        self._subscribers: dict[str, list[Subscriber]] = {channel: [] for channel in channels}
        self._watchers: dict[tuple[str, str], list[Callable[[], None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._listening: asyncio.Event | None = None
        self._connection: psycopg.AsyncConnection[dict[str, object]] | None = None
        self._start_lock: asyncio.Lock | None = None
        self.reconnections = 0

    def subscribe(self, channel: str, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` with each payload sent on ``channel``; return an unsubscribe."""
        subscribers = self._subscribers[channel]
        subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in subscribers:
                subscribers.remove(subscriber)

        return unsubscribe

    def watch(self, channel: str, payload: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` for each notification on ``channel`` whose payload is ``payload``.

        Also called after a reconnection (a notification may have been missed). Returns an
        unsubscribe function.
        """
        watchers = self._watchers.setdefault((channel, payload), [])
        watchers.append(callback)

        def unsubscribe() -> None:
            if callback in watchers:
                watchers.remove(callback)
            if not watchers:
                self._watchers.pop((channel, payload), None)

        return unsubscribe

    async def start(self) -> None:
        """Connect and LISTEN (idempotent); return once notifications are being received.

        Raises:
            DatabaseUnreachable: the first connection failed.

        """
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:  # two first callers at once must not open two connections
            if self._task is not None and not self._task.done():
                assert self._listening is not None
                await self._listening.wait()
                return
            self._connection = await self._connect()
            self._listening = asyncio.Event()
            self._listening.set()
            self._task = asyncio.create_task(self._run(), name="durably-pg-listener")

    async def close(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def _connect(self) -> psycopg.AsyncConnection[dict[str, object]]:
        connection = await self._database.connect()
        try:
            for channel in self._channels:
                await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        except psycopg.Error as exc:
            await connection.close()
            raise DatabaseUnreachable(f"cannot LISTEN on PostgreSQL: {exc}") from exc
        except BaseException:  # cancelled while listening: do not leave the connection open
            await connection.close()
            raise
        return connection

    async def _run(self) -> None:
        assert self._listening is not None
        while True:
            assert self._connection is not None
            try:
                await self._receive(self._connection)
            except (psycopg.Error, OSError) as exc:
                _log.warning("PostgreSQL listener lost its connection: %s", exc)
            self._listening.clear()
            await self._connection.close()
            self._connection = None
            self._connection = await self._reconnect()
            self.reconnections += 1
            self._listening.set()
            self._dispatch_all(None)

    async def _receive(self, connection: psycopg.AsyncConnection[dict[str, object]]) -> None:
        """Deliver notifications until the connection fails (then raise)."""
        while True:
            async for notify in connection.notifies(timeout=_HEARTBEAT):
                self._dispatch(notify.channel, notify.payload)
            await connection.execute("SELECT 1")  # a quiet spell: prove the connection lives

    async def _reconnect(self) -> psycopg.AsyncConnection[dict[str, object]]:
        backoff = _FIRST_BACKOFF
        while True:
            await asyncio.sleep(backoff)
            try:
                return await self._connect()
            except DatabaseUnreachable:
                backoff = min(backoff * 2, _MAX_BACKOFF)

    def _dispatch(self, channel: str, payload: str | None) -> None:
        for subscriber in list(self._subscribers.get(channel, ())):
            _call(subscriber, payload)
        for (watched, key), watchers in list(self._watchers.items()):
            if watched == channel and payload in (None, key):
                for watcher in list(watchers):
                    _call(watcher)

    def _dispatch_all(self, payload: None) -> None:
        for channel in self._channels:
            self._dispatch(channel, payload)


def _call(callback: Callable[..., None], *args: str | None) -> None:
    """Call a subscriber; one that raises must not silence the others."""
    try:
        callback(*args)
    except Exception:  # noqa: BLE001 - logged, the listener goes on
        _log.exception("a PostgreSQL notification subscriber failed")
