"""The Store contract for what goes wrong: newer schemas, unreadable rows, failed writes,
and the queries that find runs of jobs no worker knows. Run on every backend, Pyodide's too
(the tests of SQLite itself on its backends only).
"""

from __future__ import annotations

import pytest

from durably_web.errors import StorageError
from durably_web.ids import new_ulid, ulid_time
from durably_web.storage.records import NewRun, RunDelta, RunFilter
from durably_web.storage.sqlite import SQLiteStore
from durably_web.testing import FailingConnection, FakeClock
from tests.conftest import MIGRATE_COMMITS, ConnectionFactory
from tests.contract.test_store import LATEST, LEASE, claim, enqueue, step_args
from tests.databases import AnyStore, TestDatabase

# -- schema versions ---------------------------------------------------------------------


def tables(store: SQLiteStore) -> list[str]:
    rows = store.connection.query(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    )
    return [row["name"] for row in rows]


async def test_newer_schema_is_refused_and_nothing_written(
    connect: ConnectionFactory, clock: FakeClock
) -> None:
    store = SQLiteStore(connect())
    store.connection.execute(
        "CREATE TABLE durably_schema_versions (version integer primary key, applied_at text)"
    )
    store.connection.execute(
        "INSERT INTO durably_schema_versions VALUES (99, '2030-01-01T00:00:00.000Z')"
    )
    with pytest.raises(StorageError) as raised:
        await store.migrate(clock.now())
    message = str(raised.value)
    assert "schema version 99" in message and f"(version {LATEST})" in message, message
    assert "Upgrade durably_web" in message
    assert tables(store) == ["durably_schema_versions"]  # no table created
    rows = store.connection.query("SELECT version FROM durably_schema_versions")
    assert rows == [{"version": 99}]


async def test_newer_schema_on_a_migrated_database_is_refused(
    store: AnyStore, database: TestDatabase, clock: FakeClock
) -> None:
    newer = database.schema_version + 1
    database.query(
        f"INSERT INTO durably_schema_versions VALUES ({newer}, '2030-01-01T00:00:00.000Z')"
    )
    with pytest.raises(StorageError, match=f"schema version {newer}, newer than this durably_web"):
        await store.migrate(clock.now())


# -- rows that cannot be parsed ----------------------------------------------------------


async def test_unreadable_columns_are_named_and_the_run_still_lists(
    store: AnyStore, database: TestDatabase, clock: FakeClock
) -> None:
    [bad, good] = await enqueue(store, clock, NewRun("a", '{"x":1}'), NewRun("a", "2"))
    database.query(
        "UPDATE durably_runs SET status = 'leased', lease_owner = 'w', "
        "lease_expires_at = '33715-07-10T20:40:52.123Z', started_at = 'yesterday', "
        "created_at = 'not a time', updated_at = '', progress = '{\"current\": \"x\"}', "
        f"labels = '{{\"k\": 1}}', output = '[1,' WHERE id = '{bad}'"
    )
    run = await store.get_run(bad)
    assert run is not None
    assert run.unreadable == {
        "lease_expires_at": "33715-07-10T20:40:52.123Z",
        "started_at": "yesterday",
        "created_at": "not a time",
        "updated_at": "",
        "progress": '{"current": "x"}',
        "labels": '{"k": 1}',
        "output": "[1,",
    }
    assert run.lease_expires_at is not None and run.lease_expires_at.year == 9999
    assert run.started_at is None and run.progress is None and run.labels == {}
    assert run.output == "[1,"  # the raw text stands in for JSON that cannot be parsed
    assert run.created_at.timestamp() == ulid_time(bad)  # the run id's own time stands in
    assert run.updated_at == run.created_at
    assert run.input == {"x": 1}
    assert run.to_wire()["leaseExpiresAt"] == "9999-12-31T23:59:59.999Z"
    listed = await store.get_runs(RunFilter())
    assert {r.id for r in listed} == {good, bad}
    cancelled = await store.cancel_run(bad, clock.now())
    assert cancelled.status == "cancelled" and cancelled.lease_expires_at is None
    assert await claim(store, clock) is not None  # the other run is untouched


async def test_unreadable_step_and_log_columns(
    store: AnyStore, database: TestDatabase, clock: FakeClock
) -> None:
    await enqueue(store, clock, NewRun("a", "1"))
    run = await claim(store, clock)
    assert run is not None
    logs = (("L1", run.id, None, "info", "hi", "{oops", "garbage"),)
    await store.checkpoint_step(run.id, 1, **{**step_args(clock, "s0", 0), "logs": logs})
    database.query("UPDATE durably_steps SET output = 'nope', started_at = 'x'")
    [step] = await store.get_steps(run.id)
    assert step.unreadable == {"output": "nope", "started_at": "x"}
    assert step.output == "nope" and step.started_at.timestamp() > 0
    [log] = await store.get_logs(run.id)
    assert log.unreadable == {"data": "{oops", "created_at": "garbage"}
    assert log.message == "hi"


# -- a write that fails writes nothing of its delta -------------------------------------


