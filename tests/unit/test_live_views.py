"""The live views (durably_web.client.live) on CPython, against a real in-process engine.

``LocalClient`` gives a local Durably the page client's interface, so the views run here as
they run on a page; the engine runs jobs when a test says so (``process_one``), and gates
hold a job mid-run. ``page/live_check.py`` (run here and under MicroPython) covers the
orderings of reads and events a real engine cannot be made to produce on demand.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest
from pydantic import BaseModel

from durably_web import Durably, StepContext, define_job, errors
from durably_web.client import live
from durably_web.client.live.hub import hub_for
from durably_web.client.live.observable import Changed
from durably_web.client.local import LocalClient
from tests.conftest import MakeDurably
from tests.databases import BACKENDS, until
from tests.unit.page import live_check

GATES: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
ENTERED: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
FAILING: set[str] = set()


class WorkInput(BaseModel):
    n: int = 3
    gate_at: int | None = None
    fail_at: int | None = None
    gate: str = "g"


@define_job(name="work", input=WorkInput)
async def work_job(step: StepContext, payload: WorkInput) -> dict[str, int]:
    """``n`` steps, each logging a line and reporting progress; may wait on or fail at one."""
    for i in range(payload.n):

        async def one(i: int = i) -> int:
            if i == payload.gate_at:
                ENTERED[payload.gate].set()
                await GATES[payload.gate].wait()
            if i == payload.fail_at and payload.gate in FAILING:
                raise ValueError(f"boom at {i}")
            return i

        await step.run(f"s{i}", one)
        step.progress(i + 1, payload.n, f"step {i + 1}")
        step.log.info(f"did {i}")
    return {"total": payload.n}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Every store: the views are page code over a client, which must not care which."""
    return str(request.param)


@pytest.fixture(autouse=True)
def _fresh_gates() -> None:
    GATES.clear()
    ENTERED.clear()
    FAILING.clear()


async def engine(make_durably: MakeDurably) -> tuple[Durably, LocalClient]:
    durably = await make_durably({"work": work_job})
    return durably, LocalClient(durably)


async def stored_lines(durably: Durably, run_id: str, count: int) -> list[str]:
    """Wait until the run's first ``count`` log lines are stored (a flush within 50 ms)."""
    async with asyncio.timeout(10):
        while len(logs := await durably.get_logs(run_id)) < count:
            await asyncio.sleep(0.01)
    return [log.message for log in logs]


async def has_pending_run(durably: Durably) -> bool:
    """True once a trigger made in another task is stored: on PostgreSQL it takes round trips
    to the server, more than the few turns of the loop :func:`settle` gives."""
    return bool(await durably.get_runs(status="pending"))


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_job_view_resumes_the_running_run_from_its_stored_state(
    make_durably: MakeDurably,
) -> None:
    durably, client = await engine(make_durably)
    run = await durably.jobs.work.trigger({"n": 4, "gate_at": 2})
    worker = asyncio.create_task(durably.process_one())
    await ENTERED["g"].wait()
    await stored_lines(durably, run.id, 2)
    changes: list[Any] = []
    job: Any = live.job(client, "work", on_change=lambda view: changes.append(view.progress))
    await job.loaded()
    assert job.current_run_id == run.id
    assert job.is_running and job.status == "leased"
    assert (job.progress.current, job.progress.total) == (2, 4)  # stored: no event came yet
    assert changes[-1] is job.progress
    GATES["g"].set()
    await worker
    await settle()
    assert job.is_completed and job.output.total == 4
    assert [line.message for line in job.logs] == [f"did {i}" for i in range(4)]  # each once


async def test_a_job_view_follows_triggers_from_anywhere_and_its_own(
    make_durably: MakeDurably,
) -> None:
    durably, client = await engine(make_durably)
    job = live.job(client, "work")
    fixed = live.job(client, "work", follow_latest=False)
    await job.loaded()
    assert job.current_run_id is None and job.status is None
    elsewhere = await durably.jobs.work.trigger({"n": 1})
    assert job.current_run_id == elsewhere.id and job.is_pending
    assert fixed.current_run_id is None
    mine = await job.trigger({"n": 2}, labels={"who": "me"})
    assert job.current_run_id == mine.id and mine.labels.who == "me"
    await fixed.trigger({"n": 1})
    await durably.process_until_idle()
    await settle()
    assert fixed.is_completed
    with pytest.raises(errors.ValidationError, match="n"):
        await job.trigger({"n": "many"})
    assert job.current_run_id == fixed.current_run_id  # it followed fixed's trigger last
    assert not job.triggering
    job.reset()
    assert job.current_run_id is None and job.progress is None


