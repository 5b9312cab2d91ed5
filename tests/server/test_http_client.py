"""The CPython client against the real server: the same interface as a local Durably."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from durably_web import ConflictError, NotFoundError, RunCancelled, TriggerItem, ValidationError
from durably_web.http_client import HttpClient, connect_http
from tests.jobs import Recorder
from tests.server.conftest import Served


@pytest.fixture
async def remote(served: Served) -> AsyncIterator[HttpClient]:
    client = await connect_http(served.url)
    yield client
    await client.close()


async def test_trigger_and_wait_with_progress(remote: HttpClient, recorder: Recorder) -> None:
    progress: list[int] = []
    waiting = asyncio.create_task(
        remote.jobs.burst.trigger_and_wait(
            {"n": 5, "wait": 1}, timeout=10, on_progress=lambda p: progress.append(p.current)
        )
    )
    await asyncio.sleep(0.3)
    recorder.gates["burst"].set()
    done = await waiting
    # the same JobResult as a local engine's trigger_and_wait
    assert (done.run.status, done.output, done.disposition) == ("completed", {"n": 5}, "created")
    assert progress and progress[-1] == 5
    steps = await remote.get_steps(done.id)
    assert [(s.index, s.name) for s in steps] == [(0, "wait"), (1, "burst")]
    finished = await remote.jobs.steps.trigger_and_wait({"n": 2}, timeout=10)
    assert [log.message for log in await remote.get_logs(finished.id)] == ["finished"]


async def test_errors_come_back_as_the_same_classes(remote: HttpClient) -> None:
    with pytest.raises(ValidationError, match="n: Input should be"):
        await remote.jobs.steps.trigger({"n": "many"})
    with pytest.raises(NotFoundError, match="Job not found: ghost"):
        await remote.job("ghost").trigger({})
    assert await remote.get_run("missing") is None
    done = await remote.jobs.echo.trigger_and_wait({}, timeout=10)
    with pytest.raises(ConflictError, match="Cannot cancel completed run"):
        await remote.cancel(done.id)
    with pytest.raises(AttributeError, match="no job registered under 'nope'"):
        _ = remote.jobs.nope


async def test_batch_trigger_is_all_or_nothing(remote: HttpClient, served: Served) -> None:
    with pytest.raises(ValidationError, match="at index 1"):
        await remote.jobs.echo.batch_trigger([{"a": 1}, TriggerItem({}, labels={"bad key": "x"})])
    assert await served.durably.get_runs() == []
    runs = await remote.jobs.echo.batch_trigger(
        [{"a": 1}, TriggerItem({"b": 2}, labels={"k": "v"})]
    )
    assert [r.disposition for r in runs] == ["created", "created"]
    assert runs[1].labels == {"k": "v"}


async def test_manage_runs(remote: HttpClient, recorder: Recorder) -> None:
    run = await remote.jobs.steps.trigger({"n": 2, "gate_at": 0}, labels={"org": "x"})
    await asyncio.wait_for(recorder.entered["default"].wait(), 10)
    assert (await remote.cancel(run.id)).status == "cancelled"
    with pytest.raises(RunCancelled):
        await remote.wait_for_run(run.id, timeout=10)
    recorder.gates["default"].set()
    again = await remote.retry(run.id)
    assert again.id == run.id and again.status != "cancelled"
    done = await remote.wait_for_run(run.id, timeout=10)
    assert done.status == "completed"
    fresh = await remote.retrigger(run.id)
    assert fresh.id != run.id and fresh.labels == {"org": "x"}
    assert [r.id for r in await remote.get_runs(labels={"org": "x"}, limit=1)] == [fresh.id]
    await remote.wait_for_run(fresh.id, timeout=10)
    assert (await remote.delete_run(run.id)).id == run.id
    assert await remote.get_run(run.id) is None


async def test_subscribe_and_on(remote: HttpClient) -> None:
    seen: list[Any] = []
    arrived = asyncio.Event()

    def handler(event: Any) -> None:
        seen.append(event)
        if event.type == "run:complete":
            arrived.set()

    unsubscribe = remote.on("*", handler)
    await asyncio.sleep(0.2)
    run = await remote.jobs.echo.trigger({"z": 1})
    events = [event.type async for event in remote.subscribe(run.id)]
    assert events[-1] == "run:complete"
    await asyncio.wait_for(arrived.wait(), 10)
    unsubscribe()
    assert {"run:trigger", "run:start", "run:complete"} <= {e.type for e in seen}
    assert all(e.run_id == run.id for e in seen)


async def test_page_connect_with_a_url_gives_the_http_client_on_cpython(served: Served) -> None:
    # The page's `connect(url=...)` (durably_web.client) is this client where there is no
    # browser, so a script calls the server the way a PyScript page does.
    from durably_web import DurablyError
    from durably_web.client import connect

    durably = await connect(url=served.url)
    assert isinstance(durably, HttpClient)
    try:
        done = await durably.jobs.echo.trigger_and_wait({"a": 1}, timeout=10)
        assert (done.run.status, done.output) == ("completed", {"a": 1})
    finally:
        await durably.close()
    with pytest.raises(DurablyError, match="browser Web Worker"):
        await connect(jobs="./jobs.py")
