"""Runs that cannot be executed end clearly: failed with a message, or the worker stops.

Any error before a run's job code starts (an unreadable checkpoint, input that no longer
matches the job, unreadable input or labels) fails the run with ``run:fail``; a broken database
stops the worker with ``worker:error`` (context ``worker-stopped``) and fails nothing. Never a
run leased, reclaimed and crashed again forever. Also: step names used twice in one run.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from durably_web import (
    Durably,
    RunFailed,
    StepContext,
    StorageError,
    create_durably,
    define_job,
)
from durably_web.testing import FailingConnection, FakeClock
from tests.conftest import MIGRATE_COMMITS, ConnectionFactory, MakeDurably
from tests.databases import sql_on
from tests.jobs import Recorder, steps_job


def events_of(durably: Durably, *types: str) -> list[Any]:
    seen: list[Any] = []
    for event_type in types:
        durably.on(event_type, seen.append)
    return seen


def engine_on(connection: Any, clock: FakeClock) -> Durably:
    return create_durably(connection, clock=clock, jobs={"steps": steps_job}, preserve_steps=True)


async def fail_then_corrupt(durably: Durably, sql: str) -> str:
    """Run ``steps`` until it fails at step 2 (steps 0-1 checkpointed), corrupt it, retry it."""
    run = await durably.jobs.steps.trigger({"n": 3, "fail_at": 2})
    failed = await durably.process_one()
    assert failed is not None and failed.status == "failed"
    sql_on(durably.store, sql, (run.id,))
    await durably.retry(run.id)
    return run.id


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "UPDATE durably_steps SET output = '{\"cut' WHERE run_id = ?1 AND name = 'step-1'",
            "Cannot resume run {id}: the stored result of step 'step-1' cannot be read",
        ),
        (
            "UPDATE durably_runs SET input = '{\"n\": 3, ' WHERE id = ?1",
            "Cannot execute run {id}: its stored input cannot be read",
        ),
        (
            "UPDATE durably_runs SET labels = '[1, 2' WHERE id = ?1",
            "Cannot execute run {id}: its stored labels cannot be read",
        ),
        (
            'UPDATE durably_runs SET input = \'{"n": "three"}\' WHERE id = ?1',
            "invalid input of run {id}: n: Input should be a valid integer",
        ),
    ],
    ids=["checkpoint", "input-json", "labels-json", "input-schema"],
)
async def test_poison_run_fails_with_a_clear_message(
    make_durably: MakeDurably, recorder: Recorder, sql: str, message: str
) -> None:
    durably = await make_durably({"steps": steps_job}, preserve_steps=True)
    run_id = await fail_then_corrupt(durably, sql)
    seen = events_of(durably, "run:fail", "worker:error")
    recorder.healed = True
    final = await durably.process_one()
    assert final is not None and final.status == "failed"
    assert final.error is not None and message.format(id=run_id) in final.error, final.error
    assert [e.type for e in seen] == ["run:fail"]
    assert seen[0].error == final.error
    assert recorder.calls[(run_id, "step-2")] == 1  # the job never ran again
    assert await durably.process_one() is None  # nothing left to claim: no loop


async def test_poison_run_ends_a_started_worker_and_its_waiter(
    make_durably: MakeDurably, recorder: Recorder, clock: FakeClock
) -> None:
    """The case that hung ``durably-web run`` forever: a worker loop and a waiter."""
    durably = await make_durably({"steps": steps_job}, preserve_steps=True)
    run_id = await fail_then_corrupt(
        durably, "UPDATE durably_steps SET output = 'not json' WHERE run_id = ?1"
    )
    recorder.healed = True
    durably.start()
    with pytest.raises(RunFailed, match="cannot be read"):
        await asyncio.wait_for(durably.wait_for_run(run_id), 10)
    await clock.advance(120)  # past any lease: nothing is reclaimed or retried
    run = await durably.get_run(run_id)
    assert run is not None and (run.status, run.lease_generation) == ("failed", 2)


async def test_unreadable_progress_does_not_stop_a_run(make_durably: MakeDurably) -> None:
    """Progress is shown, not needed to execute: a run with garbage progress still runs."""
    durably = await make_durably({"steps": steps_job})
    run = await durably.jobs.steps.trigger({"n": 2})
    sql_on(durably.store, "UPDATE durably_runs SET progress = '{' WHERE id = ?1", (run.id,))
    listed = await durably.get_run(run.id)
    assert listed is not None and listed.progress is None
    assert listed.unreadable == {"progress": "{"}
    final = await durably.process_one()
    assert final is not None and final.status == "completed"
    assert final.progress is not None and final.progress.current == 2
    assert final.unreadable == {}


async def test_broken_database_stops_the_worker_and_fails_nothing(
    connect: ConnectionFactory, clock: FakeClock, recorder: Recorder
) -> None:
    inner = connect()
    flaky = FailingConnection(inner, fail_on_commit=MIGRATE_COMMITS + 4)  # trigger, claim, 2 steps
    durably = engine_on(flaky, clock)
    await durably.migrate()
    run = await durably.jobs.steps.trigger({"n": 4})
    seen = events_of(durably, "run:fail", "worker:error")
    durably.start()
    for _ in range(500):  # the loop exits once its runs are handed back, a moment after halt()
        if durably.worker.failure is not None and not durably.worker.running:
            break
        await asyncio.sleep(0.01)
    failure = durably.worker.failure
    assert isinstance(
        failure, StorageError
    ) and f"simulated failure of commit #{MIGRATE_COMMITS + 4}" in str(failure)
    assert not durably.worker.running
    assert [(e.type, e.context) for e in seen] == [("worker:error", "worker-stopped")]
    assert f"simulated failure of commit #{MIGRATE_COMMITS + 4}" in seen[0].error
    stored = await durably.get_run(run.id)
    assert stored is not None and stored.status == "pending"  # handed back, not failed
    assert stored.error is None

    durably.start()  # the database is healthy again: the run resumes where it stopped
    final = await asyncio.wait_for(durably.wait_for_run(run.id), 10)
    assert final.output == {"total": 6}
    assert [recorder.calls[(run.id, f"step-{i}")] for i in range(4)] == [1, 2, 1, 1]
    await durably.stop()


async def test_broken_database_under_process_one_raises_and_hands_back(
    connect: ConnectionFactory, clock: FakeClock
) -> None:
    flaky = FailingConnection(connect(), fail_on_commit=MIGRATE_COMMITS + 4)
    durably = engine_on(flaky, clock)
    await durably.migrate()
    run = await durably.jobs.steps.trigger({"n": 4})
    with pytest.raises(StorageError, match=f"simulated failure of commit #{MIGRATE_COMMITS + 4}"):
        await durably.process_one()
    stored = await durably.get_run(run.id)
    assert stored is not None and stored.status == "pending"
    final = await durably.process_one()
    assert final is not None and final.status == "completed"


# -- step names are keys ---------------------------------------------------------------


class Nothing(BaseModel):
    pass


@define_job(name="dup-steps", input=Nothing)
async def dup_steps(step: StepContext, payload: Nothing) -> list[Any]:
    """Two steps under one name: the second must not silently return the first's result."""

    def second_fn() -> int:
        calls.append("second")
        return 2

    calls.append("first")
    first = await step.run("same", lambda: 1)
    second = await step.run("same", second_fn)
    return [first, second]


calls: list[str] = []


async def test_duplicate_step_name_fails_the_run_naming_the_step(
    make_durably: MakeDurably,
) -> None:
    calls.clear()
    durably = await make_durably({"dup": dup_steps}, preserve_steps=True)
    seen = events_of(durably, "run:fail")
    run = await durably.jobs.dup.trigger({})
    final = await durably.process_one()
    assert final is not None and final.status == "failed"
    assert final.error == (
        f"step name 'same' is used twice in run {run.id}: steps are keyed by name, so each "
        "step of a run needs its own (e.g. f'fetch-{i}' in a loop)"
    )
    assert calls == ["first"]  # the second function never ran
    assert seen[0].failed_step_name == "same"
    assert [(s.name, s.status) for s in await durably.get_steps(run.id)] == [("same", "completed")]


async def test_step_name_must_be_a_non_empty_string(make_durably: MakeDurably) -> None:
    @define_job(name="empty-name", input=Nothing)
    async def empty_name(step: StepContext, payload: Nothing) -> None:
        await step.run("", lambda: 1)

    durably = await make_durably({"empty": empty_name})
    await durably.jobs.empty.trigger({})
    final = await durably.process_one()
    assert final is not None and final.error == "step name must be a non-empty string, got ''"
