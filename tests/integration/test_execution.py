"""Executing runs: steps, replay, outputs, failures, indexes, cancellation, leases."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from durably_web import (
    AbortSignal,
    ConflictError,
    Durably,
    LeaseLost,
    NotFoundError,
    RunCancelled,
    RunFailed,
    StepContext,
    define_job,
)
from durably_web.clock import SystemClock
from durably_web.core import execution
from durably_web.options import CheckpointMode
from durably_web.testing import FakeClock
from tests.conftest import MakeDurably
from tests.databases import TestDatabase, until
from tests.jobs import Recorder, steps_job


async def test_run_completes_with_output_progress_and_events(make_durably: MakeDurably) -> None:
    durably = await make_durably({"steps": steps_job}, preserve_steps=True)
    types: list[str] = []
    durably.on("*", lambda e: types.append(e.type))
    run = await durably.jobs.steps.trigger({"n": 2})
    final = await durably.process_one()
    assert final is not None
    assert (final.id, final.status, final.output) == (run.id, "completed", {"total": 1})
    assert final.progress is not None
    assert final.progress.to_wire() == {"current": 2, "total": 2, "message": "step 2"}
    assert (final.current_step_index, final.completed_step_count) == (2, 2)
    assert types == [
        "run:trigger",
        "run:start",
        "step:start",
        "step:complete",
        "run:progress",
        "step:start",
        "step:complete",
        "run:progress",
        "log:write",
        "run:complete",
    ]
    steps = await durably.get_steps(run.id)
    assert [(s.name, s.index, s.output) for s in steps] == [("step-0", 0, 0), ("step-1", 1, 1)]
    [log] = await durably.get_logs(run.id)
    assert (log.level, log.message, log.data, log.step_name) == (
        "info",
        "finished",
        {"total": 1},
        None,
    )


async def test_steps_and_logs_removed_after_completion_by_default(
    make_durably: MakeDurably,
) -> None:
    durably = await make_durably({"steps": steps_job})
    run = await durably.jobs.steps.trigger({"n": 2})
    await durably.process_one()
    assert await durably.get_steps(run.id) == []
    assert await durably.get_logs(run.id) == []


async def test_step_functions_sync_async_and_signal(make_durably: MakeDurably) -> None:
    seen: list[Any] = []

    @define_job(name="kinds", input=dict)
    async def kinds(step: StepContext, payload: dict[str, Any]) -> list[Any]:
        async def async_fn() -> str:
            return "async"

        def with_signal(signal: AbortSignal) -> bool:
            seen.append(signal)
            return signal.aborted

        class Holder:
            def method(self) -> str:
                return "method"

        return [
            await step.run("sync", lambda: "sync"),
            await step.run("async", async_fn),
            await step.run("signal", with_signal),
            await step.run("default", lambda x=1: x),
            await step.run("method", Holder().method),
            await step.run("tuple", lambda: (1, 2)),
            await step.run("none", lambda: None),
        ]

    durably = await make_durably({"kinds": kinds})
    run = await durably.jobs.kinds.trigger({})
    final = await durably.process_one()
    assert final is not None and final.status == "completed", final
    assert final.output == ["sync", "async", False, 1, "method", [1, 2], None]
    assert isinstance(seen[0], AbortSignal)
    assert run.id == final.id


async def test_unserialisable_step_result_fails_run_naming_step(make_durably: MakeDurably) -> None:
    @define_job(name="bad-result", input=dict)
    async def bad(step: StepContext, payload: dict[str, Any]) -> None:
        await step.run("make-set", lambda: {1, 2})

    durably = await make_durably({"bad": bad}, preserve_steps=True)
    fails: list[Any] = []
    durably.on("run:fail", fails.append)
    run = await durably.jobs.bad.trigger({})
    final = await durably.process_one()
    assert final is not None and final.status == "failed"
    assert final.error is not None
    assert "result of step 'make-set': set is not JSON-serialisable" in final.error
    assert fails[0].failed_step_name == "make-set"
    [step] = await durably.get_steps(run.id)
    assert (step.status, step.name) == ("failed", "make-set")


async def test_output_validated_against_output_type(make_durably: MakeDurably) -> None:
    class Out(BaseModel):
        count: int

    @define_job(name="bad-output", input=dict, output=Out)
    async def bad(step: StepContext, payload: dict[str, Any]) -> Any:
        return {"count": "lots"}

    durably = await make_durably({"bad": bad})
    fails: list[Any] = []
    durably.on("run:fail", fails.append)
    await durably.jobs.bad.trigger({})
    final = await durably.process_one()
    assert final is not None and final.status == "failed"
    assert final.error is not None and final.error.startswith("Invalid output: count:")
    assert fails[0].failed_step_name == "unknown"


async def test_failing_step_fails_run_and_records_step(
    make_durably: MakeDurably, recorder: Recorder
) -> None:
    durably = await make_durably({"steps": steps_job}, preserve_steps=True)
    run = await durably.jobs.steps.trigger({"n": 4, "fail_at": 2})
    final = await durably.process_one()
    assert final is not None
    assert (final.status, final.error) == ("failed", "boom at 2")
    steps = await durably.get_steps(run.id)
    assert [(s.name, s.status) for s in steps] == [
        ("step-0", "completed"),
        ("step-1", "completed"),
        ("step-2", "failed"),
    ]
    assert steps[2].error == "boom at 2"
    assert (final.current_step_index, final.completed_step_count) == (2, 2)
    with pytest.raises(RunFailed, match="boom at 2"):
        await durably.wait_for_run(run.id)


async def test_retry_in_place_replays_completed_steps(
    make_durably: MakeDurably, recorder: Recorder
) -> None:
    durably = await make_durably({"steps": steps_job}, preserve_steps=True)
    run = await durably.jobs.steps.trigger({"n": 4, "fail_at": 2})
    await durably.process_one()
    recorder.healed = True  # the cause of the failure is fixed
    events: list[Any] = []
    durably.on("run:retry", events.append)
    retried = await durably.retry(run.id)
    assert (retried.id, retried.status, retried.error) == (run.id, "pending", None)
    assert len(events) == 1
    final = await durably.process_one()
    assert final is not None
    assert (final.id, final.status, final.output) == (run.id, "completed", {"total": 6})
    assert [recorder.calls[(run.id, f"step-{i}")] for i in range(4)] == [1, 1, 2, 1]
    steps = await durably.get_steps(run.id)
    assert [(s.index, s.status) for s in steps] == [
        (0, "completed"),
        (1, "completed"),
        (2, "failed"),
        (2, "completed"),
        (3, "completed"),
    ]


async def test_retry_and_retrigger_conflicts(make_durably: MakeDurably) -> None:
    durably = await make_durably({"steps": steps_job})
    run = await durably.jobs.steps.trigger({"n": 1})
    with pytest.raises(ConflictError, match="Cannot retry pending run"):
        await durably.retry(run.id)
    with pytest.raises(ConflictError, match=f"Cannot retrigger pending run: {run.id}"):
        await durably.retrigger(run.id)
    with pytest.raises(NotFoundError):
        await durably.retry("missing")


async def test_retrigger_starts_a_new_run_from_scratch(
    make_durably: MakeDurably, recorder: Recorder
) -> None:
    durably = await make_durably({"steps": steps_job})
    run = await durably.jobs.steps.trigger({"n": 2}, labels={"org": "a"}, concurrency_key="k")
    await durably.process_one()
    new = await durably.retrigger(run.id)
    assert new.id != run.id
    assert (new.input, new.labels, new.concurrency_key) == (run.input, run.labels, "k")
    await durably.process_one()
    assert recorder.calls[(new.id, "step-0")] == 1
    assert recorder.calls[(run.id, "step-0")] == 1


async def test_resume_after_lost_worker_replays_and_keeps_indexes(
    make_durably: MakeDurably, recorder: Recorder, clock: FakeClock
) -> None:
    first = await make_durably(
        {"steps": steps_job}, preserve_steps=True, lease_duration=10.0, lease_renew_interval=2.0
    )
    run = await first.jobs.steps.trigger({"n": 5, "gate_at": 3, "gate": "g"})
    task = asyncio.create_task(first.process_one())
    await recorder.entered["g"].wait()
    # the first worker "dies": its lease is never renewed again
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    stuck = await first.get_run(run.id)
    assert stuck is not None and stuck.status == "pending"  # released when its task was cancelled
    recorder.gates["g"].set()
    second = await make_durably({"steps": steps_job}, preserve_steps=True)
    final = await second.process_one()
    assert final is not None and final.status == "completed"
    for i in range(3):
        assert recorder.calls[(run.id, f"step-{i}")] == 1  # replayed, not re-executed
    assert recorder.calls[(run.id, "step-3")] == 2  # the interrupted step ran again
    steps = await second.get_steps(run.id)
    assert [(s.name, s.index) for s in steps] == [(f"step-{i}", i) for i in range(5)]
    assert (final.current_step_index, final.completed_step_count) == (5, 5)
    assert final.lease_generation == 2


async def test_expired_lease_reclaimed_by_another_engine(
    make_durably: MakeDurably, recorder: Recorder, clock: FakeClock
) -> None:
    options = {"preserve_steps": True, "lease_duration": 10.0, "lease_renew_interval": 2.0}
    stale = await make_durably({"steps": steps_job}, **options)
    run = await stale.jobs.steps.trigger({"n": 4, "gate_at": 2, "gate": "g"})
    stale_task = asyncio.create_task(stale.process_one())
    await recorder.entered["g"].wait()
    stale.worker._renew_task.cancel()  # type: ignore[union-attr]  # the stale worker stalls
    await clock.advance(11)
    fresh = await make_durably({"steps": steps_job}, **options)
    stale_gate = recorder.gates["g"]
    recorder.gates["g"] = asyncio.Event()  # the new attempt's step 2 must not block
    recorder.gates["g"].set()
    final = await fresh.process_one()
    assert final is not None and final.status == "completed"
    # the stale worker wakes up: its checkpoint is refused, it writes nothing
    stale_gate.set()
    stale_final = await stale_task
    assert stale_final is not None and stale_final.status == "completed"
    after = await fresh.get_run(run.id)
    assert after is not None and (after.status, after.output) == ("completed", {"total": 6})
    steps = await fresh.get_steps(run.id)
    assert [s.index for s in steps] == [0, 1, 2, 3]


async def test_cancel_running_job_stops_at_next_step(
    make_durably: MakeDurably, recorder: Recorder
) -> None:
    durably = await make_durably({"steps": steps_job}, preserve_steps=True)
    events: list[str] = []
    durably.on("*", lambda e: events.append(e.type))
    run = await durably.jobs.steps.trigger({"n": 5, "gate_at": 1, "gate": "c"})
    task = asyncio.create_task(durably.process_one())
    await recorder.entered["c"].wait()
    cancelled = await durably.cancel(run.id)
    assert cancelled.status == "cancelled"
    execution_signal = durably.worker.active[run.id].signal
    assert (execution_signal.aborted, execution_signal.reason) == (True, "cancelled")
    recorder.gates["c"].set()
    final = await task
    assert final is not None and final.status == "cancelled"
    assert recorder.calls[(run.id, "step-2")] == 0
    assert [s.name for s in await durably.get_steps(run.id)] == ["step-0"]
    assert events.count("run:cancel") == 1
    assert "step:cancel" in events
    assert "run:fail" not in events and "run:complete" not in events
    with pytest.raises(RunCancelled):
        await durably.wait_for_run(run.id)


async def test_cancel_from_another_engine_seen_at_next_step(
    make_durably: MakeDurably, recorder: Recorder
) -> None:
    runner = await make_durably({"steps": steps_job})
    other = await make_durably()
    run = await runner.jobs.steps.trigger({"n": 5, "gate_at": 1, "gate": "x"})
    task = asyncio.create_task(runner.process_one())
    await recorder.entered["x"].wait()
    await other.cancel(run.id)
    recorder.gates["x"].set()
    final = await task
    assert final is not None and final.status == "cancelled"
    assert recorder.calls[(run.id, "step-2")] == 0


def _count_lease_checks(durably: Durably, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the run id of every ``check_lease`` the store is asked for (the list grows)."""
    checks: list[str] = []
    check_lease = durably.store.check_lease

    async def counted(run_id: str, generation: int) -> None:
        checks.append(run_id)
        await check_lease(run_id, generation)

    monkeypatch.setattr(durably.store, "check_lease", counted)
    return checks


