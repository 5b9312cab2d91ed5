"""The Store contract: every domain operation, on every backend (SQLite in memory and on file,
PostgreSQL).

The browser's Pyodide adapter runs this same suite over its JS bridge.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from durably_web.errors import ConflictError, LeaseLost, NotFoundError, RunCancelled
from durably_web.models import Run
from durably_web.storage.records import NewRun, RunDelta, RunFilter
from durably_web.testing import FakeClock
from tests.databases import AnyStore, TestDatabase

LEASE = 30.0


async def enqueue(store: AnyStore, clock: FakeClock, *news: NewRun) -> list[str]:
    runs = await store.enqueue(list(news), clock.now())
    return [run.id for run in runs]


async def claim(
    store: AnyStore, clock: FakeClock, owner: str = "w1", jobs: tuple[str, ...] = ("a", "b")
) -> Run | None:
    return await store.claim_next(owner, clock.now(), LEASE, jobs)


def step_args(clock: FakeClock, name: str, index: int, output: str | None = "1") -> dict[str, Any]:
    return {
        "name": name,
        "index": index,
        "output_json": output,
        "started_at": clock.now(),
        "now": clock.now(),
        "logs": (),
    }


# -- schema ------------------------------------------------------------------------------


async def test_migrate_is_idempotent(
    store: AnyStore, database: TestDatabase, clock: FakeClock
) -> None:
    assert await store.schema_version() == database.schema_version
    assert await store.migrate(clock.now()) == []
    assert await store.schema_version() == database.schema_version


async def test_migrate_from_empty_applies_all(database: TestDatabase, clock: FakeClock) -> None:
    fresh = database.open_store()
    assert await fresh.schema_version() == 0
    assert await fresh.migrate(clock.now()) == list(range(1, database.schema_version + 1))


# -- enqueue -----------------------------------------------------------------------------


async def test_enqueue_creates_pending_runs_with_labels(store: AnyStore, clock: FakeClock) -> None:
    [run] = await store.enqueue([NewRun("a", '{"x":1}', labels={"org": "acme"})], clock.now())
    assert run.disposition == "created"
    assert run.status == "pending"
    assert run.input == {"x": 1}
    assert run.labels == {"org": "acme"}
    assert run.lease_generation == 0
    assert run.created_at.timestamp() == pytest.approx(clock.now(), abs=0.001)
    found = await store.get_runs(RunFilter(labels=(("org", "acme"),)))
    assert [r.id for r in found] == [run.id]


async def test_idempotency_key_returns_existing_run(store: AnyStore, clock: FakeClock) -> None:
    [first] = await store.enqueue([NewRun("a", "1", idempotency_key="k")], clock.now())
    [again] = await store.enqueue([NewRun("a", "2", idempotency_key="k")], clock.now())
    assert again.id == first.id
    assert again.disposition == "idempotent"
    assert again.input == 1
    [other_job] = await store.enqueue([NewRun("b", "2", idempotency_key="k")], clock.now())
    assert other_job.disposition == "created"


async def test_pending_concurrency_key_conflicts_and_rolls_back_batch(
    store: AnyStore, clock: FakeClock
) -> None:
    await enqueue(store, clock, NewRun("a", "1", concurrency_key="ck"))
    with pytest.raises(ConflictError, match='concurrency key "ck"'):
        await store.enqueue([NewRun("a", "2"), NewRun("a", "3", concurrency_key="ck")], clock.now())
    assert len(await store.get_runs(RunFilter())) == 1


async def test_coalesce_returns_pending_run(store: AnyStore, clock: FakeClock) -> None:
    [first] = await enqueue(store, clock, NewRun("a", "1", concurrency_key="ck"))
    [again] = await store.enqueue(
        [NewRun("a", "2", concurrency_key="ck", coalesce=True)], clock.now()
    )
    assert (again.id, again.disposition) == (first, "coalesced")


async def test_batch_items_see_each_other(store: AnyStore, clock: FakeClock) -> None:
    runs = await store.enqueue(
        [
            NewRun("a", "1", concurrency_key="ck"),
            NewRun("a", "2", concurrency_key="ck", coalesce=True),
        ],
        clock.now(),
    )
    assert [r.disposition for r in runs] == ["created", "coalesced"]
    assert runs[0].id == runs[1].id


async def test_database_enforces_one_pending_run_per_key(
    store: AnyStore, database: TestDatabase
) -> None:
    from durably_web.storage.connection import IntegrityViolation

    insert = (
        "INSERT INTO durably_runs (id, job_name, input, status, concurrency_key, created_at,"
        " updated_at) VALUES ('{}', 'a', '1', 'pending', 'ck', 't', 't')"
    )
    database.query(insert.format("r1"))
    with pytest.raises(IntegrityViolation):
        database.query(insert.format("r2"))


# -- claim -------------------------------------------------------------------------------


async def test_claim_takes_oldest_and_bumps_generation(store: AnyStore, clock: FakeClock) -> None:
    first, second = await enqueue(store, clock, NewRun("a", "1"), NewRun("a", "2"))
    run = await claim(store, clock)
    assert run is not None
    assert run.id == first
    assert run.status == "leased"
    assert run.lease_owner == "w1"
    assert run.lease_generation == 1
    assert run.lease_expires_at is not None
    assert run.lease_expires_at.timestamp() == pytest.approx(clock.now() + LEASE, abs=0.001)
    run2 = await claim(store, clock)
    assert run2 is not None and run2.id == second
    assert await claim(store, clock) is None


async def test_claim_only_listed_jobs(store: AnyStore, clock: FakeClock) -> None:
    await enqueue(store, clock, NewRun("c", "1"))
    assert await claim(store, clock, jobs=("a",)) is None
    assert await claim(store, clock, jobs=("c",)) is not None


async def test_expired_lease_is_reclaimed_with_next_generation(
    store: AnyStore, clock: FakeClock
) -> None:
    [run_id] = await enqueue(store, clock, NewRun("a", "1"))
    first = await claim(store, clock, "w1")
    assert first is not None
    assert await claim(store, clock, "w2") is None
    await clock.advance(LEASE + 1)
    second = await claim(store, clock, "w2")
    assert second is not None
    assert (second.id, second.lease_owner, second.lease_generation) == (run_id, "w2", 2)
    assert second.started_at == first.started_at


async def test_live_lease_blocks_same_concurrency_key_across_jobs(
    store: AnyStore, clock: FakeClock
) -> None:
    a1, b1, free = await enqueue(
        store,
        clock,
        NewRun("a", "1", concurrency_key="k"),
        NewRun("b", "2", concurrency_key="k"),
        NewRun("b", "3"),
    )
    assert (await claim(store, clock)).id == a1  # type: ignore[union-attr]
    assert (await claim(store, clock)).id == free  # type: ignore[union-attr]
    assert await claim(store, clock) is None
    await clock.advance(LEASE + 1)
    # the holder's lease expired: it is reclaimable, and no longer blocks the key
    reclaimed = await claim(store, clock)
    assert reclaimed is not None and reclaimed.id in (a1, b1)


# -- checkpoints and fencing -------------------------------------------------------------


async def test_checkpoint_and_completed_steps(store: AnyStore, clock: FakeClock) -> None:
    await enqueue(store, clock, NewRun("a", "1"))
    run = await claim(store, clock)
    assert run is not None
    await store.checkpoint_step(run.id, 1, **step_args(clock, "s0", 0, '{"v":1}'))
    await store.checkpoint_step(run.id, 1, **step_args(clock, "s1", 1, None))
    done = await store.completed_steps(run.id)
    assert {name: (s.index, s.output_json) for name, s in done.items()} == {
        "s0": (0, '{"v":1}'),
        "s1": (1, None),
    }
    steps = await store.get_steps(run.id)
    assert [(s.name, s.index, s.status, s.output) for s in steps] == [
        ("s0", 0, "completed", {"v": 1}),
        ("s1", 1, "completed", None),
    ]


async def test_duplicate_completed_step_is_a_conflict(store: AnyStore, clock: FakeClock) -> None:
    await enqueue(store, clock, NewRun("a", "1"))
    run = await claim(store, clock)
    assert run is not None
    await store.checkpoint_step(run.id, 1, **step_args(clock, "s0", 0))
    with pytest.raises(ConflictError):
        await store.checkpoint_step(run.id, 1, **step_args(clock, "s0", 1))


async def test_stale_generation_writes_nothing(store: AnyStore, clock: FakeClock) -> None:
    await enqueue(store, clock, NewRun("a", "1"))
    old = await claim(store, clock, "w1")
    assert old is not None
    await clock.advance(LEASE + 1)
    new = await claim(store, clock, "w2")
    assert new is not None and new.lease_generation == 2
    delta = RunDelta(progress_json='{"current":5}', completed_step_count=9)
    with pytest.raises(LeaseLost):
        await store.checkpoint_step(old.id, 1, **step_args(clock, "s0", 0))
    with pytest.raises(LeaseLost):
        await store.check_lease(old.id, 1)
    assert not await store.flush(old.id, 1, delta, clock.now())
    assert await store.renew_lease(old.id, 1, clock.now(), LEASE) is None
    with pytest.raises(LeaseLost):
        await store.complete_run(old.id, 1, "1", clock.now(), RunDelta(), delete_steps=True)
    with pytest.raises(LeaseLost):
        await store.fail_run(old.id, 1, "x", clock.now(), RunDelta())
    assert not await store.release_lease(old.id, 1, clock.now(), RunDelta())
    after = await store.get_run(old.id)
    assert after is not None
    assert (after.status, after.lease_owner, after.progress) == ("leased", "w2", None)
    assert after.completed_step_count == 0
    assert await store.get_steps(old.id) == []


async def test_cancelled_run_refuses_checkpoint(store: AnyStore, clock: FakeClock) -> None:
    await enqueue(store, clock, NewRun("a", "1"))
    run = await claim(store, clock)
    assert run is not None
    await store.check_lease(run.id, 1)
    await store.cancel_run(run.id, clock.now())
    with pytest.raises(RunCancelled):
        await store.check_lease(run.id, 1)
    with pytest.raises(RunCancelled):
        await store.checkpoint_step(run.id, 1, **step_args(clock, "s0", 0))


async def test_check_lease_sees_another_connection(
    database: TestDatabase, clock: FakeClock
) -> None:
    first = database.open_store()
    await first.migrate(clock.now())
    second = database.open_store()
    [run_id] = await enqueue(first, clock, NewRun("a", "1"))
    run = await claim(first, clock)
    assert run is not None
    await first.check_lease(run_id, 1)
    await second.cancel_run(run_id, clock.now())
    with pytest.raises(RunCancelled):
        await first.check_lease(run_id, 1)


async def test_flush_writes_progress_counters_and_logs(store: AnyStore, clock: FakeClock) -> None:
    await enqueue(store, clock, NewRun("a", "1"))
    run = await claim(store, clock)
    assert run is not None
    line = ("L1", run.id, None, "info", "hello", '{"x":1}', "2026-01-01T00:00:00.000Z")
    delta = RunDelta('{"current":2,"total":4}', current_step_index=3, completed_step_count=2)
    assert await store.flush(run.id, 1, replace(delta, logs=(line,)), clock.now())
    after = await store.get_run(run.id)
    assert after is not None
    assert after.progress is not None and after.progress.to_wire() == {"current": 2, "total": 4}
    assert (after.current_step_index, after.completed_step_count) == (3, 2)
    [log] = await store.get_logs(run.id)
    assert (log.level, log.message, log.data) == ("info", "hello", {"x": 1})


async def test_renew_extends_lease(store: AnyStore, clock: FakeClock) -> None:
    await enqueue(store, clock, NewRun("a", "1"))
    run = await claim(store, clock)
    assert run is not None
    await clock.advance(10)
    expires = await store.renew_lease(run.id, 1, clock.now(), LEASE)
    assert expires is not None
    after = await store.get_run(run.id)
    assert after is not None and after.lease_expires_at is not None
    assert after.lease_expires_at.timestamp() == pytest.approx(clock.now() + LEASE, abs=0.001)


# -- outcomes ----------------------------------------------------------------------------


async def test_complete_run_deletes_steps_and_logs_unless_preserved(
    store: AnyStore, clock: FakeClock
) -> None:
    ids = await enqueue(store, clock, NewRun("a", "1"), NewRun("a", "2"))
    for run_id, delete in zip(ids, (True, False), strict=True):
        run = await claim(store, clock)
        assert run is not None and run.id == run_id
        log = ("L" + run_id, run_id, "s0", "warn", "m", None, "2026-01-01T00:00:00.000Z")
        await store.checkpoint_step(run_id, 1, **{**step_args(clock, "s0", 0), "logs": (log,)})
        await store.complete_run(
            run_id, 1, '{"ok":true}', clock.now(), RunDelta(), delete_steps=delete
        )
        done = await store.get_run(run_id)
        assert done is not None
        assert (done.status, done.output, done.lease_owner) == ("completed", {"ok": True}, None)
        assert done.completed_at is not None
        assert len(await store.get_steps(run_id)) == (0 if delete else 1)
        assert len(await store.get_logs(run_id)) == (0 if delete else 1)


async def test_fail_keeps_steps_and_retry_puts_run_back(store: AnyStore, clock: FakeClock) -> None:
    [run_id] = await enqueue(store, clock, NewRun("a", "1"))
    await claim(store, clock)
    await store.checkpoint_step(run_id, 1, **step_args(clock, "s0", 0))
    await store.fail_run(run_id, 1, "boom", clock.now(), RunDelta())
    failed = await store.get_run(run_id)
    assert failed is not None and (failed.status, failed.error) == ("failed", "boom")
    retried = await store.retry_run(run_id, clock.now())
    assert (retried.id, retried.status, retried.error, retried.completed_at) == (
        run_id,
        "pending",
        None,
        None,
    )
    assert list(await store.completed_steps(run_id)) == ["s0"]
    again = await claim(store, clock)
    assert again is not None and again.lease_generation == 2


async def test_retry_conflicts(store: AnyStore, clock: FakeClock) -> None:
    [run_id] = await enqueue(store, clock, NewRun("a", "1", concurrency_key="k"))
    with pytest.raises(ConflictError, match="Cannot retry pending run"):
        await store.retry_run(run_id, clock.now())
    with pytest.raises(NotFoundError):
        await store.retry_run("nope", clock.now())
    await store.cancel_run(run_id, clock.now())
    await enqueue(store, clock, NewRun("a", "2", concurrency_key="k"))
    with pytest.raises(ConflictError, match="concurrency key"):
        await store.retry_run(run_id, clock.now())


async def test_release_lease_returns_run_to_pending(store: AnyStore, clock: FakeClock) -> None:
    [run_id] = await enqueue(store, clock, NewRun("a", "1", concurrency_key="k"))
    await claim(store, clock)
    assert await store.release_lease(
        run_id, 1, clock.now(), RunDelta(progress_json='{"current":1}')
    )
    released = await store.get_run(run_id)
    assert released is not None
    assert (released.status, released.lease_owner, released.lease_expires_at) == (
        "pending",
        None,
        None,
    )
    assert released.progress is not None and released.progress.current == 1


async def test_release_lease_with_pending_duplicate_key_stays_claimable(
    store: AnyStore, clock: FakeClock
) -> None:
    [first] = await enqueue(store, clock, NewRun("a", "1", concurrency_key="k"))
    await claim(store, clock)
    [second] = await enqueue(store, clock, NewRun("a", "2", concurrency_key="k"))
    assert await store.release_lease(first, 1, clock.now(), RunDelta())
    released = await store.get_run(first)
    assert released is not None and released.status == "leased"
    reclaimed = await claim(store, clock, "w2")
    assert reclaimed is not None and reclaimed.id == first
    assert second != first


async def test_expire_leases_makes_them_claimable_now(store: AnyStore, clock: FakeClock) -> None:
    await enqueue(store, clock, NewRun("a", "1"), NewRun("a", "2"))
    await claim(store, clock)
    await claim(store, clock)
    assert await claim(store, clock, "w2") is None
    assert await store.expire_leases(clock.now()) == 2
    assert await claim(store, clock, "w2") is not None


# -- management --------------------------------------------------------------------------


async def test_cancel_messages(store: AnyStore, clock: FakeClock) -> None:
    [run_id] = await enqueue(store, clock, NewRun("a", "1"))
    cancelled = await store.cancel_run(run_id, clock.now())
    assert cancelled.status == "cancelled" and cancelled.completed_at is not None
    with pytest.raises(ConflictError, match="already cancelled"):
        await store.cancel_run(run_id, clock.now())
    with pytest.raises(NotFoundError, match="Run not found: nope"):
        await store.cancel_run("nope", clock.now())


async def test_delete_only_terminal_and_cascades(
    store: AnyStore, database: TestDatabase, clock: FakeClock
) -> None:
    [run_id] = await enqueue(store, clock, NewRun("a", "1", labels={"k": "v"}))
    with pytest.raises(ConflictError, match="Cannot delete pending run"):
        await store.delete_run(run_id)
    await claim(store, clock)
    await store.checkpoint_step(run_id, 1, **step_args(clock, "s0", 0))
    await store.fail_run(run_id, 1, "x", clock.now(), RunDelta())
    deleted = await store.delete_run(run_id)
    assert deleted.id == run_id
    assert await store.get_run(run_id) is None
    assert await store.get_steps(run_id) == []
    rows = database.query("SELECT COUNT(*) AS n FROM durably_run_labels")
    assert rows[0]["n"] == 0


async def test_purge_runs_deletes_old_terminal_runs(store: AnyStore, clock: FakeClock) -> None:
    old, kept_pending = await enqueue(store, clock, NewRun("a", "1"), NewRun("a", "2"))
    await store.cancel_run(old, clock.now())
    await clock.advance(3600)
    [recent] = await enqueue(store, clock, NewRun("a", "3"))
    await store.cancel_run(recent, clock.now())
    assert await store.purge_runs(clock.now() - 60, limit=10) == 1
    remaining = {r.id for r in await store.get_runs(RunFilter())}
    assert remaining == {kept_pending, recent}


async def test_get_runs_filters_and_pages(store: AnyStore, clock: FakeClock) -> None:
    ids = []
    for i in range(6):
        [run_id] = await enqueue(
            store,
            clock,
            NewRun("a" if i % 2 else "b", json.dumps(i), labels={"org": "x" if i < 3 else "y"}),
        )
        ids.append(run_id)
        await clock.advance(1)
    await store.cancel_run(ids[0], clock.now())
    newest_first = list(reversed(ids))
    assert [r.id for r in await store.get_runs(RunFilter())] == newest_first
    assert [r.id for r in await store.get_runs(RunFilter(limit=2, offset=1))] == newest_first[1:3]
    assert [r.id for r in await store.get_runs(RunFilter(statuses=("cancelled",)))] == [ids[0]]
    assert [
        r.id for r in await store.get_runs(RunFilter(statuses=("pending", "cancelled")))
    ] == newest_first
    assert [r.id for r in await store.get_runs(RunFilter(job_names=("a",)))] == [
        ids[5],
        ids[3],
        ids[1],
    ]
    assert len(await store.get_runs(RunFilter(job_names=("a", "b")))) == 6
    both = RunFilter(labels=(("org", "y"),), job_names=("b",))
    assert [r.id for r in await store.get_runs(both)] == [ids[4]]
    assert await store.get_runs(RunFilter(labels=(("org", "nope"),))) == []
    assert await store.get_runs(RunFilter(limit=0)) == []