async def test_failed_flush_writes_nothing_and_the_same_delta_goes_out_later(
    connect: ConnectionFactory, clock: FakeClock
) -> None:
    inner = connect()
    flaky = FailingConnection(inner, fail_on_commit=MIGRATE_COMMITS + 3)  # enqueue, claim, flush
    store = SQLiteStore(flaky)
    await store.migrate(clock.now())
    await enqueue(store, clock, NewRun("a", "1"))
    run = await claim(store, clock)
    assert run is not None
    one = ("L1", run.id, None, "info", "one", None, "2026-01-01T00:00:00.000Z")
    two = ("L2", run.id, None, "info", "two", None, "2026-01-01T00:00:00.001Z")
    delta = RunDelta(progress_json='{"current":1}', current_step_index=1, logs=(one,))
    with pytest.raises(StorageError, match=f"commit #{MIGRATE_COMMITS + 3}"):
        await store.flush(run.id, 1, delta, clock.now())
    assert await store.get_logs(run.id) == []
    assert delta == RunDelta('{"current":1}', current_step_index=1, logs=(one,))  # untouched
    await store.checkpoint_step(run.id, 1, **{**step_args(clock, "s0", 0), "logs": (one, two)})
    assert [log.message for log in await store.get_logs(run.id)] == ["one", "two"]
    assert await store.flush(run.id, 1, RunDelta(progress_json='{"current":1}'), clock.now())
    after = await store.get_run(run.id)
    assert after is not None and after.progress is not None and after.progress.current == 1


async def test_replayed_logs_count_lines_per_step(store: AnyStore, clock: FakeClock) -> None:
    """Lines outside steps count; a step's count only while its attempt is unfinished.

    A completed step replays (its lines are not logged again); a failed attempt is over (the
    step's next attempt writes lines of its own).
    """
    [run_id] = await enqueue(store, clock, NewRun("a", "1"))
    assert await store.replayed_logs(run_id) == {}
    await claim(store, clock)
    stamp = "2026-01-01T00:00:00.000Z"
    logs = tuple(
        (new_ulid(clock.now()), run_id, step, "info", "x", None, stamp)
        for step in (None, "s0", "s0", None, "s1")
    )
    assert await store.flush(run_id, 1, RunDelta(logs=logs), clock.now())
    assert await store.replayed_logs(run_id) == {None: 2, "s0": 2, "s1": 1}
    await store.checkpoint_step(run_id, 1, **step_args(clock, "s0", 0))
    assert await store.replayed_logs(run_id) == {None: 2, "s1": 1}
    await store.record_failed_step(
        run_id,
        1,
        name="s1",
        index=1,
        status="failed",
        error="x",
        started_at=clock.now(),
        now=clock.now(),
        logs=(),
        attempt=1,
        retry_at=clock.now() + 5,
    )
    assert await store.replayed_logs(run_id) == {None: 2}  # s1's first attempt is over
    later = (new_ulid(clock.now()), run_id, "s1", "info", "y", None, stamp)
    assert await store.flush(run_id, 1, RunDelta(logs=(later,)), clock.now())
    assert await store.replayed_logs(run_id) == {None: 2, "s1": 1}  # its second attempt's


# -- runs of jobs no worker knows --------------------------------------------------------


async def test_unknown_job_runs_are_found_flagged_and_failed(
    store: AnyStore, clock: FakeClock
) -> None:
    [ghost, known] = await enqueue(store, clock, NewRun("ghost", "1"), NewRun("a", "2"))
    now = clock.now()
    assert await store.unknown_job_runs(["a"], now - 1, now, 10) == []  # not waiting long enough
    await clock.advance(60)
    now = clock.now()
    found = await store.unknown_job_runs(["a"], now - 30, now, 10)
    assert [run.id for run in found] == [ghost]
    assert await store.flag_unknown_job(ghost, "Unknown job: ghost. waiting")
    assert not await store.flag_unknown_job(ghost, "again")  # flagged once
    flagged = await store.get_run(ghost)
    assert flagged is not None and flagged.error == "Unknown job: ghost. waiting"
    assert flagged.updated_at.timestamp() == pytest.approx(now - 60, abs=0.001)  # still dated
    assert await store.fail_unknown_job(ghost, "Unknown job: ghost", now - 120, now) is None
    failed = await store.fail_unknown_job(ghost, "Unknown job: ghost", now - 30, now)
    assert failed is not None and (failed.status, failed.error) == ("failed", "Unknown job: ghost")
    known_run = await store.get_run(known)
    assert known_run is not None and known_run.status == "pending"


async def test_a_live_lease_on_the_job_means_a_worker_knows_it(
    store: AnyStore, clock: FakeClock
) -> None:
    busy_id, waiting_id = await enqueue(store, clock, NewRun("b", "1"), NewRun("b", "2"))
    busy = await claim(store, clock, "w1", jobs=("b",))
    assert busy is not None and busy.id == busy_id
    await clock.advance(20)
    now = clock.now()
    assert await store.unknown_job_runs(["a"], now - 10, now, 10) == []
    assert await store.fail_unknown_job(busy.id, "x", now - 10, now) is None
    await clock.advance(LEASE)  # the lease expired: the worker that knew "b" is gone
    now = clock.now()
    found = await store.unknown_job_runs(["a"], now - 10, now, 10)
    assert [run.id for run in found] == [busy_id, waiting_id]


async def test_claim_and_cancel_clear_the_unknown_job_warning(
    store: AnyStore, clock: FakeClock
) -> None:
    first, second = await enqueue(store, clock, NewRun("a", "1"), NewRun("a", "2"))
    for run_id in (first, second):
        assert await store.flag_unknown_job(run_id, "Unknown job: a. waiting")
    claimed = await claim(store, clock)
    assert claimed is not None and claimed.id == first and claimed.error is None
    cancelled = await store.cancel_run(second, clock.now())
    assert cancelled.error is None
