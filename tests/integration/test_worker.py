"""The worker loop: waking, polling, concurrency, stopping, registration."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from durably_web import (
    ConflictError,
    Durably,
    StepContext,
    ValidationError,
    create_durably,
    define_job,
)
from durably_web.models import Run
from durably_web.storage.connection import DatabaseBusy
from durably_web.testing import FakeClock, settle
from tests.conftest import ConnectionFactory, MakeDurably
from tests.databases import SQLITE_BACKENDS, until
from tests.jobs import Recorder, echo_job, other_steps_job, steps_job


async def test_trigger_wakes_idle_worker_without_polling(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    durably = await make_durably({"echo": echo_job}, polling_interval=3600.0)
    durably.start()
    await settle()
    started = asyncio.get_running_loop().create_future()

    def on_start(event: Any) -> None:
        if not started.done():
            started.set_result(event)

    durably.on("run:start", on_start)
    run = await durably.jobs.echo.trigger({"x": 1})
    event = await asyncio.wait_for(started, timeout=5)  # real seconds: the fake clock never moves
    assert event.run_id == run.id
    done = await durably.wait_for_run(run.id)
    assert done.output == {"x": 1}


@pytest.mark.parametrize("backend", SQLITE_BACKENDS, indirect=True)
async def test_polling_finds_work_written_by_another_process(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    worker = await make_durably({"echo": echo_job}, polling_interval=2.0)
    writer = await make_durably({"echo": echo_job})  # another "process": it never starts
    worker.start()
    await settle()
    run = await writer.jobs.echo.trigger({"x": 2})
    await settle()
    assert (await worker.get_run(run.id)).status == "pending"  # type: ignore[union-attr]
    await clock.advance(2)
    done = await worker.wait_for_run(run.id)
    assert done.status == "completed"


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_notify_wakes_idle_worker_for_work_written_by_another_process(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    worker = await make_durably({"echo": echo_job}, polling_interval=3600.0)
    writer = await make_durably({"echo": echo_job})  # another "process": its own pool, never starts
    other_job = await make_durably({"steps": steps_job})
    worker.start()
    await until(lambda: clock.sleepers > 0)  # idle, waiting an hour for its next poll
    woken: list[Any] = []
    worker.on("run:start", woken.append)
    await other_job.jobs.steps.trigger({"n": 1})  # not a job of this worker: no claim
    run = await writer.jobs.echo.trigger({"x": 3})
    await until(lambda: bool(woken))  # the clock never moves: only NOTIFY can have woken it
    assert [event.run_id for event in woken] == [run.id]
    done = await writer.wait_for_run(run.id, timeout=5)
    assert done.output == {"x": 3}


async def test_max_concurrent_runs_executes_in_parallel(
    make_durably: MakeDurably, recorder: Recorder
) -> None:
    durably = await make_durably({"steps": steps_job}, max_concurrent_runs=2)
    first = await durably.jobs.steps.trigger({"n": 2, "gate_at": 0, "gate": "one"})
    second = await durably.jobs.steps.trigger({"n": 2, "gate_at": 0, "gate": "two"})
    third = await durably.jobs.steps.trigger({"n": 1})
    durably.start()
    await asyncio.wait_for(recorder.entered["one"].wait(), 5)
    await asyncio.wait_for(recorder.entered["two"].wait(), 5)
    assert set(durably.worker.active) == {first.id, second.id}
    assert (await durably.get_run(third.id)).status == "pending"  # type: ignore[union-attr]
    recorder.gates["one"].set()
    recorder.gates["two"].set()
    for run in (first, second, third):
        assert (await durably.wait_for_run(run.id)).status == "completed"


class CountingClaims:
    """Wraps a store's ``claim_next``: counts claims in flight; may fail chosen calls."""

    def __init__(self, durably: Durably, failing: frozenset[int] = frozenset()) -> None:
        self.claim_next = durably.store.claim_next
        self.failing = failing
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0
        durably.store.claim_next = self  # type: ignore[method-assign]

    async def __call__(self, *args: Any, **kwargs: Any) -> Run | None:
        self.calls += 1
        number = self.calls
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # a server's round trip: let sibling claims start
            if number in self.failing:
                raise DatabaseBusy(f"claim {number} met a held lock")
            return await self.claim_next(*args, **kwargs)
        finally:
            self.in_flight -= 1


async def test_a_backlog_is_claimed_for_every_free_slot_at_once_each_run_once(
    make_durably: MakeDurably,
) -> None:
    durably = await make_durably({"echo": echo_job}, max_concurrent_runs=4)
    runs = await durably.jobs.echo.batch_trigger([{"i": i} for i in range(12)])
    claims = CountingClaims(durably)
    started: list[str] = []
    durably.on("run:start", lambda event: started.append(event.run_id))
    durably.start()
    async with asyncio.timeout(10):
        for run in runs:
            assert (await durably.wait_for_run(run.id)).status == "completed"
    assert sorted(started) == sorted(run.id for run in runs)  # each run claimed once
    assert claims.most_in_flight == 3  # the first claim found one: the 3 other slots at once


