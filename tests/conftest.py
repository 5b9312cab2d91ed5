"""Shared fixtures: real SQLite connections (in memory and on file), a fake clock, engines."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from durably_web import Durably, create_durably
from durably_web.adapters.sqlite3 import SQLite3Connection
from durably_web.storage.connection import Connection
from durably_web.storage.queries import migrations
from durably_web.storage.sqlite import SQLiteStore
from durably_web.testing import FakeClock

BACKENDS = ["memory", "file"]

VERY_DEEP = 50_000 if sys.platform != "emscripten" else 1_000
"""Levels of the deepest Python value the bad-input tests build. In Chromium, Pyodide's C
stack cannot even free a 50,000-level list (it overflows; values from outside never get that
deep there: ``json_value.parse`` refuses the text first), so the Pyodide runs use 1,000."""

# Tests that need Pyodide (the JS bridge, sqlite-wasm): tests/pyodide runs them under Node.
collect_ignore = ["in_pyodide"]

ConnectionFactory = Callable[[], Connection]

MIGRATIONS = len(migrations())
"""Commits migrating a fresh database makes (one per migration): tests that fail the Nth
commit count from there."""


def sql_connection(durably: Durably) -> Connection:
    """Return the SQL connection under an engine on SQLite (tests edit rows behind its back)."""
    store = durably.store
    assert isinstance(store, SQLiteStore), store
    return store.connection


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once per CPython backend."""
    return str(request.param)


@pytest.fixture
def connect(backend: str, tmp_path: Path) -> Iterator[ConnectionFactory]:
    """Open connections to one database: the same in-memory one, or new ones to one file."""
    opened: list[Connection] = []
    shared: list[Connection] = []

    def factory() -> Connection:
        if backend == "memory":
            if not shared:
                shared.append(SQLite3Connection(":memory:"))
                opened.append(shared[0])
            return shared[0]
        connection = SQLite3Connection(str(tmp_path / "test.db"))
        opened.append(connection)
        return connection

    yield factory
    for connection in opened:
        connection.close()


@pytest.fixture
def clock() -> FakeClock:
    """A clock tests move by hand."""
    return FakeClock()


@pytest.fixture
async def store(connect: ConnectionFactory, clock: FakeClock) -> SQLiteStore:
    """A migrated store."""
    store = SQLiteStore(connect())
    await store.migrate(clock.now())
    return store


MakeDurably = Callable[..., Awaitable[Durably]]


@pytest.fixture
async def make_durably(connect: ConnectionFactory, clock: FakeClock) -> AsyncIterator[MakeDurably]:
    """Build migrated engines on the test database with the fake clock; stopped at teardown."""
    made: list[Durably] = []

    async def factory(jobs: dict[str, Any] | None = None, **options: Any) -> Durably:
        options.setdefault("clock", clock)
        durably = create_durably(connect(), **options)
        if jobs:
            durably.register(jobs)
        await durably.migrate()
        made.append(durably)
        return durably

    yield factory
    for durably in made:
        await durably.stop(timeout=0)
