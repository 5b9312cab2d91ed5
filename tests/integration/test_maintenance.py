"""Idle maintenance: runs of jobs no worker knows, and ``retain_runs`` under ``process_until_idle``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from durably_web import Durably, RunFailed, StepContext, define_job
from durably_web.testing import FakeClock, settle
from tests.conftest import MakeDurably
from tests.databases import until
from tests.jobs import steps_job


@define_job(name="ghost", input=dict[str, Any])
async def ghost_job(step: StepContext, payload: dict[str, Any]) -> str:
    return str(await step.run("only", lambda: "done"))


def seen(durably: Durably, *types: str) -> list[Any]:
    events: list[Any] = []
    for event_type in types:
        durably.on(event_type, events.append)
    return events


async def test_run_of_an_unknown_job_is_flagged_then_fails_after_the_grace(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    producer = await make_durably({"ghost": ghost_job})  # triggers, never executes
    worker = await make_durably({"steps": steps_job}, lease_duration=30)
    events = seen(worker, "worker:error", "run:fail")
    run = await producer.jobs.ghost.trigger({})

    assert await worker.process_until_idle() == 0
    assert (await worker.get_run(run.id)).error is None  # type: ignore[union-attr]
    await clock.advance(31)  # waited longer than a lease: no worker that knows it is around
    await worker.process_until_idle()
    flagged = await worker.get_run(run.id)
    assert flagged is not None and flagged.status == "pending"
    assert flagged.error == (
        "Unknown job: ghost. No worker that registers this job has claimed the run since "
        "2026-01-01T00:00:00.000Z; it fails at 2026-01-01T00:05:00.000Z unless one does."
    )
    assert [(e.type, e.context, e.run_id) for e in events] == [
        ("worker:error", "unknown-job", run.id)
    ]
    assert events[0].error == f"UnknownJob: {flagged.error}"
    await worker.process_until_idle()
    assert len(events) == 1  # warned once

    await clock.advance(270)  # 301 s of waiting: past the default grace of 300 s
    await worker.process_until_idle()
    failed = await worker.get_run(run.id)
    assert failed is not None and failed.status == "failed"
    assert failed.error == (
        "Unknown job: ghost (no worker that registers it claimed the run within 300s; "
        "register the job under this name, then retry the run)"
    )
    assert [(e.type, getattr(e, "error", None)) for e in events[1:]] == [("run:fail", failed.error)]


async def test_started_worker_fails_an_unknown_job_and_waiters_hear_it(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    producer = await make_durably({"ghost": ghost_job})
    worker = await make_durably({"steps": steps_job}, unknown_job_grace=60, polling_interval=5)
    run = await producer.jobs.ghost.trigger({})
    worker.start()
    waiter = asyncio.ensure_future(worker.wait_for_run(run.id))
    for _ in range(15):
        # Something asleep on the clock first: on PostgreSQL the worker's loop does real I/O,
        # and steps of the clock all taken while it is busy would pass it by.
        await until(lambda: clock.sleepers >= 1)
        await clock.advance(5)
    with pytest.raises(RunFailed, match="Unknown job: ghost"):
        await asyncio.wait_for(waiter, 5)


async def test_a_worker_that_knows_the_job_clears_the_warning_and_runs_it(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    worker = await make_durably({"steps": steps_job})
    run = await worker.jobs.steps.trigger({"n": 1})
    late = await make_durably({"ghost": ghost_job})  # its job arrives later
    ghost_run = await late.jobs.ghost.trigger({})
    await worker.process_until_idle()
    await clock.advance(31)
    await worker.process_until_idle()
    assert (await worker.get_run(ghost_run.id)).error.startswith("Unknown job")  # type: ignore[union-attr]
    final = await late.process_one()
    assert final is not None and (final.status, final.output, final.error) == (
        "completed",
        "done",
        None,
    )
    assert (await worker.get_run(run.id)).status == "completed"  # type: ignore[union-attr]


async def test_grace_none_leaves_runs_of_other_jobs_alone(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    producer = await make_durably({"ghost": ghost_job})
    worker = await make_durably({"steps": steps_job}, unknown_job_grace=None)
    events = seen(worker, "worker:error", "run:fail")
    run = await producer.jobs.ghost.trigger({})
    await clock.advance(3600)
    await worker.process_until_idle()
    untouched = await worker.get_run(run.id)
    assert untouched is not None and (untouched.status, untouched.error) == ("pending", None)
    assert events == []


async def test_grace_zero_fails_at_the_first_check_as_upstream(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    producer = await make_durably({"ghost": ghost_job})
    worker = await make_durably({"steps": steps_job}, unknown_job_grace=0)
    run = await producer.jobs.ghost.trigger({})
    await worker.process_until_idle()
    failed = await worker.get_run(run.id)
    assert failed is not None and failed.status == "failed"
    assert failed.error is not None and failed.error.startswith("Unknown job: ghost (")


# -- retain_runs ---------------------------------------------------------------------------


async def test_process_until_idle_applies_retain_runs(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    durably = await make_durably({"steps": steps_job}, retain_runs="1d")
    old = await durably.jobs.steps.trigger({"n": 1})
    assert await durably.process_until_idle() == 1
    await clock.advance(2 * 86400)
    recent = await durably.jobs.steps.trigger({"n": 1})
    assert await durably.process_until_idle() == 1
    assert await durably.get_run(old.id) is None  # purged: finished two days ago
    assert (await durably.get_run(recent.id)).status == "completed"  # type: ignore[union-attr]


async def test_process_until_idle_stopped_by_max_runs_does_no_maintenance(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    durably = await make_durably({"steps": steps_job}, retain_runs="1d")
    old = await durably.jobs.steps.trigger({"n": 1})
    await durably.process_one()
    await clock.advance(2 * 86400)
    await durably.jobs.steps.trigger({"n": 1})
    await durably.jobs.steps.trigger({"n": 1})
    assert await durably.process_until_idle(max_runs=1) == 1  # not idle yet, as upstream
    assert await durably.get_run(old.id) is not None
    assert await durably.process_until_idle() == 1
    await settle()
    assert await durably.get_run(old.id) is None
