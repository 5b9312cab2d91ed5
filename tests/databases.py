"""The database a test runs on, whichever backend: SQLite in memory, SQLite on file, PostgreSQL.

Engines and stores are opened on it through :class:`TestDatabase`, so one test body runs on
every backend. On PostgreSQL each engine gets its own pool and listener, like another process.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg

from durably_web.adapters.sqlite3 import SQLite3Connection
from durably_web.storage.connection import Connection, IntegrityViolation
from durably_web.storage.postgres import PostgresStore, open_postgres_store
from durably_web.storage.store import SQLiteStore

__all__ = ["BACKENDS", "SQLITE_BACKENDS", "AnyStore", "TestDatabase", "until"]

SQLITE_BACKENDS = ["memory", "file"]
BACKENDS = [*SQLITE_BACKENDS, "postgres"]

AnyStore = SQLiteStore | PostgresStore

_SCHEMA_VERSION = {"memory": 3, "file": 3, "postgres": 1}


class TestDatabase:
    """One test's database.

    Args:
        backend: ``memory``, ``file`` or ``postgres``.
        tmp_path: where the SQLite file goes.
        postgres_url: the PostgreSQL URL (an empty schema of its own) for ``postgres``.

    """

    __test__ = False  # not a test class, despite its name

    def __init__(self, backend: str, tmp_path: Path, postgres_url: str | None = None) -> None:
        self.backend = backend
        self.path = tmp_path / "test.db"
        self.url = postgres_url
        self.schema_version = _SCHEMA_VERSION[backend]
        self._connections: list[SQLite3Connection] = []
        self._stores: list[PostgresStore] = []

    @property
    def is_postgres(self) -> bool:
        """True on PostgreSQL."""
        return self.backend == "postgres"

    def connection(self) -> Connection:
        """A SQLite connection to the database: the one shared in-memory one, or a new one."""
        assert not self.is_postgres, "no SQLite connection to a PostgreSQL database"
        if self.backend == "memory" and self._connections:
            return self._connections[0]
        connection = SQLite3Connection(":memory:" if self.backend == "memory" else str(self.path))
        self._connections.append(connection)
        return connection

    def target(self) -> Connection | str:
        """What ``create_durably`` opens an engine on: a connection, or the PostgreSQL URL."""
        if self.is_postgres:
            assert self.url is not None
            return self.url
        return self.connection()

    def open_store(self) -> AnyStore:
        """A new store on the database (not migrated); closed at teardown."""
        if self.is_postgres:
            assert self.url is not None
            store = open_postgres_store(self.url)
            self._stores.append(store)
            return store
        return SQLiteStore(self.connection())

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run one SQL statement (no parameters) outside any engine; return its rows.

        Raises:
            IntegrityViolation: a constraint refused it, on either backend.

        """
        if not self.is_postgres:
            connection = self.connection()
            with connection.transaction():
                return connection.query(sql)
        assert self.url is not None
        try:
            with psycopg.connect(self.url, autocommit=True) as pg:
                cursor = pg.execute(sql)
                if cursor.description is None:
                    return []
                names = [column.name for column in cursor.description]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        except psycopg.IntegrityError as exc:
            raise IntegrityViolation(str(exc)) from exc

    async def close(self) -> None:
        """Close every store and connection opened here."""
        for store in self._stores:
            await store.close()
        for connection in self._connections:
            connection.close()


async def until(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0) -> None:
    """Wait (real time) until ``condition()`` holds; fail after ``timeout`` seconds.

    ``settle()`` is enough when every store call completes without real I/O (SQLite); a store
    that talks to a server over a socket needs the test to wait for what it expects instead.
    """
    async with asyncio.timeout(timeout):
        while True:
            result = condition()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.002)