async def test_trigger_and_wait_returns_the_run_or_raises_its_failure(
    make_durably: MakeDurably,
) -> None:
    durably, client = await engine(make_durably)
    job = live.job(client, "work")
    waiting = asyncio.create_task(job.trigger_and_wait({"n": 2}, timeout=30))
    await until(lambda: has_pending_run(durably))  # stored (on PostgreSQL: round trips)
    await durably.process_until_idle()
    done = await waiting
    assert done.status == "completed" and done.output.total == 2 and job.is_completed
    FAILING.add("g")
    failing = asyncio.create_task(job.trigger_and_wait({"n": 2, "fail_at": 1}, timeout=30))
    await until(lambda: has_pending_run(durably))  # stored (on PostgreSQL: round trips)
    await durably.process_until_idle()
    with pytest.raises(errors.RunFailed, match="boom at 1"):
        await failing
    await settle()
    assert job.is_failed and "boom at 1" in (job.error or "")


async def test_a_run_view_calls_back_through_failure_retry_and_completion(
    make_durably: MakeDurably,
) -> None:
    durably, client = await engine(make_durably)
    FAILING.add("g")
    run = await durably.jobs.work.trigger({"n": 3, "fail_at": 1})
    calls: list[str] = []
    view: Any = live.run(
        client,
        run.id,
        on_start=lambda v: calls.append("start " + v.status),
        on_complete=lambda v: calls.append(f"complete {v.output.total}"),
        on_fail=lambda v: calls.append("fail"),
    )
    await view.loaded()
    assert calls == ["start pending"]
    await durably.process_until_idle()
    await settle()
    assert view.is_failed and calls == ["start pending", "fail"]
    FAILING.clear()
    await durably.retry(run.id)
    assert view.is_pending and view.error is None
    await durably.process_until_idle()
    await settle()
    assert calls == ["start pending", "fail", "start pending", "complete 3"], calls
    assert view.progress.current == 3 and view.output.total == 3
    await durably.delete_run(run.id)
    assert view.deleted


async def test_a_logs_view_shows_stored_lines_then_live_ones_capped(
    make_durably: MakeDurably,
) -> None:
    durably, client = await engine(
        make_durably,
    )
    run = await durably.jobs.work.trigger({"n": 5, "gate_at": 3})
    worker = asyncio.create_task(durably.process_one())
    await ENTERED["g"].wait()
    assert await stored_lines(durably, run.id, 3) == ["did 0", "did 1", "did 2"]
    logs = live.logs(client, run.id, max_logs=2)
    await logs.loaded()
    assert [line.message for line in logs] == ["did 1", "did 2"]
    GATES["g"].set()
    await worker
    await settle()
    assert [line.message for line in logs] == ["did 3", "did 4"]
    logs.clear()
    assert len(logs) == 0


async def test_a_runs_view_pages_over_120_runs_and_filters(make_durably: MakeDurably) -> None:
    durably, client = await engine(make_durably)
    runs = await durably.jobs.work.batch_trigger([{"n": 1} for _ in range(120)])
    newest_first = [run.id for run in reversed(runs)]
    view = live.runs(client, job_name="work", page_size=25)
    await view.loaded()
    shown: list[str] = []
    while True:
        assert view.page == len(shown) // 25
        shown += [run.id for run in view]
        if not view.has_more:
            break
        await view.next_page()
    assert shown == newest_first and view.page == 4 and len(view) == 20
    await view.prev_page()
    assert [run.id for run in view] == newest_first[75:100]
    await view.go_to_page(1)
    assert [run.id for run in view] == newest_first[25:50]
    await durably.cancel(runs[0].id)
    await view.set_filter(job_name="work", status="cancelled")
    assert view.page == 0 and [run.id for run in view] == [runs[0].id]
    assert not view.has_more


