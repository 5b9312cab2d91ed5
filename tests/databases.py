"""The database a test runs on, whichever backend: SQLite in memory, SQLite on file, PostgreSQL.

Engines and stores are opened on it through :class:`TestDatabase`, so one test body runs on
every backend. On PostgreSQL each engine gets its own pool and listener, like another process.
The Pyodide runner (``tests/pyodide/runner.py``) builds the same object over its own SQLite
connections, so nothing here imports the PostgreSQL driver until a PostgreSQL test needs it.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from durably_web.storage.connection import Connection, IntegrityViolation
from durably_web.storage.sqlite import SQLiteStore

if TYPE_CHECKING:
    from durably_web.storage.postgres import PostgresStore

__all__ = [
    "BACKENDS",
    "SQLITE_BACKENDS",
    "AnyStore",
    "TestDatabase",
    "lock_held_by_process",
    "sql_on",
    "until",
]

SQLITE_BACKENDS = ["memory", "file"]
BACKENDS = [*SQLITE_BACKENDS, "postgres"]

AnyStore: TypeAlias = "SQLiteStore | PostgresStore"

_SQLITE_SCHEMA_VERSION = 6
_POSTGRES_SCHEMA_VERSION = 4  # upstream's schema, then durable waits, schedules, the claim's index


class TestDatabase:
    """One test's database.

    Args:
        backend: ``postgres``, or the name of a SQLite backend.
        connect: opens a SQLite connection to the test's database (SQLite backends).
        postgres_url: the PostgreSQL URL, an empty schema of its own (``postgres``).

    """

    __test__ = False  # not a test class, despite its name

    def __init__(
        self,
        backend: str,
        *,
        connect: Callable[[], Connection] | None = None,
        postgres_url: str | None = None,
    ) -> None:
        self.backend = backend
        self.url = postgres_url
        self._connect = connect
        self._stores: list[PostgresStore] = []
        self.schema_version = (
            _POSTGRES_SCHEMA_VERSION if self.is_postgres else _SQLITE_SCHEMA_VERSION
        )

    @property
    def is_postgres(self) -> bool:
        """True on PostgreSQL."""
        return self.backend == "postgres"

    def connection(self) -> Connection:
        """A SQLite connection to the database (the backend decides: shared or new)."""
        assert self._connect is not None, "no SQLite connection to a PostgreSQL database"
        return self._connect()

    def target(self) -> Connection | str:
        """What ``create_durably`` opens an engine on: a connection, or the PostgreSQL URL."""
        if self.is_postgres:
            assert self.url is not None
            return self.url
        return self.connection()

    def open_store(self) -> AnyStore:
        """A new store on the database (not migrated); closed at teardown."""
        if self.is_postgres:
            from durably_web.storage.postgres import open_postgres_store

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
        import psycopg

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
        """Close every PostgreSQL store opened here (SQLite connections belong to ``connect``)."""
        for store in self._stores:
            await store.close()


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


def sql_on(store: Any, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Run one SQL statement on an engine's own database, whichever store it has.

    ``sql`` is written for SQLite, with ``?1``-style parameters; on PostgreSQL they become
    psycopg's. Returns the rows (none for a statement without results).
    """
    if isinstance(store, SQLiteStore):
        with store.connection.transaction():
            return store.connection.query(sql, params)
    import psycopg
    from psycopg.rows import dict_row

    named = re.sub(r"\?(\d+)", r"%(p\1)s", sql)
    values = {f"p{n}": value for n, value in enumerate(params, start=1)}
    with psycopg.connect(store.database.conninfo, autocommit=True, row_factory=dict_row) as pg:
        cursor = pg.execute(named, values)
        return cursor.fetchall() if cursor.description is not None else []


_LOCK_HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


@contextmanager
def lock_held_by_process(path: Path, seconds: float) -> Iterator[None]:
    """Have another process hold ``BEGIN IMMEDIATE`` on a SQLite file for ``seconds``.

    The block starts once the lock is taken; leaving it waits for the process to release the
    lock and exit.
    """
    holder = subprocess.Popen(
        [sys.executable, "-c", _LOCK_HOLDER, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked", "the lock holder failed"
        yield
    finally:
        code = holder.wait(30)
        if holder.stdout is not None:
            holder.stdout.close()
        assert code == 0, f"the lock holder exited with {code}"
