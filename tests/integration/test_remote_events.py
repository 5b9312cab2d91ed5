"""``on(..., remote=True)``: events of runs that other processes change (PostgreSQL's NOTIFY).

Two engines on one database stand for two processes: each has its own pool and listener. The
fake clock never moves, so nothing here is found by polling: only notifications can deliver it.
"""

from __future__ import annotations

import asyncio

import pytest

from durably_web.events import Event
from durably_web.testing import settle
from tests.conftest import MakeDurably
from tests.databases import SQLITE_BACKENDS, until
from tests.jobs import Recorder, echo_job, steps_job


def types(events: list[Event], run_id: str) -> list[str]:
    return [event.type for event in events if event.run_id == run_id]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_remote_handlers_follow_runs_another_process_changes(
    make_durably: MakeDurably, recorder: Recorder
) -> None:
    runner = await make_durably({"steps": steps_job})
    watcher = await make_durably(polling_interval=3600.0)  # no jobs, no worker: a dashboard
    remote: list[Event] = []
    local: list[Event] = []
    watcher.on("*", remote.append, remote=True)
    watcher.on("*", local.append)
    runner_remote: list[Event] = []
    runner_local: list[Event] = []
    runner.on("*", runner_remote.append, remote=True)
    runner.on("*", runner_local.append)

    run = await runner.jobs.steps.trigger({"n": 2, "gate_at": 1, "gate": "g"})
    await until(lambda: types(remote, run.id) == ["run:trigger"])
    task = asyncio.create_task(runner.process_one())
    await asyncio.wait_for(recorder.entered["g"].wait(), 5)
    await until(lambda: types(remote, run.id) == ["run:trigger", "run:start"])
    recorder.gates["g"].set()
    await task
    await until(lambda: types(remote, run.id)[-1:] == ["run:complete"])
    await runner.delete_run(run.id)
    await until(lambda: types(remote, run.id)[-1:] == ["run:delete"])
    assert set(types(remote, run.id)) <= {
        "run:trigger",
        "run:start",
        "run:progress",
        "run:complete",
        "run:delete",
    }

    failing = await runner.jobs.steps.trigger({"n": 1, "fail_at": 0})
    await runner.process_one()
    await until(lambda: types(remote, failing.id)[-1:] == ["run:fail"])
    await runner.retry(failing.id)
    await until(lambda: types(remote, failing.id)[-1:] == ["run:retry"])
    await runner.cancel(failing.id)
    await until(lambda: types(remote, failing.id)[-1:] == ["run:cancel"])

    assert {event.sequence for event in remote} == {0}  # read from the database, not emitted
    assert local == []  # plain handlers get this process's events only
    # The runner's store never hears its own writes back: each of its events arrives once.
    assert [event.type for event in runner_remote] == [event.type for event in runner_local]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_remote_handler_unsubscribed_hears_nothing_more(make_durably: MakeDurably) -> None:
    runner = await make_durably({"echo": echo_job})
    watcher = await make_durably(polling_interval=3600.0)
    seen: list[Event] = []
    control: list[Event] = []
    unsubscribe = watcher.on("run:trigger", seen.append, remote=True)
    watcher.on("run:trigger", control.append, remote=True)
    first = await runner.jobs.echo.trigger({"i": 1})
    await until(lambda: len(seen) == 1 and len(control) == 1)
    unsubscribe()
    unsubscribe()  # idempotent
    second = await runner.jobs.echo.trigger({"i": 2})
    await until(lambda: len(control) == 2)
    assert [event.run_id for event in seen] == [first.id]
    assert [event.run_id for event in control] == [first.id, second.id]


@pytest.mark.parametrize("backend", SQLITE_BACKENDS, indirect=True)
async def test_remote_handlers_on_sqlite_get_this_process_events(
    make_durably: MakeDurably,
) -> None:
    """A store without notifications reports nothing more: the handler works as a plain one."""
    runner = await make_durably({"echo": echo_job})
    watcher = await make_durably()
    mine: list[Event] = []
    theirs: list[Event] = []
    unsubscribe = runner.on("run:complete", mine.append, remote=True)
    watcher.on("*", theirs.append, remote=True)
    run = await runner.jobs.echo.trigger({})
    await runner.process_one()
    await settle()
    assert [event.run_id for event in mine] == [run.id]
    assert theirs == []
    unsubscribe()
    await runner.jobs.echo.trigger({})
    await runner.process_one()
    assert len(mine) == 1
