"""Step retries with backoff, parallel steps (``step.all``) and delayed runs."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from durably_web import Retry, StepContext, ValidationError, Waiting, define_job
from durably_web.core.step import LONGEST_HELD_BACKOFF
from durably_web.testing import FakeClock, settle
from tests.conftest import MakeDurably
from tests.databases import until
from tests.jobs import recorder

START = datetime(2026, 1, 1, tzinfo=UTC)
failures: Counter[str] = Counter()
"""How many more times each named step function fails (tests set it)."""


def flaky(run_id: str, name: str) -> Any:
    recorder.record(run_id, name)
    if failures[name] > 0:
        failures[name] -= 1
        raise RuntimeError(f"{name} failed")
    return name


@define_job(name="retrying", input=dict[str, Any])
async def retrying(step: StepContext, payload: dict[str, Any]) -> Any:
    """One step ``flaky`` with the payload's Retry."""
    policy = Retry(**payload["retry"])
    return await step.run("flaky", lambda: flaky(step.run_id, "flaky"), retry=policy)


@define_job(
    name="defaulted",
    input=dict[str, Any],
    retry=Retry(attempts=3, initial=1.0, jitter=False),
)
async def defaulted(step: StepContext, payload: dict[str, Any]) -> Any:
    """The job's retry= is its steps' default."""
    return await step.run("flaky", lambda: flaky(step.run_id, "flaky"))


@define_job(name="fanout", input=dict[str, Any])
async def fanout(step: StepContext, payload: dict[str, Any]) -> Any:
    """A step, then ``step.all`` of a, b, c, then a last step."""
    await step.run("first", lambda: flaky(step.run_id, "first"))
    parts = await step.all(
        {name: (lambda name=name: flaky(step.run_id, name)) for name in ("a", "b", "c")},
        concurrency=payload.get("concurrency"),
    )
    last = await step.run("last", lambda: flaky(step.run_id, "last"))
    return {"parts": parts, "last": last}


JOBS = {"retrying": retrying, "defaulted": defaulted, "fanout": fanout}


@pytest.fixture(autouse=True)
def no_failures() -> None:
    failures.clear()


def retry_events(events: list[Any]) -> list[tuple[int, float, str]]:
    return [(e.attempt, e.delay, e.error) for e in events if e.type == "step:retry"]


async def backoff_started(events: list[Any], attempt: int) -> None:
    """Wait until the step's ``attempt`` failed and its in-place backoff sleeps on the clock.

    Real time: on PostgreSQL the failed attempt is written over a socket, so ``settle()``
    alone is not enough; once ``step:retry`` is out, the backoff's sleep starts without I/O.
    """
    await until(lambda: len(retry_events(events)) >= attempt)
    await settle()


