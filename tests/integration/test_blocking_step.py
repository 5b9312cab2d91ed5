"""A step that blocks the event loop past the lease: warned about, and the run still ends.

``FakeClock.block`` moves time without waking anyone, which is what a step that blocks the
event loop does to its worker: no lease renewal runs meanwhile. Each execution of the step
then waits at its own gate, so the test decides when "the block" ends and what another worker
does in between. The version with two real processes is in ``tests/acceptance``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from durably_web import Durably, Run, StepContext, define_job
from durably_web.testing import FakeClock, settle
from tests.conftest import MakeDurably
from tests.databases import until

LEASE = 30.0


class Nothing(BaseModel):
    pass


blocks: list[float] = []
"""How long each next execution of the step blocks, in order."""
gates: list[asyncio.Event] = []
"""One per execution of the step, appended when it starts blocking."""
clocks: list[FakeClock] = []


@define_job(name="blocker", input=Nothing)
async def blocker(step: StepContext, payload: Nothing) -> int:
    async def work() -> int:
        clocks[0].block(blocks.pop(0))
        gate = asyncio.Event()
        gates.append(gate)
        await gate.wait()
        return 1

    return int(await step.run("block", work))


async def started(count: int) -> asyncio.Event:
    """Wait (real time: claiming may do real I/O) for execution ``count`` of the step."""
    try:
        await until(lambda: len(gates) >= count)
    except TimeoutError:
        raise AssertionError(f"execution {count} of the step never started") from None
    return gates[count - 1]


def warnings(durably: Durably) -> list[Any]:
    seen: list[Any] = []
    durably.on("worker:error", lambda e: seen.append(e) if e.context == "step-blocked" else None)
    return seen


def setup(clock: FakeClock, *durations: float) -> None:
    blocks[:] = durations
    gates.clear()
    clocks[:] = [clock]


async def test_two_workers_lose_it_once_each_then_it_completes(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    setup(clock, 40, 40, 40)
    a = await make_durably({"blocker": blocker}, lease_duration=LEASE, worker_id="a")
    b = await make_durably({"blocker": blocker}, lease_duration=LEASE, worker_id="b")
    warned_a, warned_b = warnings(a), warnings(b)
    run = await a.jobs.blocker.trigger({})

    first = asyncio.ensure_future(a.process_one())  # a blocks 40 s: its 30 s lease expires
    await started(1)
    second = asyncio.ensure_future(b.process_one())  # b takes the run over and blocks too
    await started(2)
    gates[0].set()  # a's block ends: its checkpoint is refused
    assert (await first) is not None
    assert [w.error for w in warned_a] == [
        f"StepBlocked: step 'block' of run {run.id} ran 80.0s and the run's lease (30s) "
        "expired meanwhile: the step blocked the event loop, so the lease could not be "
        "renewed, another worker took the run over and this result was discarded. Make the "
        "step await (run blocking code with asyncio.to_thread) or raise lease_duration above "
        "the step's time (create_durably(lease_duration=...), durably-web run --lease-duration)."
    ]

    third = asyncio.ensure_future(a.process_one())  # a claims it again, with a longer lease
    await started(3)
    claimed = await a.get_run(run.id)
    assert claimed is not None and claimed.lease_owner == "a"
    assert claimed.lease_expires_at is not None
    assert claimed.lease_expires_at.timestamp() >= clock.now() - 40 + 160  # 2 x 80 s
    gates[1].set()  # b's block ends: b lost it too
    await second
    assert len(warned_b) == 1
    gates[2].set()  # a's block ended within its extended lease
    final = await third
    assert final is not None and (final.status, final.output) == ("completed", 1)
    assert len(warned_a) == 1  # the extended attempt did not overrun


async def test_a_worker_that_loses_it_twice_fails_the_run(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    """Even with the longer lease the step overran: the run fails, saying what to change."""
    setup(clock, 40, 100)
    a = await make_durably({"blocker": blocker}, lease_duration=LEASE, worker_id="a")
    fails: list[Any] = []
    a.on("run:fail", fails.append)
    run = await a.jobs.blocker.trigger({})

    async def intruder_claims() -> Run:
        """Another worker takes the expired lease (and never gets to run the step)."""
        taken = await a.store.claim_next("intruder", clock.now(), LEASE, ["blocker"])
        assert taken is not None
        return taken

    first = asyncio.ensure_future(a.process_one())
    await started(1)
    await intruder_claims()
    gates[0].set()
    await first
    clock.block(31)  # the intruder's lease expires
    second = asyncio.ensure_future(a.process_one())
    await started(2)  # extended to 80 s, but this execution blocks 100 s
    await intruder_claims()
    gates[1].set()
    await second
    clock.block(31)
    final = await a.process_one()
    assert final is not None and final.status == "failed"
    assert final.error == (
        "Step 'block' blocked the worker for 100.0s, longer than the lease, 2 times: each "
        "time another worker took the run over and the step's result was discarded. Make the "
        "step await (run blocking code with asyncio.to_thread) or raise lease_duration above "
        "100s, then retry the run."
    )
    assert [e.run_id for e in fails] == [run.id]
    assert len(gates) == 2  # the step did not run a third time
    await settle()


async def test_a_lone_worker_overrunning_its_lease_completes_with_a_warning(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    setup(clock, 40)
    a = await make_durably({"blocker": blocker}, lease_duration=LEASE)
    warned = warnings(a)
    await a.jobs.blocker.trigger({})
    task = asyncio.ensure_future(a.process_one())
    (await started(1)).set()
    final = await task
    assert final is not None and final.status == "completed"
    assert len(warned) == 1
    assert "another worker could have taken the run over" in warned[0].error
