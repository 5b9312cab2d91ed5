"""LISTEN on a dedicated PostgreSQL connection and hand each notification to its subscribers.

One connection per store, outside the pool, LISTENs on the store's channels. A payload is the
sending store's origin token, a space, and a value (a job name, a run id); notifications the
listener's own store sent are dropped (its engine knows what it wrote). A subscriber is a plain
function of the value, called in the event loop as each notification arrives. When the
connection breaks, the listener backs off (50 ms doubling to 2 s), reconnects, LISTENs again,
and then calls every subscriber once with ``None``: notifications sent while it was away are
lost, so whoever waits on them must look at the database again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from psycopg import sql

from durably_web.errors import StorageError
from durably_web.storage.base import Subscriber, Unsubscribe
from durably_web.storage.postgres.database import Database, DatabaseUnreachable

__all__ = ["Listener"]

_FIRST_BACKOFF = 0.05
_MAX_BACKOFF = 2.0
_HEARTBEAT = 15.0  # seconds without a notification before the connection is proved alive

_log = logging.getLogger("durably_web")


class Listener:
    """Delivers NOTIFY payloads of some channels to subscribers.

    Args:
        database: where to connect (the listener's connection is its own, not pooled).
        channels: the channels to LISTEN on.
        origin: the token of the store this listener belongs to: its notifications are dropped.

    """

    def __init__(self, database: Database, channels: tuple[str, ...], origin: str) -> None:
        self._database = database
        self._channels = channels
        self._own = origin + " "
        # (channel, None): every value's subscribers; (channel, value): that value's only.
        self._subscribers: dict[tuple[str, str | None], list[Subscriber]] = {}
        self._task: asyncio.Task[None] | None = None
        self._listening: asyncio.Event | None = None
        self._connection: psycopg.AsyncConnection[dict[str, object]] | None = None
        self._start_lock: asyncio.Lock | None = None
        self._closed = False
        self.reconnections = 0

    def subscribe(
        self, channel: str, subscriber: Subscriber, value: str | None = None
    ) -> Unsubscribe:
        """Call ``subscriber`` with each value other stores send on ``channel``.

        Args:
            channel: one of the listener's channels.
            subscriber: called with the value, or ``None`` after a reconnection.
            value: only notifications of this value (default: all).

        Returns a function that unsubscribes. A first subscriber starts the listening in the
        background if :meth:`start` has not yet (connecting with back-off until it can).
        """
        key = (channel, value)
        subscribers = self._subscribers.setdefault(key, [])
        subscribers.append(subscriber)
        if not self._closed and (self._task is None or self._task.done()):
            with contextlib.suppress(RuntimeError):  # no event loop yet: start() will
                asyncio.get_running_loop()
                self._listening = asyncio.Event()
                self._task = asyncio.create_task(self._run(), name="durably-pg-listener")

        def unsubscribe() -> None:
            if subscriber in subscribers:
                subscribers.remove(subscriber)
            if not subscribers and self._subscribers.get(key) is subscribers:
                del self._subscribers[key]

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
        """Stop listening and close the connection (for good: no subscriber restarts it)."""
        self._closed = True
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
        if self._connection is None:  # started by a subscriber: connect when the server lets us
            self._connection = await self._reconnect()
            self._listening.set()
        while True:
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
            except StorageError as exc:  # refused (a password changed?): say so, keep trying
                if backoff < _MAX_BACKOFF:
                    _log.warning("PostgreSQL listener cannot connect: %s", exc)
                backoff = min(backoff * 2, _MAX_BACKOFF)

    def _dispatch(self, channel: str, payload: str) -> None:
        if payload.startswith(self._own):
            return  # this store's own write: its engine knows
        value = payload.partition(" ")[2]
        for key in ((channel, None), (channel, value)):
            for subscriber in list(self._subscribers.get(key, ())):
                _call(subscriber, value)

    def _dispatch_all(self, value: None) -> None:
        for subscribers in list(self._subscribers.values()):
            for subscriber in list(subscribers):
                _call(subscriber, value)


def _call(subscriber: Subscriber, value: str | None) -> None:
    """Call a subscriber; one that raises must not silence the others."""
    try:
        subscriber(value)
    except Exception:  # noqa: BLE001 - logged, the listener goes on
        _log.exception("a PostgreSQL notification subscriber failed")
