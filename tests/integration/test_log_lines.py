"""Each ``step.log`` line is stored once, however often its run resumes.

A resumed attempt calls the job from the top; it skips as many log calls as the run already
has stored lines and writes the rest. Across a retry, a stop (Ctrl-C), and a crash followed by
a new engine that releases the dead one's leases (what the browser worker does after a page
reload). The SIGKILL version, with real processes, is in ``tests/acceptance``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from durably_web import StepContext, create_durably, define_job
from durably_web.testing import FailingConnection, FakeClock, SimulatedCrash
from tests.conftest import MIGRATE_COMMITS, ConnectionFactory, MakeDurably


class Flaky(BaseModel):
    steps: int = 3
    gate_at: int | None = None


healed = {"ok": False}
executed: list[str] = []
gate = {"reached": asyncio.Event(), "open": asyncio.Event()}


@define_job(name="logged", input=Flaky)
async def logged(step: StepContext, payload: Flaky) -> int:
    step.log.info("start")
    for i in range(payload.steps):

        async def work(i: int = i) -> int:
            executed.append(f"s{i}")
            step.log.info(f"inside {i}")
            if i == payload.gate_at:
                gate["reached"].set()
                await gate["open"].wait()
            return i

        await step.run(f"s{i}", work)
        step.log.info(f"did {i}")
    if not healed["ok"]:
        raise RuntimeError("not yet")
    step.log.info("end")
    return payload.steps


def reset(*, heal: bool = False) -> None:
    """Start a test afresh (called by each test: the Pyodide runner has no autouse fixtures)."""
    healed["ok"] = heal
    executed.clear()
    gate["reached"], gate["open"] = asyncio.Event(), asyncio.Event()


def expected(steps: int) -> list[str]:
    lines = ["start"]
    for i in range(steps):
        lines += [f"inside {i}", f"did {i}"]
    return [*lines, "end"]


async def messages(durably: Any, run_id: str) -> list[str]:
    return [log.message for log in await durably.get_logs(run_id)]


async def test_retry_writes_each_line_once(make_durably: MakeDurably) -> None:
    reset()
    durably = await make_durably({"logged": logged}, preserve_steps=True)
    written: list[str] = []
    durably.on("log:write", lambda e: written.append(e.message))
    run = await durably.jobs.logged.trigger({})
    failed = await durably.process_one()
    assert failed is not None and failed.status == "failed"
    assert await messages(durably, run.id) == expected(3)[:-1]
    healed["ok"] = True
    await durably.retry(run.id)
    final = await durably.process_one()
    assert final is not None and final.status == "completed"
    assert await messages(durably, run.id) == expected(3)
    assert written == expected(3)  # events too: each line once
    assert executed == ["s0", "s1", "s2"]


async def test_stop_and_resume_writes_each_line_once(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    """``stop(timeout=0)`` (the CLI's Ctrl-C) mid-run hands the run back with its lines."""
    reset(heal=True)
    durably = await make_durably({"logged": logged}, preserve_steps=True)
    run = await durably.jobs.logged.trigger({"steps": 4, "gate_at": 2})
    durably.start()
    await asyncio.wait_for(gate["reached"].wait(), 5)
    await durably.stop(timeout=0)  # interrupts s2, whose "inside 2" is not written yet
    stopped = await durably.get_run(run.id)
    assert stopped is not None and stopped.status == "pending"
    assert await messages(durably, run.id) == expected(4)[:6]  # up to "inside 2"
    gate["open"].set()

    resumed = create_durably(
        durably.store, clock=clock, jobs={"logged": logged}, preserve_steps=True
    )
    final = await resumed.process_one()
    assert final is not None and final.status == "completed"
    assert await messages(durably, run.id) == expected(4)
    assert executed == ["s0", "s1", "s2", "s2", "s3"]


async def test_crash_then_reload_writes_each_line_once(
    connect: ConnectionFactory, clock: FakeClock
) -> None:
    """A crash at a commit, then a new engine that releases every lease, as after a reload."""
    reset(heal=True)
    inner = connect()
    crashing = create_durably(
        FailingConnection(inner, fail_on_commit=MIGRATE_COMMITS + 5, crash=True),
        clock=clock,
        jobs={"logged": logged},
        preserve_steps=True,
    )
    await crashing.migrate()  # one commit per migration
    run = await crashing.jobs.logged.trigger({"steps": 5})  # then trigger
    with pytest.raises(SimulatedCrash):
        await crashing.process_one()  # claim (5), s0-s1 (6-7), dies writing s2 (8)
    await crashing.stop()
    stored = [log.message for log in await create_durably(inner).get_logs(run.id)]
    assert stored == ["start", "inside 0", "did 0", "inside 1"]  # "did 1" was still pending

    reloaded = create_durably(inner, clock=clock, jobs={"logged": logged}, preserve_steps=True)
    assert await reloaded.release_all_leases() == 1
    final = await reloaded.process_one()
    assert final is not None and final.status == "completed"
    assert await messages(reloaded, run.id) == expected(5)
    assert executed == ["s0", "s1", "s2", "s2", "s3", "s4"]  # s2 was in flight at the crash


async def test_without_persisted_logs_replayed_lines_are_not_emitted_again(
    make_durably: MakeDurably,
) -> None:
    reset()
    durably = await make_durably({"logged": logged}, preserve_steps=True, persist_logs=False)
    written: list[str] = []
    durably.on("log:write", lambda e: written.append(e.message))
    run = await durably.jobs.logged.trigger({})
    await durably.process_one()
    healed["ok"] = True
    await durably.retry(run.id)
    written.clear()
    await durably.process_one()
    assert written == ["did 2", "end"]  # replay ends at the last checkpoint, s2
    assert await messages(durably, run.id) == []


async def test_a_flush_due_during_a_slow_checkpoint_waits_for_it(
    make_durably: MakeDurably,
) -> None:
    """The run's writes go one at a time: two in flight would carry the same lines twice."""

    async def run(step: StepContext, payload: dict[str, Any]) -> None:
        step.log.info("one")
        step.progress(1, 2)  # its flush falls due while the checkpoint below is in flight
        await step.run("a", lambda: 1)
        step.log.info("two")
        await step.run("b", lambda: 2)

    durably = await make_durably(
        {"slow": define_job(name="slow", input=dict, run=run)}, preserve_steps=True
    )
    checkpoint_step = durably.store.checkpoint_step

    async def slow_checkpoint_step(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.2)  # a database under load (the flush is due after 50 ms)
        return await checkpoint_step(*args, **kwargs)

    durably.store.checkpoint_step = slow_checkpoint_step  # type: ignore[method-assign]
    handle = await durably.jobs.slow.trigger({})
    final = await durably.process_one()
    assert final is not None and final.status == "completed", final.error if final else None
    logs = await durably.get_logs(handle.id)
    assert [line.message for line in logs] == ["one", "two"]
