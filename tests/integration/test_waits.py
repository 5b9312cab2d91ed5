"""Durable sleeps and signal waits: waiting status, no lease, wake at the due time, signals."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from durably_web import (
    ConflictError,
    Durably,
    NotFoundError,
    SignalTimeout,
    StepContext,
    ValidationError,
    Waiting,
    define_job,
)
from durably_web.testing import FakeClock
from tests.conftest import MakeDurably
from tests.jobs import recorder

START = datetime(2026, 1, 1, tzinfo=UTC)


@define_job(name="napper", input=dict[str, Any])
async def napper(step: StepContext, payload: dict[str, Any]) -> dict[str, Any]:
    """A step, a sleep of ``payload['nap']`` seconds, a step."""
    await step.run("before", lambda: recorder.record(step.run_id, "before"))
    await step.sleep("nap", payload.get("nap", 30))
    await step.run("after", lambda: recorder.record(step.run_id, "after"))
    return {"ok": True}


@define_job(name="approval", input=dict[str, Any])
async def approval(step: StepContext, payload: dict[str, Any]) -> dict[str, Any]:
    """A step, then a wait for the signal ``approval`` (timeout from the payload)."""
    await step.run("before", lambda: recorder.record(step.run_id, "before"))
    try:
        decision = await step.wait_for_signal("approval", timeout=payload.get("timeout"))
    except SignalTimeout as exc:
        return {"decision": None, "timed_out": str(exc)}
    return {"decision": decision}


JOBS = {"napper": napper, "approval": approval}


def collect(durably: Durably) -> list[Any]:
    events: list[Any] = []
    durably.on("*", events.append)
    return events


async def test_a_sleeping_run_waits_without_a_lease_and_wakes_when_due(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    durably = await make_durably(JOBS)
    events = collect(durably)
    run = await durably.jobs.napper.trigger({"nap": 30})
    await durably.process_until_idle()

    waiting = await durably.get_run(run.id)
    assert waiting is not None and waiting.status == "waiting"
    assert waiting.lease_owner is None and waiting.lease_expires_at is None
    assert waiting.waiting == Waiting("sleep", "nap", START + timedelta(seconds=30))
    assert [r.id for r in await durably.get_runs(status="waiting")] == [run.id]
    wait_events = [e for e in events if e.type == "run:wait"]
    assert [(e.run_id, e.waiting) for e in wait_events] == [(run.id, waiting.waiting)]

    await clock.advance(29)
    assert await durably.process_until_idle() == 0  # not due yet
    await clock.advance(1)
    assert await durably.process_until_idle() == 1
    done = await durably.get_run(run.id)
    assert done is not None and done.status == "completed" and done.waiting is None
    assert recorder.calls[(run.id, "before")] == 1  # replayed, not run again
    assert recorder.calls[(run.id, "after")] == 1


async def test_a_restart_mid_sleep_keeps_the_original_wake_time(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    first = await make_durably(JOBS)
    run = await first.jobs.napper.trigger({"nap": 60})
    await first.process_until_idle()
    await first.stop()
    await clock.advance(40)

    second = await make_durably(JOBS)  # a new engine on the same database
    assert await second.process_until_idle() == 0
    waiting = await second.get_run(run.id)
    assert waiting is not None and waiting.waiting is not None
    assert waiting.waiting.until == START + timedelta(seconds=60)  # not restarted from zero
    await clock.advance(20)
    assert await second.process_until_idle() == 1
    assert (await second.get_run(run.id)).status == "completed"  # type: ignore[union-attr]
    assert recorder.calls[(run.id, "before")] == 1


async def test_a_sleep_whose_time_passed_during_downtime_wakes_at_once(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    first = await make_durably(JOBS)
    run = await first.jobs.napper.trigger({"nap": 10})
    await first.process_until_idle()
    await first.stop()
    await clock.advance(3600)
    second = await make_durably(JOBS)
    assert await second.process_until_idle() == 1
    assert (await second.get_run(run.id)).status == "completed"  # type: ignore[union-attr]


async def test_sleep_until_a_past_time_does_not_wait(make_durably: MakeDurably) -> None:
    @define_job(name="past", input=dict[str, Any])
    async def past(step: StepContext, payload: dict[str, Any]) -> str:
        await step.sleep_until("then", START - timedelta(days=1))
        return "done"

    durably = await make_durably({"past": past})
    events = collect(durably)
    run = await durably.jobs.past.trigger({})
    await durably.process_until_idle()
    assert (await durably.get_run(run.id)).status == "completed"  # type: ignore[union-attr]
    assert "run:wait" not in [e.type for e in events]


@pytest.mark.parametrize(
    ("duration", "message"),
    [
        (-1, "duration of step.sleep('nap')"),
        ("soon", "duration of step.sleep('nap') must be a number of seconds or a timedelta"),
    ],
)
async def test_a_bad_sleep_duration_fails_the_run_naming_it(
    make_durably: MakeDurably, duration: Any, message: str
) -> None:
    durably = await make_durably(JOBS)
    run = await durably.jobs.napper.trigger({"nap": duration})
    await durably.process_until_idle()
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.status == "failed"
    assert message in (failed.error or "")


async def test_a_naive_sleep_until_is_refused() -> None:
    from durably_web.core.waits import time_of

    with pytest.raises(ValidationError, match="timezone-aware"):
        time_of(datetime(2030, 1, 1), "when")


async def test_a_wait_inside_a_step_function_is_refused(make_durably: MakeDurably) -> None:
    @define_job(name="inside", input=dict[str, Any])
    async def inside(step: StepContext, payload: dict[str, Any]) -> None:
        async def nested() -> None:
            await step.sleep("nap", 1)

        await step.run("outer", nested)

    durably = await make_durably({"inside": inside})
    run = await durably.jobs.inside.trigger({})
    await durably.process_until_idle()
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.status == "failed"
    assert "step.sleep cannot be called inside step 'outer'" in (failed.error or "")


# -- signals ------------------------------------------------------------------------------


async def test_a_signal_resumes_a_waiting_run_with_its_payload(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    durably = await make_durably(JOBS)
    events = collect(durably)
    run = await durably.jobs.approval.trigger({"timeout": 3600})
    await durably.process_until_idle()
    waiting = await durably.get_run(run.id)
    assert waiting is not None and waiting.status == "waiting"
    assert waiting.waiting == Waiting("signal", "approval", START + timedelta(hours=1))

    answered = await durably.signal(run.id, "approval", {"approved": True})
    assert answered.id == run.id
    assert await durably.process_until_idle() == 1  # claimable at once: no time passed
    done = await durably.get_run(run.id)
    assert done is not None and done.status == "completed"
    assert done.output == {"decision": {"approved": True}}
    signals = [e for e in events if e.type == "run:signal"]
    assert [(e.name, e.payload) for e in signals] == [("approval", {"approved": True})]
    assert recorder.calls[(run.id, "before")] == 1


async def test_a_signal_sent_before_the_wait_is_kept_for_it(make_durably: MakeDurably) -> None:
    durably = await make_durably(JOBS)
    run = await durably.jobs.approval.trigger({})
    await durably.signal(run.id, "approval", "early")  # the run has not started yet
    await durably.process_until_idle()
    done = await durably.get_run(run.id)
    assert done is not None and done.status == "completed"
    assert done.output == {"decision": "early"}


async def test_a_signal_wait_times_out_with_signal_timeout(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    durably = await make_durably(JOBS)
    run = await durably.jobs.approval.trigger({"timeout": 60})
    await durably.process_until_idle()
    await clock.advance(59)
    assert await durably.process_until_idle() == 0
    await clock.advance(1)
    assert await durably.process_until_idle() == 1
    done = await durably.get_run(run.id)
    assert done is not None and done.status == "completed"
    assert done.output == {
        "decision": None,
        "timed_out": "no signal 'approval' arrived within 60s (by 2026-01-01T00:01:00.000Z)",
    }
    with pytest.raises(ConflictError, match="Cannot signal completed run"):
        await durably.signal(run.id, "approval")


async def test_a_signal_whose_wait_timed_out_is_refused(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    @define_job(name="then-nap", input=dict[str, Any])
    async def then_nap(step: StepContext, payload: dict[str, Any]) -> None:
        try:
            await step.wait_for_signal("approval", timeout=10)
        except SignalTimeout:
            await step.sleep("nap", 100)

    durably = await make_durably({"then_nap": then_nap})
    run = await durably.jobs.then_nap.trigger({})
    await durably.process_until_idle()
    await clock.advance(10)
    await durably.process_until_idle()
    assert (await durably.get_run(run.id)).waiting.kind == "sleep"  # type: ignore[union-attr]
    with pytest.raises(ConflictError, match="no longer waits for signal 'approval'"):
        await durably.signal(run.id, "approval")


async def test_a_second_signal_of_one_name_is_refused(make_durably: MakeDurably) -> None:
    durably = await make_durably(JOBS)
    run = await durably.jobs.approval.trigger({})
    await durably.process_until_idle()
    await durably.signal(run.id, "approval", 1)
    with pytest.raises(ConflictError, match="already has a signal 'approval'"):
        await durably.signal(run.id, "approval", 2)
    await durably.process_until_idle()
    assert (await durably.get_run(run.id)).output == {"decision": 1}  # type: ignore[union-attr]


async def test_signals_to_unknown_and_terminal_runs(make_durably: MakeDurably) -> None:
    durably = await make_durably(JOBS)
    with pytest.raises(NotFoundError):
        await durably.signal("01JZZZZZZZZZZZZZZZZZZZZZZZ", "approval")
    run = await durably.jobs.napper.trigger({"nap": 0})
    await durably.process_until_idle()
    with pytest.raises(ConflictError, match="Cannot signal completed run"):
        await durably.signal(run.id, "approval")
    waiting = await durably.jobs.approval.trigger({})
    await durably.process_until_idle()
    await durably.cancel(waiting.id)
    with pytest.raises(ConflictError, match="Cannot signal cancelled run"):
        await durably.signal(waiting.id, "approval")


async def test_a_signal_payload_that_is_not_json_is_refused_and_nothing_is_kept(
    make_durably: MakeDurably,
) -> None:
    durably = await make_durably(JOBS)
    run = await durably.jobs.approval.trigger({})
    await durably.process_until_idle()
    with pytest.raises(ValidationError, match="payload of signal 'approval'"):
        await durably.signal(run.id, "approval", {1, 2})
    await durably.signal(run.id, "approval", "fine")  # the bad one was not stored
    await durably.process_until_idle()
    assert (await durably.get_run(run.id)).status == "completed"  # type: ignore[union-attr]


async def test_cancel_works_on_a_waiting_run(make_durably: MakeDurably, clock: FakeClock) -> None:
    durably = await make_durably(JOBS)
    run = await durably.jobs.napper.trigger({"nap": 30})
    await durably.process_until_idle()
    cancelled = await durably.cancel(run.id)
    assert cancelled.status == "cancelled"
    await clock.advance(30)
    assert await durably.process_until_idle() == 0
    assert recorder.calls[(run.id, "after")] == 0


async def test_waiting_runs_hold_no_slot(make_durably: MakeDurably, clock: FakeClock) -> None:
    durably = await make_durably(JOBS, max_concurrent_runs=1)
    sleepers = await durably.jobs.napper.batch_trigger([{"nap": 3600}] * 100)
    assert await durably.process_until_idle() == 100
    statuses = {r.status for r in await durably.get_runs(job_name="napper")}
    assert statuses == {"waiting"}
    durably.start()  # the real worker loop, one slot
    quick = await durably.jobs.napper.trigger({"nap": 0})
    done = await durably.wait_for_run(quick.id, timeout=10)
    assert done.status == "completed"
    still = [await durably.get_run(s.id) for s in sleepers]
    assert all(r is not None and r.status == "waiting" for r in still)


async def test_a_wait_ending_between_the_claim_and_the_next_wake_read_is_not_lost(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    """The worker claims (nothing due yet), then reads when to look again: a wait that ends in
    between must not be left to the polling interval (on PostgreSQL under load, due 50 ms
    sleeps waited the bench's 60 s poll in 3 of 6 runs)."""
    durably = await make_durably(JOBS, polling_interval=3600)
    run = await durably.jobs.napper.trigger({"nap": 10})
    assert await durably.process_until_idle() == 1  # now waiting, until START + 10 s
    claim_next = durably.store.claim_next
    jumped: list[float] = []

    async def claim_then_time_passes(*args: Any, **kwargs: Any) -> Any:
        claimed = await claim_next(*args, **kwargs)
        if claimed is None and not jumped:
            clock.block(10)  # the wait ends while the worker is between its two reads
            jumped.append(clock.now())
        return claimed

    durably.store.claim_next = claim_then_time_passes  # type: ignore[method-assign]
    durably.start()
    async with asyncio.timeout(5):  # real seconds: the fake clock moves only in the claim
        done = await durably.wait_for_run(run.id)
    assert done.status == "completed" and jumped