async def test_short_backoffs_are_waited_in_place_and_grow(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    durably = await make_durably(JOBS)
    events: list[Any] = []
    durably.on("*", events.append)
    failures["flaky"] = 3
    run = await durably.jobs.retrying.trigger(
        {"retry": {"attempts": 5, "initial": 0.1, "factor": 2.0, "jitter": False}}
    )
    task = asyncio.ensure_future(durably.process_one())
    for attempt, delay in enumerate((0.1, 0.2, 0.4), start=1):
        await backoff_started(events, attempt)
        held = await durably.get_run(run.id)
        assert held is not None and held.status == "leased"  # a short backoff keeps the run
        await clock.advance(delay)
    await task
    done = await durably.get_run(run.id)
    assert done is not None and done.status == "completed" and done.output == "flaky"
    assert retry_events(events) == [
        (1, 0.1, "flaky failed"),
        (2, 0.2, "flaky failed"),
        (3, 0.4, "flaky failed"),
    ]
    assert "step:fail" not in [e.type for e in events]
    assert recorder.calls[(run.id, "flaky")] == 4


async def test_the_last_attempt_fails_the_run_with_one_step_fail(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    durably = await make_durably(JOBS)
    events: list[Any] = []
    durably.on("*", events.append)
    failures["flaky"] = 10
    run = await durably.jobs.retrying.trigger(
        {"retry": {"attempts": 3, "initial": 0.5, "jitter": False}}
    )
    task = asyncio.ensure_future(durably.process_one())
    for attempt in (1, 2):
        await backoff_started(events, attempt)
        await clock.advance(1)
    await task
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.status == "failed"
    assert failed.error == "flaky failed"
    assert [e.attempt for e in events if e.type == "step:retry"] == [1, 2]
    assert [e.step_name for e in events if e.type == "step:fail"] == ["flaky"]
    assert recorder.calls[(run.id, "flaky")] == 3


async def test_jittered_delays_stay_in_the_upper_half() -> None:
    policy = Retry(attempts=10, initial=1.0, factor=3.0, max=60.0, jitter=True)
    for attempt in range(1, 10):
        full = min(60.0, 3.0 ** (attempt - 1))
        for _ in range(50):
            assert full / 2 <= policy.delay(attempt) <= full


async def test_a_long_backoff_makes_the_run_wait_and_frees_the_slot(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    durably = await make_durably(JOBS, max_concurrent_runs=1)
    failures["flaky"] = 1
    run = await durably.jobs.retrying.trigger(
        {"retry": {"attempts": 2, "initial": 600, "max": 3600, "jitter": False}}
    )
    await durably.process_until_idle()
    waiting = await durably.get_run(run.id)
    assert waiting is not None and waiting.status == "waiting"
    assert waiting.lease_owner is None
    assert waiting.waiting == Waiting("retry", "flaky", START + timedelta(seconds=600))
    await clock.advance(599)
    assert await durably.process_until_idle() == 0
    await clock.advance(1)
    assert await durably.process_until_idle() == 1
    done = await durably.get_run(run.id)
    assert done is not None and done.status == "completed"
    assert recorder.calls[(run.id, "flaky")] == 2


async def test_a_restart_during_a_long_backoff_keeps_the_attempt_count(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    first = await make_durably(JOBS)
    failures["flaky"] = 2
    run = await first.jobs.retrying.trigger(
        {"retry": {"attempts": 3, "initial": 100, "factor": 2, "jitter": False}}
    )
    await first.process_until_idle()  # attempt 1 failed; attempt 2 at +100 s
    await first.stop()
    await clock.advance(100)
    second = await make_durably(JOBS)
    await second.process_until_idle()  # attempt 2 failed; attempt 3 at +200 s
    waiting = await second.get_run(run.id)
    assert waiting is not None and waiting.waiting is not None
    assert waiting.waiting.until == START + timedelta(seconds=300)
    await clock.advance(200)
    await second.process_until_idle()
    assert (await second.get_run(run.id)).status == "completed"  # type: ignore[union-attr]
    assert recorder.calls[(run.id, "flaky")] == 3


async def test_cancel_during_a_short_backoff_cancels(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    durably = await make_durably(JOBS)
    events: list[Any] = []
    durably.on("*", events.append)
    failures["flaky"] = 5
    run = await durably.jobs.retrying.trigger(
        {"retry": {"attempts": 6, "initial": LONGEST_HELD_BACKOFF, "jitter": False}}
    )
    task = asyncio.ensure_future(durably.process_one())
    await backoff_started(events, 1)
    await durably.cancel(run.id)
    await settle()
    await clock.advance(LONGEST_HELD_BACKOFF)
    await task
    cancelled = await durably.get_run(run.id)
    assert cancelled is not None and cancelled.status == "cancelled"
    assert recorder.calls[(run.id, "flaky")] == 1


async def test_cancel_during_a_long_backoff_cancels(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    durably = await make_durably(JOBS)
    failures["flaky"] = 5
    run = await durably.jobs.retrying.trigger({"retry": {"attempts": 6, "initial": 60}})
    await durably.process_until_idle()
    assert (await durably.cancel(run.id)).status == "cancelled"
    await clock.advance(3600)
    assert await durably.process_until_idle() == 0
    assert recorder.calls[(run.id, "flaky")] == 1


async def test_the_jobs_retry_is_the_default_of_its_steps(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    durably = await make_durably(JOBS)
    events: list[Any] = []
    durably.on("*", events.append)
    failures["flaky"] = 2
    run = await durably.jobs.defaulted.trigger({})
    task = asyncio.ensure_future(durably.process_one())
    for attempt in (1, 2):
        await backoff_started(events, attempt)
        await clock.advance(2)
    await task
    assert (await durably.get_run(run.id)).status == "completed"  # type: ignore[union-attr]
    assert recorder.calls[(run.id, "flaky")] == 3


@pytest.mark.parametrize(
    ("retry", "message"),
    [
        (0, "retry of step 's' must be between 1 and 1000 attempts, got 0"),
        ("3", "retry of step 's'"),
        (Retry, "retry of step 's'"),
    ],
)
async def test_a_bad_retry_fails_the_run_naming_it(
    make_durably: MakeDurably, retry: Any, message: str
) -> None:
    @define_job(name="bad", input=dict[str, Any])
    async def bad(step: StepContext, payload: dict[str, Any]) -> Any:
        return await step.run("s", lambda: 1, retry=retry)

    durably = await make_durably({"bad": bad})
    run = await durably.jobs.bad.trigger({})
    await durably.process_until_idle()
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.status == "failed"
    assert message in (failed.error or "")


def test_retry_values_are_checked() -> None:
    with pytest.raises(ValidationError, match="factor"):
        Retry(attempts=2, factor=0.5)
    with pytest.raises(ValidationError, match="initial"):
        Retry(attempts=2, initial=-1)


# -- step.all -----------------------------------------------------------------------------


async def test_step_all_returns_each_result_with_deterministic_indexes(
    make_durably: MakeDurably,
) -> None:
    durably = await make_durably(JOBS, preserve_steps=True)
    run = await durably.jobs.fanout.trigger({"concurrency": 2})
    await durably.process_until_idle()
    done = await durably.get_run(run.id)
    assert done is not None and done.status == "completed"
    assert done.output == {"parts": {"a": "a", "b": "b", "c": "c"}, "last": "last"}
    steps = {s.name: s.index for s in await durably.get_steps(run.id)}
    assert steps == {"first": 0, "a": 1, "b": 2, "c": 3, "last": 4}


async def test_step_all_resumes_only_the_unfinished_steps(make_durably: MakeDurably) -> None:
    durably = await make_durably(JOBS, preserve_steps=True)
    failures["b"] = 1  # b fails once, without retry: the run fails, a and c checkpointed
    run = await durably.jobs.fanout.trigger({})
    await durably.process_until_idle()
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.status == "failed"
    assert failed.error == "b failed"

    await durably.retry(run.id)
    await durably.process_until_idle()
    done = await durably.get_run(run.id)
    assert done is not None and done.status == "completed"
    assert recorder.calls[(run.id, "first")] == 1
    assert recorder.calls[(run.id, "b")] == 2
    assert recorder.calls[(run.id, "last")] == 1
    completed = [s for s in await durably.get_steps(run.id) if s.status == "completed"]
    assert {s.name: s.index for s in completed} == {"first": 0, "a": 1, "b": 2, "c": 3, "last": 4}


async def test_step_all_refuses_bad_arguments(make_durably: MakeDurably) -> None:
    @define_job(name="bad_all", input=dict[str, Any])
    async def bad_all(step: StepContext, payload: dict[str, Any]) -> Any:
        return await step.all({"x": 3})  # type: ignore[dict-item]

    durably = await make_durably({"bad_all": bad_all})
    run = await durably.jobs.bad_all.trigger({})
    await durably.process_until_idle()
    failed = await durably.get_run(run.id)
    assert failed is not None and failed.status == "failed"
    assert "step 'x' of step.all must be callable, got 3" in (failed.error or "")


# -- delayed runs -------------------------------------------------------------------------


async def test_a_delayed_run_stays_unclaimed_until_its_time(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    durably = await make_durably(JOBS)
    later = await durably.jobs.fanout.trigger({}, delay=60)
    at = await durably.jobs.fanout.trigger({}, run_at=START + timedelta(seconds=120))
    assert later.status == "pending" and later.run_at == START + timedelta(seconds=60)
    assert await durably.process_until_idle() == 0
    await clock.advance(60)
    assert await durably.process_until_idle() == 1
    assert (await durably.get_run(later.id)).status == "completed"  # type: ignore[union-attr]
    assert (await durably.get_run(at.id)).status == "pending"  # type: ignore[union-attr]
    await clock.advance(60)
    assert await durably.process_until_idle() == 1


async def test_delay_and_run_at_are_checked_and_nothing_is_stored(
    make_durably: MakeDurably,
) -> None:
    durably = await make_durably(JOBS)
    with pytest.raises(ValidationError, match="give delay or run_at, not both"):
        await durably.jobs.fanout.trigger({}, delay=1, run_at=START)
    with pytest.raises(ValidationError, match="delay"):
        await durably.jobs.fanout.trigger({}, delay=-5)
    with pytest.raises(ValidationError, match="timezone-aware"):
        await durably.jobs.fanout.trigger({}, run_at=datetime(2030, 1, 1))
    assert await durably.get_runs() == []


async def test_a_delayed_run_of_an_unknown_job_fails_only_after_its_start_and_grace(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    producer = await make_durably(JOBS)
    worker = await make_durably({"retrying": retrying}, unknown_job_grace=60)
    run = await producer.jobs.fanout.trigger({}, delay=600)
    await clock.advance(600)  # it only now became claimable
    await worker.process_until_idle()
    assert (await worker.get_run(run.id)).status == "pending"  # type: ignore[union-attr]
    await clock.advance(61)
    await worker.process_until_idle()
    failed = await worker.get_run(run.id)
    assert failed is not None and failed.status == "failed"
    assert (failed.error or "").startswith("Unknown job: fanout")
