"""The optional Notifications part of the Store protocol, on PostgreSQL's LISTEN/NOTIFY.

Two stores on one database stand for two processes. A store hears what the other writes, and
never its own writes (its engine knows them); a store that was never migrated starts listening
when a first subscriber arrives.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from durably_web.adapters.sqlite3 import SQLite3Connection
from durably_web.storage.base import Notifications
from durably_web.storage.postgres import PostgresStore, open_postgres_store
from durably_web.storage.records import NewRun
from durably_web.storage.sqlite import SQLiteStore
from tests.databases import until


@pytest.fixture
async def pair(postgres_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    first, second = open_postgres_store(postgres_url), open_postgres_store(postgres_url)
    await first.migrate(time.time())
    yield first, second
    await first.close()
    await second.close()


def test_only_the_postgres_store_offers_notifications(postgres_url: str) -> None:
    assert isinstance(open_postgres_store(postgres_url), Notifications)
    connection = SQLite3Connection(":memory:")
    assert not isinstance(SQLiteStore(connection), Notifications)
    connection.close()


async def test_a_store_hears_the_others_writes_not_its_own(
    pair: tuple[PostgresStore, PostgresStore],
) -> None:
    listening, other = pair  # "other" was never migrated: its first subscriber starts it
    ready: list[str | None] = []
    changed: list[str | None] = []
    listening.on_ready(ready.append)
    listening.on_run_change(changed.append)
    heard_by_other: list[str | None] = []
    other.on_run_change(heard_by_other.append)
    await until(lambda: _listening(other))

    [own] = await listening.enqueue([NewRun("a", "{}")], time.time())
    [theirs] = await other.enqueue([NewRun("b", "{}")], time.time())
    await until(lambda: theirs.id in changed)
    await until(lambda: own.id in heard_by_other)
    # Notifications of one database arrive in commit order: "own" would have come first.
    assert changed == [theirs.id]
    assert ready == ["b"]

    claimed = await listening.claim_next("w", time.time(), 30.0, ["b"])
    assert claimed is not None and claimed.id == theirs.id
    await other.cancel_run(theirs.id, time.time())
    await until(lambda: changed == [theirs.id, theirs.id])
    # Each listener hears in commit order, but on its own connection and time: a later write
    # of the listening store, once heard by "other", says its claim and cancel were heard too.
    [later] = await listening.enqueue([NewRun("c", "{}")], time.time())
    await until(lambda: later.id in heard_by_other)
    assert heard_by_other.count(theirs.id) == 1  # the claim; not its own cancel


async def test_run_change_for_one_run(pair: tuple[PostgresStore, PostgresStore]) -> None:
    listening, other = pair
    await other.migrate(time.time())
    everything: list[str | None] = []
    listening.on_run_change(everything.append)
    [watched, unwatched] = await other.enqueue([NewRun("a", "{}"), NewRun("a", "{}")], time.time())
    await until(lambda: len(everything) == 2)  # their creation
    heard: list[str | None] = []
    stop = listening.on_run_change(heard.append, watched.id)
    await other.cancel_run(unwatched.id, time.time())
    await other.cancel_run(watched.id, time.time())
    await until(lambda: everything[2:] == [unwatched.id, watched.id])
    assert heard == [watched.id]
    stop()
    await other.retry_run(watched.id, time.time())
    await until(lambda: everything[4:] == [watched.id])
    assert heard == [watched.id]


def _listening(store: PostgresStore) -> bool:
    listening = store._listener._listening
    return listening is not None and listening.is_set()