async def test_a_failed_claim_loses_none_of_the_runs_its_siblings_claimed(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    durably = await make_durably({"echo": echo_job}, max_concurrent_runs=4)
    runs = await durably.jobs.echo.batch_trigger([{"i": i} for i in range(6)])
    claims = CountingClaims(durably, failing=frozenset({3}))  # the 2nd of the batch of 3
    errors: list[Any] = []
    durably.on("worker:error", errors.append)
    durably.start()
    async with asyncio.timeout(10):  # the fake clock never moves: no lease ever expires
        for run in runs:
            assert (await durably.wait_for_run(run.id)).status == "completed"
    assert claims.calls > 4
    assert [(error.context, "claim 3" in error.error) for error in errors] == [
        ("worker-loop", True)
    ]


async def test_concurrency_key_excludes_across_jobs(
    make_durably: MakeDurably, recorder: Recorder
) -> None:
    durably = await make_durably(
        {"steps": steps_job, "other": other_steps_job}, max_concurrent_runs=3
    )
    holder = await durably.jobs.steps.trigger(
        {"n": 2, "gate_at": 0, "gate": "k"}, concurrency_key="shared"
    )
    blocked = await durably.jobs.other.trigger({"n": 1}, concurrency_key="shared")
    free = await durably.jobs.other.trigger({"n": 1})
    durably.start()
    await asyncio.wait_for(recorder.entered["k"].wait(), 5)
    assert (await durably.wait_for_run(free.id)).status == "completed"
    assert (await durably.get_run(blocked.id)).status == "pending"  # type: ignore[union-attr]
    recorder.gates["k"].set()
    assert (await durably.wait_for_run(holder.id)).status == "completed"
    assert (await durably.wait_for_run(blocked.id)).status == "completed"


async def test_stop_waits_for_runs_in_flight(make_durably: MakeDurably, recorder: Recorder) -> None:
    durably = await make_durably({"steps": steps_job})
    run = await durably.jobs.steps.trigger({"n": 2, "gate_at": 1, "gate": "s"})
    durably.start()
    await asyncio.wait_for(recorder.entered["s"].wait(), 5)
    stopping = asyncio.create_task(durably.stop())
    await settle()
    assert not stopping.done()
    recorder.gates["s"].set()
    await asyncio.wait_for(stopping, 5)
    assert (await durably.get_run(run.id)).status == "completed"  # type: ignore[union-attr]
    assert not durably.worker.running


async def test_stop_with_timeout_hands_run_back(
    make_durably: MakeDurably, recorder: Recorder
) -> None:
    durably = await make_durably({"steps": steps_job}, preserve_steps=True)
    run = await durably.jobs.steps.trigger({"n": 3, "gate_at": 1, "gate": "t"})
    durably.start()
    await asyncio.wait_for(recorder.entered["t"].wait(), 5)
    await asyncio.wait_for(durably.stop(timeout=0), 5)
    released = await durably.get_run(run.id)
    assert released is not None
    assert (released.status, released.lease_owner, released.completed_step_count) == (
        "pending",
        None,
        1,
    )
    recorder.gates["t"].set()
    final = await durably.process_one()
    assert final is not None and final.status == "completed"
    assert [recorder.calls[(run.id, f"step-{i}")] for i in range(3)] == [1, 2, 1]


async def test_process_until_idle_counts_runs(make_durably: MakeDurably) -> None:
    durably = await make_durably({"echo": echo_job})
    await durably.jobs.echo.batch_trigger([{"i": i} for i in range(3)])
    assert await durably.process_until_idle(max_runs=2) == 2
    assert await durably.process_until_idle() == 1
    assert await durably.process_until_idle() == 0
    with pytest.raises(ValidationError, match="max_runs"):
        await durably.process_until_idle(max_runs=0)


async def test_unregistered_jobs_are_left_for_other_workers(make_durably: MakeDurably) -> None:
    producer = await make_durably({"echo": echo_job})
    run = await producer.jobs.echo.trigger({})
    consumer = await make_durably({"steps": steps_job})
    assert await consumer.process_one() is None
    assert (await consumer.get_run(run.id)).status == "pending"  # type: ignore[union-attr]


async def test_register_is_idempotent_and_rejects_different_definitions(
    connect: ConnectionFactory,
) -> None:
    durably = create_durably(connect())
    assert durably.register({"steps": steps_job}) is durably
    durably.register({"steps": steps_job})
    assert list(durably.jobs) == ["steps"]

    @define_job(name="steps", input=dict)
    async def impostor(step: StepContext, payload: Any) -> None:
        return None

    with pytest.raises(ConflictError, match="already registered with a different definition"):
        durably.register({"steps2": impostor})
    with pytest.raises(ConflictError, match="job key 'steps'"):
        durably.register({"steps": echo_job})
    assert list(durably.jobs) == ["steps"]
    with pytest.raises(ValidationError, match="must be a JobDefinition"):
        durably.register({"x": object()})  # type: ignore[arg-type]
    durably.register([echo_job])
    assert durably.jobs.echo.name == "echo"
    assert durably.job(echo_job) is durably.jobs.echo
    assert durably.job_by_name("echo") is durably.jobs.echo
    with pytest.raises(AttributeError, match="no job registered under 'nope'"):
        _ = durably.jobs.nope


async def test_async_context_manager(connect: ConnectionFactory, clock: FakeClock) -> None:
    async with create_durably(connect(), clock=clock, jobs={"echo": echo_job}) as durably:
        result = await durably.jobs.echo.trigger_and_wait({"v": 1}, timeout=5)
        assert result.output == {"v": 1}
        assert durably.worker.running
    assert not durably.worker.running
