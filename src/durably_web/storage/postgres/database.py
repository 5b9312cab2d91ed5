"""A PostgreSQL database reached through a psycopg connection pool, with reconnection.

Everything the PostgreSQL store sends goes through :class:`Database`: statements in autocommit
(most writes are one statement), or a block in one transaction. Driver errors are translated
here, once: a unique or check violation raises
:class:`~durably_web.storage.connection.IntegrityViolation`, a lost or unreachable server
:class:`DatabaseUnreachable`, anything else :class:`~durably_web.errors.StorageError`.

Operations the caller marks ``retry=True`` (reads, and writes built to be repeated safely)
survive a restarted server: after a connection error the pool's idle connections are checked,
and the operation is tried again on a fresh connection, backing off from 50 ms to 1 s, until
``retry_for`` seconds have passed. A statement or transaction PostgreSQL itself rolled back
(deadlock, serialization failure: :class:`TransactionAborted`) is run again the same way
whatever ``retry`` says: nothing of it was written.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import pq
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolClosed

from durably_web.errors import StorageError, ValidationError
from durably_web.storage.connection import DatabaseBusy, IntegrityViolation

__all__ = [
    "Database",
    "DatabaseUnreachable",
    "Params",
    "PooledConnection",
    "Session",
    "TransactionAborted",
]

Params = Mapping[str, Any] | Sequence[Any]
Row = dict[str, Any]
T = TypeVar("T")
Connection = psycopg.AsyncConnection[Row]

_FIRST_BACKOFF = 0.05
_MAX_BACKOFF = 1.0


class DatabaseUnreachable(DatabaseBusy):
    """The server could not be reached, or the connection broke during the operation.

    A :class:`DatabaseBusy`: transient, so the engine backs off and tries again (its worker
    loop, and every call a running attempt makes) instead of failing a run or stopping.
    """


class TransactionAborted(DatabaseBusy):
    """PostgreSQL rolled the transaction back (deadlock, serialization failure): run it again."""


class Session:
    """One connection lent for a block of statements (see :meth:`Database.in_transaction`).

    A connection of the pool keeps its session, and the session its one cursor, from one
    statement to the next: a new cursor per statement (what ``connection.execute`` makes)
    costs a cursor, an adapters map and a transformer each time, on a path that runs once per
    checkpoint. A connection is lent to one caller at a time, so one cursor is enough.
    """

    __slots__ = ("_connection", "_cursor")

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._cursor = connection.cursor()

    async def fetch(self, sql: str, params: Params | None = None) -> list[Row]:
        """Run one statement; return its rows (empty for a statement that returns none)."""
        cursor = await self._cursor.execute(sql, params)
        result = cursor.pgresult  # not ``description``: that builds a Column per column
        if result is None or result.status != pq.ExecStatus.TUPLES_OK:
            return []
        return await cursor.fetchall()

    async def execute(self, sql: str, params: Params | None = None) -> int:
        """Run one statement; return the number of rows it changed."""
        cursor = await self._cursor.execute(sql, params)
        return cursor.rowcount


class PooledConnection(psycopg.AsyncConnection[Row]):
    """A connection of the :class:`Database`'s pool, holding the :class:`Session` lent with it."""

    _session: Session | None = None

    def session(self) -> Session:
        """Return this connection's session, made on first use."""
        if self._session is None:
            self._session = Session(self)
        return self._session


