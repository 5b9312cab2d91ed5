"""Storage faults with real SQLite files: a held lock, a full disk.

A second connection holds ``BEGIN IMMEDIATE`` (from a thread, or another process) longer than
the engine's ``busy_timeout``, then lets go: nothing fails, nothing is lost, and the event loop
keeps running meanwhile. ``PRAGMA max_page_count`` makes the disk "full": the worker stops with the error, the
run is not failed and resumes once there is room. (The CLI's version, with a real file-size
limit on a real process, is in ``test_cli.py``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from durably_web import Durably, StepContext, ValidationError, create_durably, define_job
from durably_web.adapters.sqlite3 import SQLite3Connection
from durably_web.storage.connection import DatabaseBusy, DatabaseFull
from tests.databases import lock_held_by_process

HOLD = 1.0
"""Seconds the other connection holds the write lock: ten times the engine's busy_timeout."""


@contextmanager
def lock_held(db: Path, seconds: float = HOLD) -> Iterator[threading.Event]:
    """Hold the database's write lock from another connection for ``seconds``, then release.

    Yields an event set once the lock is taken.
    """
    taken = threading.Event()

    def hold() -> None:
        other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        taken.set()
        threading.Event().wait(seconds)
        other.execute("COMMIT")
        other.close()

    thread = threading.Thread(target=hold, name="lock-holder")
    thread.start()
    try:
        taken.wait(5)
        yield taken
    finally:
        thread.join()


def engine(db: Path, **options: Any) -> Durably:
    """An engine on ``db`` whose connection gives up on a lock after 0.1 s."""
    return create_durably(f"sqlite:///{db}?busy_timeout=0.1", **options)


class Gate(BaseModel):
    steps: int = 3


gates: dict[str, asyncio.Event] = {}
reached: dict[str, asyncio.Event] = {}


@define_job(name="gated", input=Gate)
async def gated(step: StepContext, payload: Gate) -> dict[str, int]:
    """Log and report progress, then wait at a gate before each step."""
    for i in range(payload.steps):
        step.log.info(f"before {i}")
        step.progress(i, payload.steps)
        reached[f"gate-{i}"].set()
        await gates[f"gate-{i}"].wait()
        await step.run(f"s{i}", lambda i=i: i)
    step.log.info("done")
    return {"steps": payload.steps}


@define_job(name="gated-end", input=Gate)
async def gated_end(step: StepContext, payload: Gate) -> dict[str, int]:
    """Checkpoint its steps, then wait at the gate ``end`` before returning."""
    for i in range(payload.steps):
        await step.run(f"s{i}", lambda i=i: i)
    reached["end"].set()
    await gates["end"].wait()
    return {"steps": payload.steps}


@pytest.fixture(autouse=True)
def fresh_gates() -> None:
    gates.clear()
    reached.clear()
    for name in [*(f"gate-{i}" for i in range(10)), "end"]:
        gates[name] = asyncio.Event()
        reached[name] = asyncio.Event()


def worker_errors(durably: Durably) -> list[Any]:
    seen: list[Any] = []
    durably.on("worker:error", seen.append)
    return seen


# -- the adapter sorts SQLite's errors ---------------------------------------------------


def test_adapter_translates_busy_full_and_too_big(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    connection = SQLite3Connection(str(db), busy_timeout=0)
    connection.execute("CREATE TABLE t (x)")
    with lock_held(db, 0.5), pytest.raises(DatabaseBusy, match="database is locked"):
        connection.execute("INSERT INTO t VALUES (1)")
    connection.execute("PRAGMA max_page_count = 3")
    with pytest.raises(DatabaseFull, match="database or disk is full"):
        connection.execute("INSERT INTO t VALUES (zeroblob(100000))")
    with pytest.raises(ValidationError, match="too large to store"):
        connection.query("SELECT zeroblob(2000000000)")
    assert connection.query("SELECT count(*) AS n FROM t") == [{"n": 0}]
    connection.close()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e12, -1])
def test_busy_timeout_is_bounded(tmp_path: Path, value: float) -> None:
    with pytest.raises(ValidationError, match="busy_timeout must be"):
        SQLite3Connection(str(tmp_path / "t.db"), busy_timeout=value)
    with pytest.raises(ValidationError, match="busy_timeout must be"):
        create_durably(f"sqlite:///{tmp_path / 'u.db'}?busy_timeout={value}")
    assert not (tmp_path / "t.db").exists()


# -- a lock held past busy_timeout is waited out -----------------------------------------


