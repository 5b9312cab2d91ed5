"""Managing runs: listing, cancelling, deleting, purging and retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from durably_web import ConflictError, NotFoundError, ValidationError
from durably_web.testing import FakeClock
from tests.conftest import MakeDurably
from tests.databases import until
from tests.jobs import echo_job, steps_job


async def test_get_runs_filters_newest_first(make_durably: MakeDurably, clock: FakeClock) -> None:
    durably = await make_durably({"steps": steps_job, "echo": echo_job})
    a = await durably.jobs.steps.trigger({"n": 1}, labels={"org": "a"})
    await clock.advance(1)
    b = await durably.jobs.echo.trigger({}, labels={"org": "b", "env": "dev"})
    await clock.advance(1)
    c = await durably.jobs.echo.trigger({}, labels={"org": "b"})
    await durably.cancel(c.id)
    assert [r.id for r in await durably.get_runs()] == [c.id, b.id, a.id]
    assert [r.id for r in await durably.get_runs(status="cancelled")] == [c.id]
    assert [r.id for r in await durably.get_runs(status=["pending"])] == [b.id, a.id]
    assert [r.id for r in await durably.get_runs(job_name="echo")] == [c.id, b.id]
    assert [r.id for r in await durably.get_runs(labels={"org": "b", "env": "dev"})] == [b.id]
    assert [r.id for r in await durably.get_runs(limit=1, offset=1)] == [b.id]
    assert [r.id for r in await durably.jobs.echo.get_runs(status="pending")] == [b.id]


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"status": "running"}, "Invalid status: running. Must be one of"),
        ({"status": [1]}, "status must be a string or a list of strings"),
        ({"job_name": 3}, "job_name must be a string or a list"),
        ({"labels": {"a b": "c"}}, "invalid label key 'a b' in filter"),
        ({"limit": -1}, "limit must be an integer of at least 0"),
        ({"offset": 1.5}, "offset must be an integer"),
    ],
)
async def test_get_runs_rejects_bad_filters(
    make_durably: MakeDurably, filters: dict[str, object], message: str
) -> None:
    durably = await make_durably()
    with pytest.raises(ValidationError, match=message):
        await durably.get_runs(**filters)  # type: ignore[arg-type]


async def test_cancel_pending_run_is_never_executed(make_durably: MakeDurably) -> None:
    durably = await make_durably({"echo": echo_job})
    events: list[Any] = []
    durably.on("run:cancel", events.append)
    run = await durably.jobs.echo.trigger({})
    cancelled = await durably.cancel(run.id)
    assert cancelled.status == "cancelled"
    assert [e.run_id for e in events] == [run.id]
    assert await durably.process_one() is None
    with pytest.raises(ConflictError, match=f"Cannot cancel already cancelled run: {run.id}"):
        await durably.cancel(run.id)
    with pytest.raises(NotFoundError, match="Run not found: missing"):
        await durably.cancel("missing")
    with pytest.raises(ValidationError, match="run_id must be a non-empty string"):
        await durably.cancel("")


async def test_delete_run_only_when_terminal(make_durably: MakeDurably) -> None:
    durably = await make_durably({"steps": steps_job}, preserve_steps=True)
    run = await durably.jobs.steps.trigger({"n": 2})
    with pytest.raises(ConflictError, match=f"Cannot delete pending run: {run.id}"):
        await durably.delete_run(run.id)
    await durably.process_one()
    assert len(await durably.get_steps(run.id)) == 2
    events: list[Any] = []
    durably.on("run:delete", events.append)
    deleted = await durably.delete_run(run.id)
    assert deleted.id == run.id and events[0].run_id == run.id
    assert await durably.get_run(run.id) is None
    assert await durably.get_steps(run.id) == []
    assert await durably.get_logs(run.id) == []
    with pytest.raises(NotFoundError):
        await durably.delete_run(run.id)


async def test_purge_runs_accepts_durations_and_datetimes(
    make_durably: MakeDurably, clock: FakeClock
) -> None:
    durably = await make_durably({"echo": echo_job})
    old = await durably.jobs.echo.trigger({})
    await durably.process_one()
    await clock.advance(3 * 86400)
    recent = await durably.jobs.echo.trigger({})
    await durably.process_one()
    assert await durably.purge_runs("7d") == 0
    assert await durably.purge_runs(timedelta(days=2)) == 1
    assert [r.id for r in await durably.get_runs()] == [recent.id]
    future = datetime.fromtimestamp(clock.now() + 1, tz=UTC)
    assert await durably.purge_runs(future, limit=10) == 1
    assert old.id != recent.id
    for bad in ("7 days", datetime(2020, 1, 1), 5):
        with pytest.raises(ValidationError, match="older_than"):
            await durably.purge_runs(bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="limit must be an integer of at least 1"):
        await durably.purge_runs("1d", limit=0)


async def test_retain_runs_purges_when_idle(make_durably: MakeDurably, clock: FakeClock) -> None:
    durably = await make_durably({"echo": echo_job}, retain_runs="1h", polling_interval=30.0)
    run = await durably.jobs.echo.trigger({})
    durably.start()
    await durably.wait_for_run(run.id)
    await until(lambda: clock.sleepers > 0)  # the worker idles until its next poll
    await clock.advance(1800)
    assert await durably.get_run(run.id) is not None
    await until(lambda: clock.sleepers > 0)
    await clock.advance(1800 + 120)
    # A store with real I/O may have let the worker sleep through part of that jump: one more
    # idle minute makes maintenance due again, past the retention cutoff.
    await until(lambda: clock.sleepers > 0)
    await clock.advance(60)

    async def purged() -> bool:
        return await durably.get_run(run.id) is None

    await until(purged)