def _clock_of(kind: str) -> Any:
    """The engine's clock for a lease-check test: the system clock's readings stand in for
    the checks' own (Execution.real_time), any other clock's do not (time.monotonic is read)."""
    return SystemClock() if kind == "system" else FakeClock()


@pytest.mark.parametrize("clock_kind", ["system", "fake"])
async def test_committed_checkpoint_counts_as_a_lease_check(
    make_durably: MakeDurably, monkeypatch: pytest.MonkeyPatch, clock_kind: str
) -> None:
    # Steps of 0.3 s under a 0.5 s check interval: without the checkpoints counting, step 2
    # (0.6 s after the first check) reads the run again; with them, only step 0 does.
    monkeypatch.setattr(execution, "LEASE_CHECK_EVERY", 0.5)

    @define_job(name="paced", input=dict)
    async def paced(step: StepContext, _: Any) -> None:
        for i in range(4):
            await step.run(f"step-{i}", lambda: asyncio.sleep(0.3))

    durably = await make_durably({"paced": paced}, clock=_clock_of(clock_kind))
    checks = _count_lease_checks(durably, monkeypatch)
    run = await durably.jobs.paced.trigger({})
    final = await durably.process_one()
    assert final is not None and final.status == "completed"
    assert checks == [run.id]


@pytest.mark.parametrize("checkpoint", ["each", "batched"])
@pytest.mark.parametrize("clock_kind", ["system", "fake"])
async def test_a_step_after_a_pause_checks_the_lease_again(
    make_durably: MakeDurably,
    monkeypatch: pytest.MonkeyPatch,
    clock_kind: str,
    checkpoint: CheckpointMode,
) -> None:
    # 0.6 s without a step under a 0.5 s check interval: the next step reads the run again
    # (its start time is the check's reading on the system clock), the one right after not.
    monkeypatch.setattr(execution, "LEASE_CHECK_EVERY", 0.5)

    # The job's own mode: on PostgreSQL (no batched mode) it runs in the default one.
    @define_job(name="pausing", input=dict, checkpoint=checkpoint)
    async def pausing(step: StepContext, _: Any) -> None:
        await step.run("before", lambda: 1)
        await asyncio.sleep(0.6)
        await step.run("after", lambda: 2)
        await step.run("right-after", lambda: 3)

    durably = await make_durably({"pausing": pausing}, clock=_clock_of(clock_kind))
    checks = _count_lease_checks(durably, monkeypatch)
    run = await durably.jobs.pausing.trigger({})
    final = await durably.process_one()
    assert final is not None and final.status == "completed"
    assert checks == [run.id, run.id]


