"""The plain step's checkpoint on the fast path (``core/fastpath.py``), and when it is not taken.

On SQLite a step with nothing else to write is checkpointed through the store's synchronous
``checkpoint_now``; a step with a log line waiting, a store without the hook (as PostgreSQL's),
and a locked database (``test_storage_faults.py``) go through the general ``checkpoint_step``.
Either way the same rows are written and the same rules hold.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from durably_web import StepContext, create_durably, define_job
from durably_web.adapters.sqlite3 import SQLite3Connection
from durably_web.core.signal import AbortSignal
from durably_web.errors import RunCancelled
from durably_web.storage.base import CheckpointsNow
from durably_web.storage.sqlite import SQLiteStore


class CountingStore(SQLiteStore):
    """A SQLite store that counts its checkpoints by path."""

    def __init__(self, path: Path) -> None:
        super().__init__(SQLite3Connection(str(path)))
        self.general = 0
        self.fast = 0

    async def checkpoint_step(self, run_id: str, generation: int, **fields: Any) -> None:
        self.general += 1
        await super().checkpoint_step(run_id, generation, **fields)

    def checkpoint_now(self, run_id: str, generation: int, row: Any) -> None:
        self.fast += 1
        super().checkpoint_now(run_id, generation, row)


class WithoutCheckpointNow(CountingStore):
    """A store without the optional hook, as PostgreSQL's: every checkpoint is awaited."""

    checkpoint_now = None  # type: ignore[assignment]  # a Protocol method set to None: absent


@define_job(name="plain", input=dict)
async def plain(step: StepContext, payload: dict[str, Any]) -> list[Any]:
    """Three plain steps, then one with a log line written inside it."""
    results = [await step.run(f"s{i}", lambda i=i: {"i": i}) for i in range(3)]

    def logs() -> int:
        step.log.info("inside")
        return 3

    results.append(await step.run("logged", logs))
    return results


async def stored_steps(store: SQLiteStore, run_id: str) -> list[tuple[str, int, str | None]]:
    return [(s.name, s.index, s.status) for s in await store.get_steps(run_id)]


async def test_plain_steps_take_the_fast_path_and_a_logged_one_the_general(
    tmp_path: Path,
) -> None:
    store = CountingStore(tmp_path / "fast.db")
    assert isinstance(store, CheckpointsNow)
    durably = create_durably(store, jobs={"plain": plain}, preserve_steps=True)
    await durably.migrate()
    run = await durably.jobs.plain.trigger({})
    final = await durably.process_one()
    assert final is not None and final.output == [{"i": 0}, {"i": 1}, {"i": 2}, 3]
    assert (store.fast, store.general) == (3, 1)  # the log line rides with the general path
    assert await stored_steps(store, run.id) == [
        ("s0", 0, "completed"),
        ("s1", 1, "completed"),
        ("s2", 2, "completed"),
        ("logged", 3, "completed"),
    ]
    assert [log.message for log in await durably.get_logs(run.id)] == ["inside"]
    await durably.close()
    await store.close()  # a store handed in is the caller's to close


async def test_a_store_without_checkpoint_now_awaits_every_checkpoint(tmp_path: Path) -> None:
    store = WithoutCheckpointNow(tmp_path / "general.db")
    assert not isinstance(store, CheckpointsNow)
    durably = create_durably(store, jobs={"plain": plain}, preserve_steps=True)
    await durably.migrate()
    run = await durably.jobs.plain.trigger({})
    final = await durably.process_one()
    assert final is not None and final.output == [{"i": 0}, {"i": 1}, {"i": 2}, 3]
    assert store.general == 4
    assert [name for name, _, _ in await stored_steps(store, run.id)] == [
        "s0",
        "s1",
        "s2",
        "logged",
    ]
    await durably.close()
    await store.close()


async def test_a_refused_plain_checkpoint_aborts_the_signal_and_writes_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "refused.db"
    signals: list[AbortSignal] = []

    @define_job(name="cancelled-inside", input=dict)
    async def cancelled_inside(step: StepContext, _: Any) -> None:
        def cancel_elsewhere() -> int:
            other = sqlite3.connect(db, isolation_level=None)  # as another process would
            other.execute(
                "UPDATE durably_runs SET status = 'cancelled' WHERE id = ?", (step.run_id,)
            )
            other.close()
            signals.append(step.signal)
            return 1

        await step.run("first", lambda: 0)
        await step.run("cancelled", cancel_elsewhere)
        await step.run("never", lambda: 2)

    durably = create_durably(f"sqlite:///{db}", jobs={"j": cancelled_inside}, preserve_steps=True)
    await durably.migrate()
    events: list[str] = []
    durably.on("*", lambda e: events.append(e.type))
    run = await durably.jobs.j.trigger({})
    final = await durably.process_one()
    assert final is not None and final.status == "cancelled"
    assert (signals[0].aborted, signals[0].reason) == (True, "cancelled")
    assert [s.name for s in await durably.get_steps(run.id)] == ["first"]
    assert "step:cancel" in events and "run:cancel" in events
    with pytest.raises(RunCancelled):
        await durably.wait_for_run(run.id)
    await durably.close()


async def test_a_plain_checkpoint_fenced_off_by_another_lease_aborts_as_lease_lost(
    tmp_path: Path,
) -> None:
    db = tmp_path / "reclaimed.db"
    signals: list[AbortSignal] = []

    @define_job(name="reclaimed", input=dict)
    async def reclaimed(step: StepContext, _: Any) -> None:
        def reclaimed_elsewhere() -> int:
            other = sqlite3.connect(db, isolation_level=None)  # another worker's claim
            other.execute(
                "UPDATE durably_runs SET lease_generation = lease_generation + 1 WHERE id = ?",
                (step.run_id,),
            )
            other.close()
            signals.append(step.signal)
            return 1

        await step.run("reclaimed", reclaimed_elsewhere)
        await step.run("never", lambda: 2)

    durably = create_durably(f"sqlite:///{db}", jobs={"j": reclaimed}, preserve_steps=True)
    await durably.migrate()
    events: list[str] = []
    durably.on("*", lambda e: events.append(e.type))
    run = await durably.jobs.j.trigger({})
    final = await durably.process_one()
    assert final is not None and (final.status, final.lease_generation) == ("leased", 2)
    assert (signals[0].aborted, signals[0].reason) == (True, "lease-lost")
    assert await durably.get_steps(run.id) == []
    assert "run:fail" not in events and "run:complete" not in events
    await durably.close()
