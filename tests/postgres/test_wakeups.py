"""Durable waits across processes on PostgreSQL: wake-ups travel by NOTIFY, not by polling.

Two engines on one database stand for two processes (each with its own pool and listener): a
worker, idle with a polling interval of one hour so that only a notification or its own timer
can wake it, and a producer with no worker running. Real clock; functional bounds only (the
latency targets are in bench/).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from durably_web import Durably, StepContext, create_durably, define_job

HOUR = 3600.0
BOUND = 10.0
"""Seconds a wake-up may take here (the machine is shared); a missed one would take an hour."""


@define_job(name="approval", input=dict[str, Any])
async def approval(step: StepContext, payload: dict[str, Any]) -> Any:
    """Wait for the signal ``go`` and return its payload."""
    return await step.wait_for_signal("go")


@define_job(name="nap", input=dict[str, Any])
async def nap(step: StepContext, payload: dict[str, Any]) -> Any:
    """Sleep ``payload["seconds"]`` durably (the step ``rest``), then return "rested"."""
    await step.sleep("rest", payload["seconds"])
    return "rested"


JOBS = {"approval": approval, "nap": nap}


@pytest.fixture
async def engines(postgres_url: str) -> AsyncIterator[tuple[Durably, Durably]]:
    worker = create_durably(postgres_url, jobs=JOBS, polling_interval=HOUR, preserve_steps=True)
    producer = create_durably(postgres_url, jobs=JOBS)
    await worker.init()  # migrates, listens, starts the idle worker
    await producer.migrate()
    yield worker, producer
    await producer.close()
    await worker.close(timeout=5)


async def test_a_signal_from_another_process_resumes_the_run_at_once(
    engines: tuple[Durably, Durably],
) -> None:
    _, producer = engines  # the worker runs in the fixture
    run = await producer.jobs.approval.trigger({})
    await _until_waiting(producer, run.id)
    sent = time.monotonic()
    await producer.signal(run.id, "go", {"ok": True})
    done = await producer.wait_for_run(run.id, timeout=BOUND)
    assert time.monotonic() - sent < BOUND
    assert (done.status, done.output) == ("completed", {"ok": True})


async def test_a_signal_sent_before_the_wait_is_kept_across_processes(
    engines: tuple[Durably, Durably],
) -> None:
    worker, producer = engines
    await worker.stop()  # no worker yet: the signal arrives first
    run = await producer.jobs.approval.trigger({})
    await producer.signal(run.id, "go", "early")
    worker.start()
    done = await producer.wait_for_run(run.id, timeout=BOUND)
    assert (done.status, done.output) == ("completed", "early")


async def test_a_sleep_ends_on_the_workers_own_timer(engines: tuple[Durably, Durably]) -> None:
    _, producer = engines  # the worker runs in the fixture
    run = await producer.jobs.nap.trigger({"seconds": 1.0})
    waiting = await _until_waiting(producer, run.id)
    assert waiting.waiting is not None and waiting.waiting.kind == "sleep"
    done = await producer.wait_for_run(run.id, timeout=BOUND)
    assert done.status == "completed"
    [step] = [s for s in await producer.get_steps(run.id) if s.name == "rest"]
    assert step.completed_at is not None and step.started_at is not None
    assert (step.completed_at - step.started_at).total_seconds() >= 1.0


async def test_a_delayed_run_from_another_process_starts_when_due(
    engines: tuple[Durably, Durably],
) -> None:
    """The trigger's NOTIFY makes the idle worker read its next wake-up: the run's start."""
    _, producer = engines  # the worker runs in the fixture
    run = await producer.jobs.nap.trigger({"seconds": 0}, delay=1.0)
    done = await producer.wait_for_run(run.id, timeout=BOUND)
    assert done.status == "completed"
    assert done.started_at is not None and done.created_at is not None
    assert (done.started_at - done.created_at).total_seconds() >= 1.0


async def _until_waiting(durably: Durably, run_id: str) -> Any:
    async with asyncio.timeout(BOUND):
        while True:
            run = await durably.get_run(run_id)
            if run is not None and run.status == "waiting":
                return run
            await asyncio.sleep(0.01)
