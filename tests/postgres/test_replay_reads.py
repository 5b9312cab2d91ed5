"""What resuming reads, on PostgreSQL: no statement on a run's first lease, the database after.

A run leased for the first time (generation 1) has no steps or log lines (only a lease holder
writes them), so the store answers the engine's three replay reads without a round trip. Any
later lease, and any read after the first, asks the database.
"""

from __future__ import annotations

import collections
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from durably_web.storage.postgres import PostgresStore, database, open_postgres_store
from durably_web.storage.postgres.reads import REPLAY_READS
from durably_web.storage.records import NewRun


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    opened = open_postgres_store(postgres_url)
    await opened.migrate(time.time())
    yield opened
    await opened.close()


@pytest.fixture
def sent(store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """Count the statements sent from now on, by query name."""
    names = {sql: name for name, sql in store._q.items()}
    counts: collections.Counter[str] = collections.Counter()
    fetch = database.Session.fetch

    async def counted(self: database.Session, sql: str, params: Any = None) -> Any:
        counts[names.get(sql, "other")] += 1
        return await fetch(self, sql, params)

    monkeypatch.setattr(database.Session, "fetch", counted)
    return counts


async def _replay(store: PostgresStore, run_id: str) -> tuple[Any, Any, Any]:
    return (
        await store.completed_steps(run_id),
        await store.replayed_logs(run_id),
        await store.pending_retries(run_id),
    )


async def _checkpoint(store: PostgresStore, run_id: str, generation: int, name: str) -> None:
    now = time.time()
    await store.checkpoint_step(
        run_id, generation, name=name, index=0, output_json="1", started_at=now, now=now
    )


async def test_a_first_lease_reads_nothing_and_a_later_read_asks_the_database(
    store: PostgresStore, sent: collections.Counter[str]
) -> None:
    [run] = await store.enqueue([NewRun("job", "{}")], time.time())
    leased = await store.claim_next("w", time.time(), 30.0, ["job"])
    assert leased is not None and leased.lease_generation == 1
    assert await _replay(store, run.id) == ({}, {}, {})
    assert not REPLAY_READS & set(sent)

    await _checkpoint(store, run.id, 1, "a")
    assert set(await store.completed_steps(run.id)) == {"a"}  # read again: from the database
    assert sent["completed_steps"] == 1


async def test_a_second_lease_replays_what_the_first_wrote(
    store: PostgresStore, sent: collections.Counter[str]
) -> None:
    [run] = await store.enqueue([NewRun("job", "{}")], time.time())
    assert await store.claim_next("w", time.time(), 0.001, ["job"]) is not None
    # The first lease never read (its attempt halted first) and wrote a checkpoint.
    await _checkpoint(store, run.id, 1, "a")
    again = await store.claim_next("w", time.time() + 1, 30.0, ["job"])  # its lease expired
    assert again is not None and again.id == run.id and again.lease_generation == 2
    steps, logs, retries = await _replay(store, run.id)
    assert set(steps) == {"a"} and logs == {} and retries == {}
    assert all(sent[read] == 1 for read in REPLAY_READS)