async def test_a_first_lease_reads_nothing_to_replay_and_a_later_one_replays(
    make_durably: MakeDurably, clock: FakeClock, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a lease holder writes steps, logs and retries: generation 1 has none to read."""
    durably = await make_durably({"steps": steps_job})
    reads: list[str] = []

    def counting(name: str) -> Any:
        read = getattr(durably.store, name)

        def counted(run_id: str) -> Any:
            reads.append(name)
            return read(run_id)

        return counted

    for name in ("completed_steps", "replayed_logs", "pending_retries"):
        monkeypatch.setattr(durably.store, name, counting(name))
    fresh = await durably.jobs.steps.trigger({"n": 2})
    done = await durably.process_one()
    assert done is not None and done.id == fresh.id and done.status == "completed"
    assert reads == []

    # A first lease that wrote step-0 and was lost: the next lease replays it.
    run = await durably.jobs.steps.trigger({"n": 2})
    lost = await durably.store.claim_next("gone", clock.now(), 1.0, ["steps"])
    assert lost is not None and lost.id == run.id and lost.lease_generation == 1
    now = clock.now()
    await durably.store.checkpoint_step(
        run.id, 1, name="step-0", index=0, output_json="0", started_at=now, now=now
    )
    await clock.advance(2.0)
    resumed = await durably.process_one()
    assert resumed is not None and resumed.status == "completed"
    assert resumed.lease_generation == 2
    assert sorted(reads) == ["completed_steps", "pending_retries", "replayed_logs"]
    assert recorder.calls[(run.id, "step-0")] == 0 and recorder.calls[(run.id, "step-1")] == 1


async def test_throw_if_aborted_and_is_aborted(make_durably: MakeDurably) -> None:
    observed: list[bool] = []

    @define_job(name="watcher", input=dict)
    async def watcher(step: StepContext, payload: dict[str, Any]) -> None:
        observed.append(step.is_aborted())
        step.throw_if_aborted()
        await step.signal.wait()
        observed.append(step.is_aborted())
        step.throw_if_aborted()

    durably = await make_durably({"w": watcher})
    run = await durably.jobs.w.trigger({})
    task = asyncio.create_task(durably.process_one())
    async with asyncio.timeout(5):
        while not observed:  # the job is waiting on its signal (claiming may do real I/O)
            await asyncio.sleep(0.001)
    await durably.cancel(run.id)
    final = await task
    assert observed == [False, True]
    assert final is not None and final.status == "cancelled"


async def test_lease_renewal_extends_and_emits(
    make_durably: MakeDurably, recorder: Recorder, clock: FakeClock
) -> None:
    durably = await make_durably(
        {"steps": steps_job}, lease_duration=10.0, lease_renew_interval=3.0
    )
    renewed: list[Any] = []
    durably.on("run:lease-renewed", renewed.append)
    run = await durably.jobs.steps.trigger({"n": 2, "gate_at": 0, "gate": "r"})
    task = asyncio.create_task(durably.process_one())
    await recorder.entered["r"].wait()
    before = await durably.get_run(run.id)
    await clock.advance(3)
    await until(lambda: len(renewed) == 1)
    await clock.advance(3)
    await until(lambda: len(renewed) == 2)
    after = await durably.get_run(run.id)
    assert len(renewed) == 2
    assert before is not None and after is not None
    assert after.lease_expires_at is not None and before.lease_expires_at is not None
    assert (after.lease_expires_at - before.lease_expires_at).total_seconds() == pytest.approx(6)
    assert renewed[-1].lease_owner == durably.worker_id
    recorder.gates["r"].set()
    await task


async def test_refused_renewal_aborts_with_lease_lost(
    make_durably: MakeDurably, database: TestDatabase, recorder: Recorder, clock: FakeClock
) -> None:
    durably = await make_durably(
        {"steps": steps_job}, lease_duration=10.0, lease_renew_interval=3.0
    )
    errors: list[Any] = []
    durably.on("worker:error", errors.append)
    run = await durably.jobs.steps.trigger({"n": 3, "gate_at": 0, "gate": "l"})
    task = asyncio.create_task(durably.process_one())
    await recorder.entered["l"].wait()
    # another engine takes the run over behind our back (generation bump)
    database.query(
        f"UPDATE durably_runs SET lease_generation = lease_generation + 1 WHERE id = '{run.id}'"
    )
    await clock.advance(3)
    signal = durably.worker.active[run.id].signal
    await until(lambda: signal.aborted)
    assert signal.reason == "lease-lost"
    assert errors and errors[0].context == "lease-renewal"
    recorder.gates["l"].set()
    await task
    assert recorder.calls[(run.id, "step-1")] == 0


async def test_job_that_raises_lease_lost_writes_nothing(make_durably: MakeDurably) -> None:
    @define_job(name="loses", input=dict)
    async def loses(step: StepContext, payload: dict[str, Any]) -> None:
        raise LeaseLost("gone")

    durably = await make_durably({"loses": loses})
    run = await durably.jobs.loses.trigger({})
    final = await durably.process_one()
    assert final is not None and final.status == "leased" and final.id == run.id


async def test_replay_does_not_repeat_progress_or_logs(
    make_durably: MakeDurably, recorder: Recorder
) -> None:
    durably = await make_durably({"steps": steps_job}, preserve_steps=True)
    run = await durably.jobs.steps.trigger({"n": 4, "fail_at": 2})
    await durably.process_one()
    recorder.healed = True
    await durably.retry(run.id)
    progress: list[int] = []
    durably.on("run:progress", lambda e: progress.append(e.progress.current))
    final = await durably.process_one()
    assert final is not None and final.status == "completed"
    # steps 0 and 1 replay silently (no jump back to 1); progress resumes at the stored 2
    assert progress == [2, 3, 4]
    logs = await durably.get_logs(run.id)
    assert [log.message for log in logs] == ["finished"]


async def test_process_one_can_target_a_run(make_durably: MakeDurably) -> None:
    durably = await make_durably({"steps": steps_job})
    older = await durably.jobs.steps.trigger({"n": 1})
    mine = await durably.jobs.steps.trigger({"n": 2})
    final = await durably.process_one(mine.id)
    assert final is not None and final.id == mine.id and final.status == "completed"
    assert (await durably.get_run(older.id)).status == "pending"  # type: ignore[union-attr]
    assert await durably.process_one(mine.id) is None  # finished: not claimable
    assert await durably.process_one("missing") is None
