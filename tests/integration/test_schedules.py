"""Cron schedules with a fake clock: one run per tick, catch-up after downtime, DST, errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from durably_web import Durably, NotFoundError, StepContext, ValidationError, define_job
from durably_web.core.schedules import missed_ticks
from durably_web.testing import FakeClock
from tests.conftest import MakeDurably

START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


@define_job(name="nightly", input=dict[str, Any])
async def nightly(step: StepContext, payload: dict[str, Any]) -> dict[str, Any]:
    return dict(await step.run("work", lambda: payload))


JOBS = {"nightly": nightly}


async def keys(durably: Durably) -> list[str]:
    return sorted(str(r.idempotency_key) for r in await durably.get_runs(job_name="nightly"))


async def test_one_run_per_tick(make_durably: MakeDurably, clock: FakeClock) -> None:
    durably = await make_durably(JOBS)
    events: list[Any] = []
    durably.on("schedule:tick", events.append)
    stored = await durably.schedule("hourly", "nightly", "0 * * * *", {"n": 1})
    assert stored.next_tick == datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert stored.last_tick is None
    await clock.advance(3599)
    assert await durably.process_until_idle() == 0
    await clock.advance(1)
    assert await durably.process_until_idle() == 1
    assert await durably.process_until_idle() == 0  # the tick is not triggered twice
    await clock.advance(3600)
    assert await durably.process_until_idle() == 1
    assert await keys(durably) == [
        "schedule:hourly:2026-01-01T01:00:00.000Z",
        "schedule:hourly:2026-01-01T02:00:00.000Z",
    ]
    assert [(e.schedule, e.tick) for e in events] == [
        ("hourly", "2026-01-01T01:00:00.000Z"),
        ("hourly", "2026-01-01T02:00:00.000Z"),
    ]
    runs = await durably.get_runs(job_name="nightly")
    assert {r.status for r in runs} == {"completed"}
    assert runs[0].output == {"n": 1}
    (listed,) = await durably.get_schedules()
    assert listed.next_tick == datetime(2026, 1, 1, 3, tzinfo=UTC)
    assert listed.last_tick == datetime(2026, 1, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("catch_up", "expected"),
    [
        ("latest", ["2026-01-01T05:00:00.000Z"]),
        ("all", [f"2026-01-01T0{h}:00:00.000Z" for h in range(1, 6)]),
        ("none", []),
    ],
)
async def test_catch_up_after_downtime(
    make_durably: MakeDurably, clock: FakeClock, catch_up: str, expected: list[str]
) -> None:
    first = await make_durably(JOBS)
    await first.schedule("hourly", "nightly", "0 * * * *", catch_up=catch_up)
    await first.stop()
    await clock.advance(5 * 3600 + 600)  # five ticks missed, the last 10 minutes ago
    second = await make_durably(JOBS)
    # a worker declares its schedules at every start: unchanged, it keeps the missed ticks
    await second.schedule("hourly", "nightly", "0 * * * *", catch_up=catch_up)
    await second.process_until_idle()
    assert await keys(second) == [f"schedule:hourly:{tick}" for tick in expected]
    (schedule,) = await second.get_schedules()
    assert schedule.next_tick == datetime(2026, 1, 1, 6, tzinfo=UTC)


async def test_a_changed_schedule_starts_from_its_next_tick(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    durably = await make_durably(JOBS)
    await durably.schedule("s", "nightly", "0 * * * *")
    await clock.advance(7200 + 60)
    await durably.schedule("s", "nightly", "30 * * * *")  # changed: missed ticks dropped
    assert await durably.process_until_idle() == 0
    (schedule,) = await durably.get_schedules()
    assert schedule.next_tick == datetime(2026, 1, 1, 2, 30, tzinfo=UTC)


async def test_ticks_follow_the_time_zone_across_dst(
    make_durably: MakeDurably, connect: Any
) -> None:
    clock = FakeClock(datetime(2026, 3, 28, 12, tzinfo=UTC).timestamp())
    durably = await make_durably(JOBS, clock=clock)
    await durably.schedule("berlin", "nightly", "30 2 * * *", timezone="Europe/Berlin")
    for _ in range(3):
        await clock.advance(86_400)
        await durably.process_until_idle()
    assert await keys(durably) == [
        "schedule:berlin:2026-03-29T01:00:00.000Z",  # 02:30 does not exist: 03:00 CEST
        "schedule:berlin:2026-03-30T00:30:00.000Z",  # 02:30 CEST
        "schedule:berlin:2026-03-31T00:30:00.000Z",
    ]


def test_missed_ticks_reach_back_only_as_far_as_needed() -> None:
    year = 365 * 86_400.0
    last = missed_ticks("* * * * *", "UTC", START, START + year, 1)
    assert last == [START + year]
    assert len(missed_ticks("* * * * *", "UTC", START, START + year, 1000)) == 1000
    assert missed_ticks("0 0 1 1 *", "UTC", START, START + 3 * year, 5) == [
        datetime(y, 1, 1, tzinfo=UTC).timestamp() for y in (2026, 2027, 2028)
    ]


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("s", "ghost", "* * * * *"), NotFoundError, "Job not found: ghost"),
        (
            ("s", "nightly", "61 * * * *"),
            ValidationError,
            "cron '61 * * * *' is not valid: Bad minute",
        ),
        (("s", "nightly", "* * *"), ValidationError, "cron '* * *' is not valid"),
        (("s", "nightly", 5), ValidationError, "cron must be a string"),
        (("", "nightly", "* * * * *"), ValidationError, "schedule name must be"),
    ],
)
async def test_bad_schedules_are_refused_and_nothing_is_stored(
    make_durably: MakeDurably, args: tuple[Any, ...], error: type[Exception], message: str
) -> None:
    durably = await make_durably(JOBS)
    with pytest.raises(error, match=re.escape(message)):
        await durably.schedule(*args)
    assert await durably.get_schedules() == []


async def test_bad_timezone_catch_up_and_input_are_refused(make_durably: MakeDurably) -> None:
    durably = await make_durably(JOBS)
    with pytest.raises(ValidationError, match="unknown timezone 'Mars/Olympus'"):
        await durably.schedule("s", "nightly", "* * * * *", timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="catch_up must be one of"):
        await durably.schedule("s", "nightly", "* * * * *", catch_up="some")
    with pytest.raises(ValidationError, match="Invalid input for job 'nightly'"):
        await durably.schedule("s", "nightly", "* * * * *", input=[1])
    assert await durably.get_schedules() == []


async def test_unschedule(make_durably: MakeDurably, clock: FakeClock) -> None:
    durably = await make_durably(JOBS)
    await durably.schedule("s", "nightly", "* * * * *")
    await durably.unschedule("s")
    await clock.advance(120)
    assert await durably.process_until_idle() == 0
    with pytest.raises(NotFoundError, match="Schedule not found: s"):
        await durably.unschedule("s")


async def test_a_worker_without_the_job_leaves_its_schedule_alone(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    owner = await make_durably(JOBS)
    await owner.schedule("s", "nightly", "* * * * *")
    other = await make_durably({})
    await clock.advance(60)
    await other.process_until_idle()
    assert await other.get_runs() == []
    await owner.process_until_idle()
    assert len(await owner.get_runs()) == 1
