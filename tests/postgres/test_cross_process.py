"""``subscribe``, ``wait_for_run`` and remote events follow runs another process executes.

The HTTP server and the dashboard may run on a machine with no worker: all they know of a run
comes from PostgreSQL's NOTIFY. Here the watching engine is this test's, which never starts a
worker and polls once an hour, so only a notification can tell it anything within the test's
bounds; the runs are executed by a real ``durably-web worker`` process.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from durably_web import Durably, RunFailed, create_durably
from durably_web.events import Event
from tests.databases import until
from tests.integration import cli_jobs
from tests.postgres.test_cli import worker

BOUND = 30.0
"""Seconds a watcher may take at most: far below the hour its polling would take."""


@pytest.fixture
def worker_process(postgres_url: str) -> Iterator[subprocess.Popen[str]]:
    """A ``durably-web worker`` process on the test's database, stopped with SIGTERM after."""
    process = worker(postgres_url)
    yield process
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr


@pytest.fixture
async def watcher(postgres_url: str) -> AsyncIterator[Durably]:
    """An engine that triggers and watches but executes nothing (no worker, hourly polling)."""
    durably = create_durably(
        postgres_url, jobs={"slow_steps": cli_jobs.slow_steps}, polling_interval=3600
    )
    await durably.migrate()
    yield durably
    assert not durably.worker.running  # nothing ran here
    await durably.close()


async def collect(events: AsyncIterator[Event]) -> list[Event]:
    return [event async for event in events]


async def test_subscribe_wait_and_remote_events_follow_a_run_in_another_process(
    watcher: Durably, worker_process: subprocess.Popen[str]
) -> None:
    remote: list[Event] = []
    watcher.on("*", remote.append, remote=True)
    run = await watcher.jobs.slow_steps.trigger({"steps": 3, "delay": 0.2})
    async with asyncio.timeout(BOUND):
        followed = asyncio.create_task(collect(watcher.subscribe(run.id)))
        done = await watcher.wait_for_run(run.id)
        events = await followed
    assert done.status == "completed" and done.output == {"total": 3, "steps": 3}
    types = [event.type for event in events]
    assert types[-1] == "run:complete", types
    assert "run:start" in types, types  # the other process's lease, seen as it happened
    assert types.count("run:complete") == 1
    # Remote handlers hear each change through a read of their own, which may still be in
    # flight when wait_for_run returns: wait for the run's last read, then check what came.
    await until(lambda: [e.type for e in remote if e.run_id == run.id][-1:] == ["run:complete"])
    mine = [event for event in remote if event.run_id == run.id]
    assert "run:start" in [event.type for event in mine]
    assert [event.type for event in mine].count("run:complete") == 1
    assert worker_process.poll() is None  # the worker process executed it and runs on


async def test_a_failure_in_another_process_reaches_wait_for_run(
    watcher: Durably, worker_process: subprocess.Popen[str]
) -> None:
    run = await watcher.jobs.slow_steps.trigger({"steps": 3, "fail_at": 1})
    async with asyncio.timeout(BOUND):
        with pytest.raises(RunFailed, match="exploded at step 1"):
            await watcher.wait_for_run(run.id)
    failed: Any = await watcher.get_run(run.id)
    assert failed.status == "failed"