class Database:
    """A psycopg pool on one database, opened on first use.

    Args:
        conninfo: a libpq connection string or ``postgresql://`` URI.
        min_size / max_size: connections the pool keeps open / may open.
        retry_for: seconds an operation marked ``retry`` keeps trying through connection errors.
        display: the target as shown in error messages (no password).

    """

    def __init__(
        self,
        conninfo: str,
        *,
        min_size: int,
        max_size: int,
        retry_for: float,
        display: str,
    ) -> None:
        self.conninfo = conninfo
        self.display = display
        self.retry_for = retry_for
        self._pool: AsyncConnectionPool[PooledConnection] = AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            open=False,
            timeout=retry_for,
            # A connection slot that keeps failing to reconnect is given up after retry_for
            # (instead of five minutes of ever longer back-offs): the next caller then opens a
            # new one at once, so the pool is back soon after the server is.
            reconnect_timeout=retry_for,
            connection_class=PooledConnection,
            kwargs={"autocommit": True, "row_factory": dict_row},
            name="durably",
        )
        self._opened = False
        self._open_lock: asyncio.Lock | None = None

    async def connect(self) -> Connection:
        """Open a connection of its own (autocommit, dict rows), outside the pool.

        Raises:
            DatabaseUnreachable: the server refused or could not be reached.

        """
        try:
            return await psycopg.AsyncConnection.connect(
                self.conninfo, autocommit=True, row_factory=dict_row
            )
        except psycopg.Error as exc:
            if _refused(exc):
                raise StorageError(
                    f"PostgreSQL at {self.display} refused the connection: {_first_line(exc)}"
                ) from exc
            raise DatabaseUnreachable(
                f"cannot connect to PostgreSQL at {self.display}: {exc}"
            ) from exc

    async def open(self) -> None:
        """Open the pool (idempotent); a first connection proves the server and credentials.

        Raises:
            StorageError: the first connection failed; its error names why. Not a
                ``DatabaseBusy``: a server never reached is a wrong URL or a server not up
                yet, which the caller (an operator, a supervisor) must see, not an outage
                of a server this store worked with, which the engine waits out.

        """
        if self._opened:
            return
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if self._opened:
                return
            probe = await self._first_connection()
            try:
                await probe.execute("SELECT 1")
            finally:
                await probe.close()
            await self._pool.open(wait=False)
            self._opened = True

    async def _first_connection(self) -> Connection:
        """Connect once, failing fast on a wrong URL, password or database.

        A server that answers but cannot take connections yet (starting up, shutting down
        for a restart, recovering: SQLSTATE 57P03) is there, and is waited for, up to
        ``retry_for``: a worker started during a restart starts once it is over.
        """
        deadline = time.monotonic() + self.retry_for
        backoff = _FIRST_BACKOFF
        while True:
            try:
                return await self.connect()
            except DatabaseUnreachable as exc:
                if not _restarting(exc.__cause__) or time.monotonic() + backoff > deadline:
                    raise StorageError(str(exc)) from exc.__cause__
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    async def close(self) -> None:
        """Close every connection of the pool."""
        if self._opened:
            await self._pool.close()
            self._opened = False

    async def fetch(self, sql: str, params: Params | None = None, *, retry: bool) -> list[Row]:
        """Run one statement in autocommit; return its rows."""
        return await self.attempt(lambda session: session.fetch(sql, params), retry=retry)

    async def execute(self, sql: str, params: Params | None = None, *, retry: bool) -> int:
        """Run one statement in autocommit; return the number of rows it changed."""
        return await self.attempt(lambda session: session.execute(sql, params), retry=retry)

    async def in_transaction(
        self, block: Callable[[Session], Awaitable[T]], *, retry: bool = False
    ) -> T:
        """Run ``block`` in one transaction: committed if it returns, rolled back if it raises."""

        async def transact(session: Session) -> T:
            async with session._connection.transaction():
                return await block(session)

        return await self.attempt(transact, retry=retry)

    async def attempt(self, work: Callable[[Session], Awaitable[T]], *, retry: bool) -> T:
        """Run ``work`` on a pooled connection, translating errors; retry it if asked.

        Raises:
            IntegrityViolation: a unique or check constraint refused a write.
            ValidationError: a value PostgreSQL cannot hold (SQLSTATE class 22), as SQLite's
                ``SQLITE_TOOBIG`` is: nothing was written.
            DatabaseUnreachable: the server was lost (after ``retry_for`` seconds of retries).
            StorageError: any other database error.

        """
        if not self._opened:
            await self.open()
        deadline = time.monotonic() + self.retry_for
        backoff = _FIRST_BACKOFF
        while True:
            try:
                return await self._on_connection(work)
            except TransactionAborted:
                if time.monotonic() + backoff > deadline:
                    raise
            except DatabaseUnreachable:
                if not retry or time.monotonic() + backoff > deadline:
                    raise
                await self._discard_broken()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _on_connection(self, work: Callable[[Session], Awaitable[T]]) -> T:
        """Run ``work`` once on a connection of the pool, translating the driver's errors.

        The pool's ``getconn``/``putconn`` rather than its ``connection()`` context manager:
        this runs for every statement (a checkpoint is one), and two generator-based context
        managers per statement cost more than the statement's own Python work.
        """
        try:
            connection = await self._pool.getconn()
        except PoolClosed as exc:
            raise StorageError("the PostgreSQL store is closed") from exc
        except psycopg.Error as exc:
            raise self._translated(exc) from exc
        try:
            return await work(connection.session())
        except psycopg.Error as exc:
            raise self._translated(exc) from exc
        finally:
            await self._pool.putconn(connection)

    def _translated(self, exc: psycopg.Error) -> Exception:
        """Return the engine's error for a driver error (see the module docstring)."""
        if isinstance(exc, psycopg.IntegrityError):
            return IntegrityViolation(f"PostgreSQL refused a write: {_first_line(exc)}")
        if isinstance(exc, psycopg.errors.TransactionRollback):
            return TransactionAborted(f"PostgreSQL aborted a transaction: {_first_line(exc)}")
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
            if _refused(exc):
                return StorageError(
                    f"PostgreSQL at {self.display} refused the connection: {_first_line(exc)}"
                )
            return DatabaseUnreachable(f"lost PostgreSQL at {self.display}: {_first_line(exc)}")
        if isinstance(exc, psycopg.DataError):  # the data is at fault, not the database
            return ValidationError(f"PostgreSQL refused a value: {_first_line(exc)}")
        return StorageError(f"PostgreSQL error: {_first_line(exc)}")

    async def _discard_broken(self) -> None:
        """Drop pooled connections the server has closed, so the retry gets a live one."""
        with contextlib.suppress(psycopg.Error):  # what it cannot check, the pool replaces
            await self._pool.check()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _restarting(exc: BaseException | None) -> bool:
    """Whether the server answered "cannot connect now" (57P03): it is starting or stopping."""
    if getattr(exc, "sqlstate", None) == "57P03":
        return True
    return "the database system is" in str(exc)  # libpq gives no SQLSTATE at connect


def _refused(exc: psycopg.Error) -> bool:
    """Whether the server answered and said no: bad credentials or no such database.

    That is no outage to wait out (unlike a refused TCP connection or a restart), so it is a
    plain :class:`StorageError`, not a ``DatabaseBusy``.
    """
    state = getattr(exc, "sqlstate", None) or ""
    if state.startswith("28") or state == "3D000":  # invalid authorization; invalid catalog
        return True
    text = str(exc)
    return "password authentication failed" in text or "does not exist" in text
