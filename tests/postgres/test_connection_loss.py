"""PostgreSQL restarted or unreachable under a working engine: back off, reconnect, resume.

Real server, real clock: the server is restarted (``pg_ctl restart -m fast``) or stopped for a
while in the middle of a run, and the run must finish with every step executed once, while an
idle worker must still hear of new work through NOTIFY once the server is back.
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from typing import Any

import pytest
from pydantic import BaseModel

from durably_web import StepContext, StorageError, ValidationError, create_durably, define_job
from durably_web.storage.connection import DatabaseBusy
from tests.databases import until
from tests.postgres.server import PostgresServer

executions: Counter[tuple[str, str]] = Counter()


class SlowInput(BaseModel):
    steps: int
    sleep: float


@define_job(name="slow", input=SlowInput)
async def slow_job(step: StepContext, payload: SlowInput) -> dict[str, int]:
    """``steps`` steps, each sleeping ``sleep`` seconds; counts every execution."""
    for index in range(payload.steps):
        name = f"s{index:03d}"

        async def work(name: str = name) -> int:
            executions[(step.run_id, name)] += 1
            await asyncio.sleep(payload.sleep)
            return 1

        await step.run(name, work)
    return {"steps": payload.steps}


@pytest.fixture(autouse=True)
def fresh_counts() -> None:
    executions.clear()


def done_steps(run_id: str) -> int:
    return sum(1 for (rid, _), n in executions.items() if rid == run_id and n)


async def test_run_survives_a_server_restart(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    worker = create_durably(postgres_url, jobs={"slow": slow_job}, polling_interval=3600.0)
    errors: list[Any] = []
    worker.on("worker:error", errors.append)
    await worker.init()
    try:
        run = await worker.jobs.slow.trigger({"steps": 40, "sleep": 0.02})
        await until(lambda: done_steps(run.id) >= 5)
        await asyncio.to_thread(postgres_server.restart)
        assert done_steps(run.id) < 40, "the run finished before the restart: nothing tested"
        done = await worker.wait_for_run(run.id, timeout=60)
    finally:
        await worker.close(timeout=5)
    assert done.status == "completed" and done.output == {"steps": 40}
    assert set(executions.values()) == {1}, "a step ran twice"
    assert len(executions) == 40
    # Every write the restart interrupted was retried on a new connection: the lease held.
    assert done.lease_generation == 1, (done, errors)


async def test_outage_mid_run_then_an_idle_worker_hears_notify_again(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    worker = create_durably(postgres_url, jobs={"slow": slow_job}, polling_interval=3600.0)
    writer = create_durably(postgres_url, jobs={"slow": slow_job})  # another process
    await worker.init()
    await writer.migrate()
    try:
        first = await writer.jobs.slow.trigger({"steps": 30, "sleep": 0.03})
        await until(lambda: done_steps(first.id) >= 3)
        await asyncio.to_thread(postgres_server.down)
        await asyncio.sleep(2.0)  # the run's next writes wait; nothing is lost
        await asyncio.to_thread(postgres_server.up)
        assert done_steps(first.id) < 30, "the run finished before the outage: nothing tested"
        finished = await writer.wait_for_run(first.id, timeout=60)
        assert finished.status == "completed"
        # Only NOTIFY can start this within the bound: the worker polls once an hour.
        second = await writer.jobs.slow.trigger({"steps": 2, "sleep": 0.0})
        started = await writer.wait_for_run(second.id, timeout=20)
        assert started.status == "completed"
    finally:
        await worker.close(timeout=5)
        await writer.close()
    assert set(executions.values()) == {1}, "a step ran twice"
    assert len(executions) == 32


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_server_fails_init_with_a_clear_error() -> None:
    durably = create_durably(f"postgresql://someone:s3cret@127.0.0.1:{closed_port()}/nowhere")
    with pytest.raises(
        StorageError, match=r"cannot connect to PostgreSQL at someone@127\.0\.0\.1"
    ) as info:
        await asyncio.wait_for(durably.init(), 10)
    assert "s3cret" not in str(info.value)
    # A server never reached is no outage to wait out: init() says so at once.
    assert not isinstance(info.value, DatabaseBusy)
    await durably.close()


async def test_wrong_password_is_named(postgres_server: PostgresServer) -> None:
    wrong = postgres_server.url.replace("durably:", "durably:wrong", 1)
    durably = create_durably(wrong)
    with pytest.raises(StorageError, match="password authentication failed") as info:
        await asyncio.wait_for(durably.init(), 10)
    assert "wrong" not in str(info.value).split("password authentication")[0]
    assert not isinstance(info.value, DatabaseBusy)  # no outage to wait out: a clear refusal
    await durably.close()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("pool_max_size=0", "pool_min_size and pool_max_size must be whole numbers"),
        ("pool_min_size=5&pool_max_size=2", "1 <= pool_min_size <= pool_max_size"),
        ("pool_max_size=ten", "pool_max_size must be a number, got 'ten'"),
        ("retry_for=0", "retry_for must be a positive number of seconds"),
        ("bogus=1", "invalid PostgreSQL URL"),
    ],
)
def test_bad_url_options_are_refused_at_creation(query: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        create_durably(f"postgresql://u:p@127.0.0.1:5432/db?{query}")