async def test_start_up_waits_out_a_held_lock(tmp_path: Path) -> None:
    """A worker starting while another process holds the write lock starts once it clears."""
    db = tmp_path / "start.db"
    with contextlib.closing(sqlite3.connect(db)) as setup:  # an empty WAL file, no schema
        setup.execute("PRAGMA journal_mode = WAL")
    durably = engine(db, jobs={"gated": gated})
    errors = worker_errors(durably)
    with lock_held(db):
        await asyncio.wait_for(durably.init(), 20)  # migrate meets the held lock
    assert [e.context for e in errors][:1] == ["migrate: waiting for the database lock"]
    assert "database is locked" in errors[0].error
    assert durably.worker.running and await durably.get_runs() == []
    await durably.close()
    # Up to date: starting needs no write, so it does not wait for a held lock at all.
    again = engine(db, jobs={"gated": gated})
    errors = worker_errors(again)
    with lock_held(db):
        await asyncio.wait_for(again.migrate(), HOLD / 2)
    assert errors == []
    await again.close()


async def test_checkpoint_waits_out_a_held_lock(tmp_path: Path) -> None:
    db = tmp_path / "lock.db"
    durably = engine(db, jobs={"gated": gated}, preserve_steps=True)
    await durably.migrate()
    errors = worker_errors(durably)
    run = await durably.jobs.gated.trigger({"steps": 2})
    task = asyncio.create_task(durably.process_one())
    await asyncio.wait_for(reached["gate-0"].wait(), 5)
    with lock_held(db):
        gates["gate-0"].set()  # the checkpoint of s0 meets the held lock
        gates["gate-1"].set()
        final = await asyncio.wait_for(task, 20)
    assert final is not None
    assert (final.status, final.output, final.error) == ("completed", {"steps": 2}, None)
    waits = [e for e in errors if e.context.endswith(": waiting for the database lock")]
    assert waits and all("database is locked" in e.error for e in waits), errors
    logs = [log.message for log in await durably.get_logs(run.id)]
    assert logs == ["before 0", "before 1", "done"]
    await durably.close()


async def test_a_plain_checkpoint_that_meets_a_held_lock_waits_it_out(tmp_path: Path) -> None:
    # A step with nothing else to write takes the fast path (core/fastpath.py), which meets
    # the lock, writes nothing and hands the checkpoint to the general path, which waits.
    db = tmp_path / "lock.db"
    gate, reached = asyncio.Event(), asyncio.Event()

    @define_job(name="gated-plain", input=dict)
    async def gated_plain(step: StepContext, _: Any) -> int:
        async def held() -> int:
            reached.set()
            await gate.wait()
            return 1

        return await step.run("first", held) + await step.run("second", lambda: 2)  # type: ignore[no-any-return]

    durably = engine(db, jobs={"gated": gated_plain}, preserve_steps=True)
    await durably.migrate()
    errors = worker_errors(durably)
    run = await durably.jobs.gated.trigger({})
    task = asyncio.create_task(durably.process_one())
    await asyncio.wait_for(reached.wait(), 5)
    with lock_held(db):
        gate.set()  # "first" is checkpointed while another connection holds the lock
        final = await asyncio.wait_for(task, 20)
    assert final is not None and (final.status, final.output) == ("completed", 3)
    assert any(e.context.endswith(": waiting for the database lock") for e in errors), errors
    assert [s.name for s in await durably.get_steps(run.id)] == ["first", "second"]
    await durably.close()


async def test_outcome_waits_out_a_held_lock_and_is_not_cancelled_by_stop(
    tmp_path: Path,
) -> None:
    """The outcome write is shielded: ``stop(timeout=0)`` while it waits does not undo it."""
    db = tmp_path / "outcome.db"
    durably = engine(db, jobs={"gated": gated_end}, preserve_steps=True)
    await durably.migrate()
    errors = worker_errors(durably)
    run = await durably.jobs.gated.trigger({"steps": 1})
    durably.start()
    await asyncio.wait_for(reached["end"].wait(), 5)
    with lock_held(db):
        gates["end"].set()
        for _ in range(200):  # until the outcome write is waiting for the lock
            if any(e.context.startswith("complete:") for e in errors):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError(f"the outcome never met the lock: {errors}")
        await durably.stop(timeout=0)  # cancels the run's task mid-outcome
    stored = await durably.get_run(run.id)
    assert stored is not None
    assert (stored.status, stored.output) == ("completed", {"steps": 1})
    await durably.close()


