"""Shared fixtures: real databases (SQLite in memory and on file, PostgreSQL), a fake clock, engines.

``store`` and ``make_durably`` run each test once per backend; ``connect`` gives raw SQLite
connections for the tests that are about SQLite itself.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from durably_web import Durably, create_durably
from durably_web.adapters.sqlite3 import SQLite3Connection
from durably_web.storage.connection import Connection
from durably_web.storage.sqlite import SQLiteStore
from durably_web.testing import FakeClock
from tests.databases import BACKENDS, SQLITE_BACKENDS, AnyStore, TestDatabase
from tests.postgres.server import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url"]  # fixtures, shared with every test module

VERY_DEEP = 50_000 if sys.platform != "emscripten" else 1_000
"""Levels of the deepest Python value the bad-input tests build. In Chromium, Pyodide's C
stack cannot even free a 50,000-level list (it overflows; values from outside never get that
deep there: ``json_value.parse`` refuses the text first), so the Pyodide runs use 1,000."""

# Tests that need Pyodide (the JS bridge, sqlite-wasm): tests/pyodide runs them under Node.
collect_ignore = ["in_pyodide"]

ConnectionFactory = Callable[[], Connection]

MIGRATE_COMMITS = 1
"""Commits migrating a new SQLite database makes (schema.sql and every version in one
transaction, ``SQLiteStore.migrate``): tests that fail the Nth commit count from there."""


def sql_connection(durably: Durably) -> Connection:
    """Return the SQL connection under an engine on SQLite (tests edit rows behind its back)."""
    store = durably.store
    assert isinstance(store, SQLiteStore), store
    return store.connection


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once per backend: SQLite in memory, SQLite on file, PostgreSQL."""
    return str(request.param)


@contextmanager
def sqlite_connections(backend: str, tmp_path: Path) -> Iterator[ConnectionFactory]:
    """Open connections to one database: the same in-memory one, or new ones to one file."""
    opened: list[Connection] = []

    def factory() -> Connection:
        if backend == "memory":
            if not opened:
                opened.append(SQLite3Connection(":memory:"))
            return opened[0]
        connection = SQLite3Connection(str(tmp_path / "test.db"))
        opened.append(connection)
        return connection

    try:
        yield factory
    finally:
        for connection in opened:
            connection.close()


@pytest.fixture
async def database(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[TestDatabase]:
    """The test's database on its backend (PostgreSQL: an empty schema of its own)."""
    if backend == "postgres":
        opened = TestDatabase(backend, postgres_url=request.getfixturevalue("postgres_url"))
        yield opened
        await opened.close()
        return
    with sqlite_connections(backend, tmp_path) as factory:
        yield TestDatabase(backend, connect=factory)


@pytest.fixture(params=SQLITE_BACKENDS)
def sqlite_backend(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once per SQLite backend (tests about SQLite itself)."""
    return str(request.param)


@pytest.fixture
def connect(sqlite_backend: str, tmp_path: Path) -> Iterator[ConnectionFactory]:
    """Open connections to one SQLite database (see :func:`sqlite_connections`)."""
    with sqlite_connections(sqlite_backend, tmp_path) as factory:
        yield factory


@pytest.fixture
def clock() -> FakeClock:
    """A clock tests move by hand."""
    return FakeClock()


@pytest.fixture
async def store(database: TestDatabase, clock: FakeClock) -> AnyStore:
    """A migrated store on the test's database."""
    store = database.open_store()
    await store.migrate(clock.now())
    return store


MakeDurably = Callable[..., Awaitable[Durably]]


@pytest.fixture
async def make_durably(database: TestDatabase, clock: FakeClock) -> AsyncIterator[MakeDurably]:
    """Build migrated engines on the test database with the fake clock; closed at teardown."""
    made: list[Durably] = []

    async def factory(jobs: dict[str, Any] | None = None, **options: Any) -> Durably:
        options.setdefault("clock", clock)
        durably = create_durably(database.target(), **options)
        if jobs:
            durably.register(jobs)
        await durably.migrate()
        made.append(durably)
        return durably

    yield factory
    for durably in made:
        await durably.close(timeout=0)
