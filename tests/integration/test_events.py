"""Events, handlers, subscriptions and waiting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from durably_web import NotFoundError, RunCancelled, ValidationError
from durably_web.events import Event, RunProgress
from durably_web.models import Progress
from durably_web.testing import FakeClock, settle
from tests.conftest import MakeDurably
from tests.databases import until
from tests.jobs import Recorder, StepsOutput, echo_job, steps_job


async def test_handlers_sync_async_star_and_unsubscribe(make_durably: MakeDurably) -> None:
    durably = await make_durably({"echo": echo_job})
    sync_seen: list[str] = []
    async_seen: list[str] = []
    star_seen: list[str] = []

    async def async_handler(event: Event) -> None:
        await asyncio.sleep(0)
        async_seen.append(event.type)

    durably.on("run:complete", lambda e: sync_seen.append(e.type))
    durably.on("run:leased", async_handler)  # upstream's name for run:start
    unsubscribe = durably.on("*", lambda e: star_seen.append(e.type))
    await durably.jobs.echo.trigger({})
    unsubscribe()
    await durably.process_one()
    await settle()
    assert sync_seen == ["run:complete"]
    assert async_seen == ["run:start"]
    assert star_seen == ["run:trigger"]


async def test_handler_errors_go_to_worker_error_and_others_still_run(
    make_durably: MakeDurably,
) -> None:
    durably = await make_durably({"echo": echo_job})
    errors: list[Event] = []
    after: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("handler bug")

    async def broken_async(event: Event) -> None:
        raise KeyError("async bug")

    durably.on("worker:error", errors.append)
    durably.on("run:trigger", broken)
    durably.on("run:trigger", broken_async)
    durably.on("run:trigger", lambda e: after.append(e.run_id))
    run = await durably.jobs.echo.trigger({})
    await settle()
    assert after == [run.id]
    assert [e.context for e in errors] == ["event-handler:run:trigger"] * 2  # type: ignore[attr-defined]
    assert "RuntimeError: handler bug" in errors[0].error  # type: ignore[attr-defined]
    assert "KeyError" in errors[1].error  # type: ignore[attr-defined]
    assert errors[0].run_id == run.id
    assert (await durably.process_one()).status == "completed"  # type: ignore[union-attr]


async def test_unknown_event_type_rejected(make_durably: MakeDurably) -> None:
    durably = await make_durably()
    with pytest.raises(ValidationError, match="unknown event type 'run:started'"):
        durably.on("run:started", print)


async def test_sequence_increases_across_all_events(make_durably: MakeDurably) -> None:
    durably = await make_durably({"steps": steps_job})
    sequences: list[int] = []
    durably.on("*", lambda e: sequences.append(e.sequence))
    await durably.jobs.steps.trigger({"n": 2})
    await durably.process_one()
    assert sequences == sorted(sequences)
    assert sequences == list(range(1, len(sequences) + 1))


async def test_subscribe_starts_with_current_state_and_ends(
    make_durably: MakeDurably, recorder: Recorder
) -> None:
    durably = await make_durably({"steps": steps_job})
    run = await durably.jobs.steps.trigger({"n": 3, "gate_at": 1, "gate": "sub"})
    task = asyncio.create_task(durably.process_one())
    await recorder.entered["sub"].wait()
    seen: list[Event] = []

    async def follow() -> None:
        async for event in durably.subscribe(run.id):
            seen.append(event)

    follower = asyncio.create_task(follow())
    await until(lambda: len(seen) >= 2)
    assert [e.type for e in seen] == ["run:start", "run:progress"]
    assert seen[0].sequence == 0
    assert isinstance(seen[1], RunProgress) and seen[1].progress == Progress(1, 3, "step 1")
    recorder.gates["sub"].set()
    await task
    await asyncio.wait_for(follower, 5)
    assert seen[-1].type == "run:complete"
    assert [e.type for e in seen[2:]] == [
        "step:complete",
        "run:progress",
        "step:start",
        "step:complete",
        "run:progress",
        "log:write",
        "run:complete",
    ]


async def test_subscribe_to_finished_and_missing_runs(make_durably: MakeDurably) -> None:
    durably = await make_durably({"echo": echo_job})
    run = await durably.jobs.echo.trigger({"a": 1})
    await durably.process_one()
    events = [e async for e in durably.subscribe(run.id)]
    assert [(e.type, e.output) for e in events] == [("run:complete", {"a": 1})]  # type: ignore[attr-defined]
    with pytest.raises(NotFoundError):
        async for _ in durably.subscribe("missing"):
            pass


async def test_subscribe_follows_run_of_another_process(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    runner = await make_durably({"echo": echo_job})
    watcher = await make_durably(polling_interval=1.0)
    run = await runner.jobs.echo.trigger({"b": 2})
    seen: list[str] = []

    async def follow() -> None:
        async for event in watcher.subscribe(run.id):
            seen.append(event.type)

    follower = asyncio.create_task(follow())
    await until(lambda: clock.sleepers > 0)  # the watcher waits for its next poll
    assert seen == ["run:trigger"]
    await runner.process_one()
    await clock.advance(1)
    await asyncio.wait_for(follower, 5)
    # Polling (SQLite) sees the outcome; NOTIFY (PostgreSQL) may also see the claim in between.
    assert seen[0] == "run:trigger" and seen[-1] == "run:complete"
    assert set(seen[1:-1]) <= {"run:start"}


async def test_wait_for_run_callbacks(make_durably: MakeDurably) -> None:
    durably = await make_durably({"steps": steps_job})
    durably.start()
    progress: list[Any] = []
    logs: list[Any] = []

    async def on_log(event: Any) -> None:
        logs.append(event.message)

    result = await durably.jobs.steps.trigger_and_wait(
        {"n": 3}, timeout=10, on_progress=progress.append, on_log=on_log
    )
    assert isinstance(result.output, StepsOutput) and result.output.total == 3
    assert result.disposition == "created"
    assert [p.current for p in progress] == [1, 2, 3]
    assert logs == ["finished"]


async def test_wait_for_run_timeout_uses_engine_clock(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    durably = await make_durably({"echo": echo_job})
    run = await durably.jobs.echo.trigger({})
    waiter = asyncio.create_task(durably.wait_for_run(run.id, timeout=5))
    await until(lambda: clock.sleepers > 0)  # the waiter sleeps on the engine's clock
    assert not waiter.done()
    await clock.advance(5)
    with pytest.raises(TimeoutError, match="did not finish within 5s"):
        await waiter
    with pytest.raises(ValidationError, match="timeout must be greater than 0"):
        await durably.wait_for_run(run.id, timeout=-1)


async def test_wait_for_cancelled_and_deleted_runs(make_durably: MakeDurably) -> None:
    durably = await make_durably({"echo": echo_job})
    run = await durably.jobs.echo.trigger({})
    waiter = asyncio.create_task(durably.wait_for_run(run.id))
    await settle()
    await durably.cancel(run.id)
    with pytest.raises(RunCancelled, match=run.id):
        await waiter
    waiter = asyncio.create_task(durably.wait_for_run(run.id))
    with pytest.raises(RunCancelled):
        await waiter
    await durably.delete_run(run.id)
    with pytest.raises(NotFoundError):
        await durably.wait_for_run(run.id)


async def test_subscription_can_be_closed_early(make_durably: MakeDurably) -> None:
    durably = await make_durably({"echo": echo_job})
    run = await durably.jobs.echo.trigger({})
    events = durably.subscribe(run.id)
    first = await events.__anext__()
    assert first.type == "run:trigger"
    await events.aclose()
    assert not durably._bus.wants("run:complete")  # the subscription's listener is gone