async def test_flush_that_meets_a_lock_keeps_its_lines(tmp_path: Path) -> None:
    """Pending progress and log lines survive a failed flush and go out with the next write."""
    db = tmp_path / "flush.db"
    durably = engine(db, jobs={"gated": gated}, preserve_steps=True)
    await durably.migrate()
    run = await durably.jobs.gated.trigger({"steps": 2})
    task = asyncio.create_task(durably.process_one())
    await asyncio.wait_for(reached["gate-0"].wait(), 5)
    with lock_held(db, 0.6):
        await asyncio.sleep(0.3)  # the 50 ms flush of "before 0" fails against the lock
        stored = [log.message for log in await durably.get_logs(run.id)]
        assert stored == []
    gates["gate-0"].set()
    await asyncio.wait_for(reached["gate-1"].wait(), 5)
    assert [log.message for log in await durably.get_logs(run.id)] == ["before 0"]
    gates["gate-1"].set()
    final = await asyncio.wait_for(task, 10)
    assert final is not None and final.status == "completed"
    assert final.progress is not None and final.progress.current == 1
    logs = [log.message for log in await durably.get_logs(run.id)]
    assert logs == ["before 0", "before 1", "done"]
    await durably.close()


# -- a lock held by another process does not freeze the event loop ----------------------


async def test_a_lock_held_by_another_process_leaves_the_loop_running(tmp_path: Path) -> None:
    """A write waiting for the lock waits off the loop: a read answers meanwhile.

    SQLite's own busy handler would wait inside the call, on the event loop: the trigger would
    return before the read even started.
    """
    db = tmp_path / "loop.db"
    durably = create_durably(f"sqlite:///{db}", jobs={"gated": gated})  # busy_timeout 5 s
    await durably.migrate()
    errors = worker_errors(durably)
    order: list[str] = []

    async def trigger() -> None:
        await durably.jobs.gated.trigger({"steps": 1})
        order.append("trigger returned")

    with lock_held_by_process(db, 1.5):
        writing = asyncio.create_task(trigger())
        await asyncio.sleep(0)  # the trigger meets the held lock
        assert await durably.get_runs() == []  # WAL: reads need no lock
        order.append("read answered")
        await asyncio.wait_for(writing, 10)
    assert order == ["read answered", "trigger returned"]
    assert [run.status for run in await durably.get_runs()] == ["pending"]
    assert errors == []  # waited within busy_timeout: nothing to report
    await durably.close()


# -- a full disk stops the worker; the run resumes once there is room --------------------


class Big(BaseModel):
    steps: int = 40
    size: int = 20_000


@define_job(name="big", input=Big)
async def big(step: StepContext, payload: Big) -> dict[str, int]:
    for i in range(payload.steps):

        def work(i: int = i) -> str:
            executed.append(i)
            return "x" * payload.size

        await step.run(f"s{i}", work)
    return {"steps": payload.steps}


executed: list[int] = []


async def test_full_disk_stops_the_worker_and_the_run_resumes_later(tmp_path: Path) -> None:
    executed.clear()
    db = tmp_path / "full.db"
    connection = SQLite3Connection(str(db))
    durably = create_durably(connection, jobs={"big": big}, preserve_steps=True)
    await durably.migrate()
    fails: list[Any] = []
    durably.on("run:fail", fails.append)
    errors = worker_errors(durably)
    run = await durably.jobs.big.trigger({})
    pages = connection.query("PRAGMA page_count")[0]["page_count"]
    connection.execute(f"PRAGMA max_page_count = {pages + 40}")
    durably.start()
    for _ in range(500):
        if durably.worker.failure is not None:
            break
        await asyncio.sleep(0.01)
    assert isinstance(durably.worker.failure, DatabaseFull)
    assert not durably.worker.running
    assert [(e.context, e.error) for e in errors] == [
        ("worker-stopped", "DatabaseFull: SQLite error: database or disk is full")
    ]
    assert fails == []
    stopped = await durably.get_run(run.id)
    assert stopped is not None and stopped.status in ("pending", "leased")
    assert stopped.error is None
    done = len(await durably.get_steps(run.id))
    assert 0 < done < 40

    connection.execute("PRAGMA max_page_count = 1000000")  # space is back
    durably.start()
    final = await asyncio.wait_for(durably.wait_for_run(run.id), 20)
    assert final.output == {"steps": 40}
    assert sorted(set(executed)) == list(range(40))
    assert len(executed) <= 41  # at most the step in flight when the disk filled ran again
    assert [s.index for s in await durably.get_steps(run.id)] == list(range(40))
    await durably.close()


async def test_full_disk_under_process_one_raises(tmp_path: Path) -> None:
    db = tmp_path / "full.db"
    connection = SQLite3Connection(str(db))
    durably = create_durably(connection, jobs={"big": big}, preserve_steps=True)
    await durably.migrate()
    run = await durably.jobs.big.trigger({"steps": 20})
    pages = connection.query("PRAGMA page_count")[0]["page_count"]
    connection.execute(f"PRAGMA max_page_count = {pages + 20}")
    with pytest.raises(DatabaseFull):
        await durably.process_until_idle()
    stored = await durably.get_run(run.id)
    assert stored is not None and stored.status == "pending"
    connection.execute("PRAGMA max_page_count = 1000000")
    assert await durably.process_until_idle() == 1
    await durably.close()
