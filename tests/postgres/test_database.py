"""The PostgreSQL store's pooled database: sessions, cursors and statement results."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from durably_web.storage.postgres import open_postgres_store
from durably_web.storage.postgres.database import Database, Session


@pytest.fixture
async def database(postgres_url: str) -> AsyncIterator[Database]:
    store = open_postgres_store(postgres_url + "&pool_min_size=1&pool_max_size=1")
    await store.database.execute("CREATE TABLE t (v integer)", retry=False)
    yield store.database
    await store.close()


async def test_a_connection_keeps_its_session_and_cursor_between_statements(
    database: Database,
) -> None:
    seen: list[tuple[Session, object]] = []

    async def note(session: Session) -> None:
        seen.append((session, session._cursor))

    for _ in range(3):  # a pool of one connection: the same connection each time
        await database.attempt(note, retry=False)
    assert len({id(session) for session, _ in seen}) == 1
    assert len({id(cursor) for _, cursor in seen}) == 1


async def test_a_reused_cursor_answers_each_statement_with_its_own_result(
    database: Database,
) -> None:
    assert await database.fetch("INSERT INTO t VALUES (1), (2)", retry=False) == []
    assert await database.execute("UPDATE t SET v = v + 10", retry=False) == 2
    assert await database.fetch("SELECT v FROM t ORDER BY v", retry=False) == [
        {"v": 11},
        {"v": 12},
    ]
    assert await database.fetch("SELECT v FROM t WHERE v < 0", retry=False) == []
    assert await database.fetch("INSERT INTO t VALUES (3) RETURNING v", retry=False) == [{"v": 3}]
    assert await database.execute("DELETE FROM t WHERE v < 0", retry=False) == 0