async def test_a_runs_view_is_live(make_durably: MakeDurably) -> None:
    durably, client = await engine(make_durably)
    view = live.runs(client, page_size=5)
    await view.loaded()
    assert len(view) == 0
    run = await durably.jobs.work.trigger({"n": 3, "gate_at": 2})
    await view.loaded()
    assert [r.id for r in view] == [run.id] and view.runs[0].status == "pending"
    worker = asyncio.create_task(durably.process_one())
    await ENTERED["g"].wait()
    await view.loaded()
    assert view.runs[0].status == "leased" and view.runs[0].progress.current == 2
    GATES["g"].set()
    await worker
    await settle()
    await view.loaded()
    assert view.runs[0].status == "completed"
    await durably.delete_run(run.id)
    await view.loaded()
    assert len(view) == 0


async def test_run_actions_with_their_pending_and_error_state(make_durably: MakeDurably) -> None:
    durably, client = await engine(make_durably)
    FAILING.add("g")
    failed = await durably.jobs.work.trigger({"n": 2, "fail_at": 0})
    await durably.process_until_idle()
    actions = live.actions(client)
    states: list[bool] = []
    actions.changed.add_listener(lambda view: states.append(view.retry.pending))
    assert (await actions.retry(failed.id)).status == "pending"
    assert states == [True, False]
    with pytest.raises(errors.ConflictError):
        await actions.delete_run(failed.id)  # pending: not finished
    assert isinstance(actions.delete_run.error_for(failed.id), errors.ConflictError)
    assert actions.delete_run.error is not None and not actions.delete_run.pending
    assert (await actions.cancel(failed.id)).status == "cancelled"
    assert (await actions.get_run(failed.id)).status == "cancelled"
    copy = await actions.retrigger(failed.id)
    assert copy.id != failed.id and copy.input.fail_at == 0
    assert (await actions.delete_run(failed.id)).id == failed.id
    assert actions.delete_run.error_for(failed.id) is None  # the newer call succeeded
    FAILING.clear()
    await durably.process_until_idle()
    assert [step.name for step in await actions.get_steps(copy.id)] in ([], ["s0", "s1"])
    with pytest.raises(ValueError, match="no run action 'nope'"):
        actions.action("nope")


async def test_views_share_one_listener_per_event_type(make_durably: MakeDurably) -> None:
    durably, client = await engine(make_durably)
    registered: list[str] = []
    on = client.on

    def counting_on(event_type: str, handler: Any) -> Any:
        registered.append(event_type)
        return on(event_type, handler)

    client.on = counting_on  # type: ignore[method-assign]
    views = [live.run(client, None), live.run(client, None), live.runs(client)]
    assert sorted(registered) == sorted(set(registered))  # each type asked once
    assert "run:wait" in registered  # this engine has durable waits: the views follow them
    assert "run:wait" not in hub_for(client).unsupported
    for view in views:
        view.close()
    assert not hub_for(client)._off  # the last view gone: every listener removed
    assert not durably._bus._handlers.get("run:progress")


async def test_a_job_is_found_by_key_or_name(make_durably: MakeDurably) -> None:
    _, client = await engine(make_durably)
    assert live.job(client, "work", auto_resume=False).job_name == "work"
    with pytest.raises(ValueError, match=r"no job 'nope' .* knows: work"):
        live.job(client, "nope")


def test_status_words() -> None:
    assert [live.status_text(s) for s in ("pending", "leased", "completed", None)] == [
        "queued",
        "running",
        "completed",
        "",
    ]
    assert live.status_text("failed", "ValueError: x\n  at line 3") == "failed: ValueError: x"
    waiting = {"kind": "signal", "name": "approval", "until": None}
    assert live.status_text("waiting", waiting=waiting) == "waiting for signal 'approval'"
    assert live.status_text("paused-by-a-newer-engine") == "paused-by-a-newer-engine"


async def test_changed_reports_a_failing_listener_and_calls_the_others(
    capsys: pytest.CaptureFixture[str],
) -> None:
    changed = Changed()
    got: list[Any] = []

    def broken(value: Any) -> None:
        raise RuntimeError("listener bug")

    async def later(value: Any) -> None:
        got.append(("async", value))

    changed.add_listener(broken)
    changed.add_listener(got.append)
    changed.add_listener(later)
    changed.trigger(1)
    await settle()
    assert got == [1, ("async", 1)]
    assert "listener bug" in capsys.readouterr().out
    changed.remove_listener(broken, later)
    changed.trigger(2)
    assert got[-1] == 2
    with pytest.raises(ValueError, match="callable"):
        changed.add_listener(3)  # type: ignore[arg-type]


async def test_the_page_scenarios_on_cpython() -> None:
    await live_check.main()  # the same checks run under MicroPython too
