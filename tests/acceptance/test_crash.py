"""Crash tests with real processes: SIGKILL a worker mid-run, start another, check the outcome.

``crash_worker.py`` is the worker process. Its jobs commit one side-effect row per step
execution through their own connection, so the database shows every time a step function
ran, including the executions whose checkpoint a kill prevented. From those rows the tests
check that no completed step ever ran again, that a resumed run restarts at its first
unfinished step, and that leases and concurrency keys keep executions apart across processes.

Each test runs with the engine on SQLite and on PostgreSQL (side effects stay in a SQLite
file: to the engine they are the outside world).

Set ``CRASH_SEED`` to replay a run's random kill points.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from durably_web import Durably, Run
from tests.acceptance.crash_harness import (
    Effect,
    Interval,
    WorkerProcess,
    double_executions,
    open_engine,
    overlapping,
    read_effects,
    reaped,
    scalar,
    seeded_rng,
)
from tests.acceptance.crash_worker import OUTCOME_KILL, step_name, step_value

DEADLINE = 120.0
"""Seconds a crash test may take before it gives up (it normally needs a fraction)."""


@dataclass(frozen=True)
class Engine:
    """Where the engine keeps its runs: the side-effect SQLite file, or PostgreSQL."""

    url: str | None

    @property
    def worker_args(self) -> tuple[str, ...]:
        return () if self.url is None else ("--engine", self.url)


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each crash test runs with the engine on SQLite and on PostgreSQL."""
    if request.param == "postgres":
        return Engine(str(request.getfixturevalue("postgres_url")))
    return Engine(None)


def resume_gaps(effects: Iterable[Effect], index_of: dict[str, int]) -> list[str]:
    """Explain every place a run did not continue from its first unfinished step.

    Per run, in execution order, each step executed is the one after the previous, or the
    previous one again when the worker changed (the step in flight at a kill re-runs).
    """
    by_run: dict[str, list[Effect]] = defaultdict(list)
    for effect in sorted(effects, key=lambda e: e.id):
        by_run[effect.run_id].append(effect)
    problems = []
    for run_id, executions in by_run.items():
        previous: Effect | None = None
        for effect in executions:
            index = index_of[effect.step]
            if previous is None:
                allowed = {0}
            elif previous.pid == effect.pid:
                allowed = {index_of[previous.step] + 1}
            else:
                allowed = {index_of[previous.step], index_of[previous.step] + 1}
            if index not in allowed:
                problems.append(
                    f"{run_id}: effect #{effect.id} ran {effect.step} (worker {effect.pid}) "
                    f"after {previous.step if previous else 'nothing'}"
                )
            previous = effect
        if len(problems) > 20:
            break
    return problems


def test_double_execution_checks_reject_what_they_should() -> None:
    """The checks themselves: a legal crash history passes, each kind of repeat is caught."""
    index_of = {"s0": 0, "s1": 1, "s2": 2}
    legal = [
        Effect(1, "r", "s0", 10),
        Effect(2, "r", "s1", 10),  # in flight when 10 was killed
        Effect(3, "r", "s1", 11),
        Effect(4, "r", "s2", 11),
    ]
    assert double_executions(legal, {10}, kills=1) == []
    assert resume_gaps(legal, index_of) == []
    completed_then_rerun = [*legal[:2], Effect(3, "r", "s2", 10), Effect(4, "r", "s1", 11)]
    assert double_executions(completed_then_rerun, {10}, kills=1)
    assert resume_gaps(completed_then_rerun, index_of)
    not_killed = [Effect(1, "r", "s0", 10), Effect(2, "r", "s0", 11)]
    assert double_executions(not_killed, set(), kills=0)
    lost_lease = [Effect(1, "r", "s0", 10), Effect(2, "r", "s0", 11)]  # 10 starved, 11 took over
    assert double_executions(lost_lease, set(), kills=1) == []
    same_worker_twice = [Effect(1, "r", "s0", 10), Effect(2, "r", "s0", 10)]
    assert resume_gaps(same_worker_twice, {"s0": 0})
    skipped = [Effect(1, "r", "s0", 10), Effect(2, "r", "s2", 11)]
    assert resume_gaps(skipped, index_of)
    too_many = [Effect(i, "r", "s0", 10 + i) for i in range(1, 4)]
    assert double_executions(too_many, {11, 12, 13}, kills=1)


# -- test 1: SIGKILL at random points, resume in a new process -------------------------------

RESUME_RUNS = 3
RESUME_STEPS = 400
STEP_SLEEP = 0.008
TARGET_KILLS = 30


def executions_before_kill(rng: random.Random, remaining_steps: int, kills_left: int) -> int:
    """How many step executions the next worker gets before it is killed: random, 1 or more.

    Counted in executions rather than seconds so the kills spread over the whole job, through
    the start and end of every run, whatever the machine's speed: on average each kill still
    to come, and the final worker, get an equal share of the remaining steps.
    """
    share = remaining_steps / (kills_left + 1)
    return rng.randint(1, max(1, round(2 * share)))


async def wait_for_executions(
    effects: sqlite3.Connection, worker: WorkerProcess, count: int, deadline: float
) -> bool:
    """Wait until ``worker`` committed ``count`` side effects (True) or exited (False)."""
    while worker.running:
        done = scalar(effects, "SELECT COUNT(*) FROM side_effects WHERE pid = ?", (worker.pid,))
        if done >= count:
            return True
        if time.monotonic() > deadline:
            raise AssertionError(f"worker {worker.pid} made no progress:\n{worker.output()}")
        await asyncio.sleep(0.002)
    return False


@pytest.mark.slow
async def test_sigkill_resume(engine: Engine, tmp_path: Path) -> None:
    rng, seed = seeded_rng()
    db = tmp_path / "crash.db"
    durably = await open_engine(db, engine.url)
    runs = [
        await durably.jobs.crash_steps.trigger(
            {"steps": RESUME_STEPS, "seed": number, "sleep": STEP_SLEEP}
        )
        for number in range(1, RESUME_RUNS + 1)
    ]
    total_steps = RESUME_RUNS * RESUME_STEPS
    workers: list[WorkerProcess] = []
    killed: set[int] = set()
    deadline = time.monotonic() + DEADLINE
    started = time.monotonic()
    with closing(sqlite3.connect(db, timeout=10)) as effects, reaped(workers):
        while True:
            worker = WorkerProcess(
                db,
                tmp_path / f"worker-{len(workers)}.log",
                expect=RESUME_RUNS,
                max_concurrent_runs=2,
                extra=engine.worker_args,
            )
            workers.append(worker)
            if len(killed) < TARGET_KILLS:
                done = scalar(
                    effects,
                    "SELECT COUNT(*) FROM (SELECT DISTINCT run_id, step_name FROM side_effects)",
                )
                count = executions_before_kill(rng, total_steps - done, TARGET_KILLS - len(killed))
                if not await wait_for_executions(effects, worker, count, deadline):
                    code = worker.process.returncode
                    raise AssertionError(
                        f"worker exited ({code}) before its kill:\n{worker.output()}"
                    )
                # Then up to two steps more, so the kill lands anywhere in a step or checkpoint.
                await asyncio.sleep(rng.uniform(0, 2 * STEP_SLEEP))
                if worker.kill():
                    killed.add(worker.pid)
                    continue
            code = await worker.wait(deadline)
            assert code == 0, f"final worker exited with {code}:\n{worker.output()}"
            break
        all_effects = read_effects(effects)
    elapsed = time.monotonic() - started
    summary = (
        f"seed={seed} kills={len(killed)} workers={len(workers)} "
        f"executions={len(all_effects)} elapsed={elapsed:.1f}s"
    )
    print(summary)

    assert len({w.pid for w in workers}) == len(workers), (
        "a pid was reused; the checks need unique pids"
    )
    index_of = {step_name(i): i for i in range(RESUME_STEPS)}
    assert double_executions(all_effects, killed, len(killed)) == [], summary
    assert resume_gaps(all_effects, index_of) == [], summary
    executed = {(e.run_id, e.step) for e in all_effects}
    for run in runs:
        missing = [name for name in index_of if (run.id, name) not in executed]
        assert not missing, f"{run.id}: steps never executed: {missing[:5]} ({summary})"

    for number, run in enumerate(runs, start=1):
        final = await durably.get_run(run.id)
        assert final is not None
        assert final.status == "completed", (final, summary)
        expected_total = sum(step_value(number, i) for i in range(RESUME_STEPS))
        assert final.output == {"count": RESUME_STEPS, "total": expected_total}, summary
        assert final.progress is not None and final.progress.current == RESUME_STEPS
        assert final.current_step_index == RESUME_STEPS, (final, summary)
        assert final.completed_step_count == RESUME_STEPS, (final, summary)
        workers_that_ran_it = {e.pid for e in all_effects if e.run_id == run.id}
        assert final.lease_generation >= len(workers_that_ran_it), (final, summary)
        steps = await durably.get_steps(run.id)
        assert [s.index for s in steps] == list(range(RESUME_STEPS)), summary
        assert [s.name for s in steps] == [step_name(i) for i in range(RESUME_STEPS)], summary
        assert {s.status for s in steps} == {"completed"}, summary
        assert [s.output for s in steps] == [step_value(number, i) for i in range(RESUME_STEPS)]
    await durably.close()
    assert len(killed) >= 20, f"too few kills landed before the runs finished: {summary}"


@pytest.mark.slow
async def test_sigkill_between_last_checkpoint_and_outcome(engine: Engine, tmp_path: Path) -> None:
    """Killed after its last checkpoint, before its outcome: the resumed run replays every step.

    Regression test for a run that then completed with the step counters of before the crash
    (they are written lazily, and a pure replay used to leave them alone).
    """
    db = tmp_path / "outcome.db"
    durably = await open_engine(db, engine.url)
    steps = 3
    run = await durably.jobs.die_before_outcome.trigger({"steps": steps})
    deadline = time.monotonic() + DEADLINE
    workers: list[WorkerProcess] = []
    with closing(sqlite3.connect(db, timeout=10)) as effects, reaped(workers):
        for n, expected_code in enumerate((-signal.SIGKILL, 0)):
            worker = WorkerProcess(
                db,
                tmp_path / f"worker-{n}.log",
                expect=1,
                max_concurrent_runs=1,
                extra=engine.worker_args,
            )
            workers.append(worker)
            code = await worker.wait(deadline)
            assert code == expected_code, f"worker {n} exited with {code}:\n{worker.output()}"
        all_effects = read_effects(effects)

    first = workers[0].pid
    assert [(e.step, e.pid) for e in all_effects] == [
        *((step_name(i), first) for i in range(steps)),
        (OUTCOME_KILL, first),
    ], "the resumed run executed a checkpointed step again"
    final = await durably.get_run(run.id)
    assert final is not None
    assert final.status == "completed"
    assert final.output == {"count": steps, "total": sum(range(steps))}
    assert final.lease_generation == 2
    assert [s.index for s in await durably.get_steps(run.id)] == list(range(steps))
    assert (final.current_step_index, final.completed_step_count) == (steps, steps), final
    await durably.close()


# -- test 2: two live workers on one file ----------------------------------------------------

KEYS = ("k1", "k2", "k3")
WAVES = 2
UNKEYED = 4
INTERVAL_STEPS = 30
INTERVAL_SLEEP = 0.01


def test_overlap_check_rejects_what_it_should() -> None:
    a = Interval("r1", "k", "w0", 1, 0.0, 1.0)
    assert overlapping([a, Interval("r1", "k", "w1", 1, 1.0, 2.0)]) == []
    assert overlapping([a, Interval("r2", None, "w0", 2, 0.5, 1.5)]) == []
    assert overlapping([a, Interval("r2", "k", "w0", 2, 1.5, 2.0)]) == []
    assert overlapping([a, Interval("r1", "k", "w1", 2, 0.5, 1.5)])
    assert overlapping([a, Interval("r2", "k", "w0", 1, 0.9, 1.5)])
    # Steps apart, but the windows of two same-key runs interleave.
    interleaved = [
        a,
        Interval("r2", "k", "w0", 2, 1.1, 1.2),
        Interval("r1", "k", "w1", 1, 1.3, 1.4),
    ]
    assert overlapping(interleaved)


async def trigger_waves(
    durably: Durably, created: list[Run], wanted: dict[tuple[str, str], int]
) -> None:
    """Trigger the next run of each (job, key) whose previous one left pending."""
    for (job, key), count in list(wanted.items()):
        if count == 0:
            continue
        run = await durably.jobs[job].trigger(
            {"key": key, "steps": INTERVAL_STEPS, "sleep": INTERVAL_SLEEP},
            concurrency_key=key,
            coalesce="skip",
        )
        if run.disposition == "created":
            created.append(run)
            wanted[job, key] = count - 1


@pytest.mark.slow
async def test_two_workers(engine: Engine, tmp_path: Path) -> None:
    rng, seed = seeded_rng()
    db = tmp_path / "two.db"
    durably = await open_engine(db, engine.url)
    jobs = ("interval_a", "interval_b")
    created: list[Run] = []
    for n in range(UNKEYED):
        created.append(
            await durably.jobs[jobs[n % 2]].trigger(
                {"key": None, "steps": INTERVAL_STEPS, "sleep": INTERVAL_SLEEP}
            )
        )
    wanted = {(job, key): WAVES for job in jobs for key in KEYS}
    await trigger_waves(durably, created, wanted)
    expect = UNKEYED + WAVES * len(jobs) * len(KEYS)
    total_steps = expect * INTERVAL_STEPS
    workers: list[WorkerProcess] = []
    deadline = time.monotonic() + DEADLINE
    held_at_kill: list[str] = []
    with closing(sqlite3.connect(db, timeout=10)) as effects, reaped(workers):
        for n in range(2):
            workers.append(
                WorkerProcess(
                    db,
                    tmp_path / f"worker-{n}.log",
                    expect=expect,
                    max_concurrent_runs=2,
                    extra=engine.worker_args,
                )
            )
        victim, survivor = workers
        kill_at: float | None = None
        while survivor.running:
            if time.monotonic() > deadline:
                raise AssertionError(f"runs did not finish:\n{survivor.output()}")
            await trigger_waves(durably, created, wanted)
            if victim.running:
                done = scalar(effects, "SELECT COUNT(*) FROM intervals")
                mine = scalar(
                    effects, "SELECT COUNT(*) FROM intervals WHERE pid = ?", (victim.pid,)
                )
                if kill_at is None and mine and done >= total_steps // 3:
                    kill_at = time.monotonic() + rng.uniform(0, 0.2)
                if kill_at is not None and time.monotonic() >= kill_at:
                    assert victim.kill(), f"worker {victim.pid} ended before the kill"
                    held_at_kill = [
                        run.id
                        for run in await durably.get_runs(status="leased")
                        if run.lease_owner == f"worker-{victim.pid}"
                    ]
            await asyncio.sleep(0.01)
        code = await survivor.wait(deadline)
        assert code == 0, f"surviving worker exited with {code}:\n{survivor.output()}"
        intervals = [
            Interval(*row)
            for row in effects.execute(
                "SELECT run_id, concurrency_key, step_name, pid, t_start, t_end FROM intervals "
                "ORDER BY id"
            )
        ]
    summary = f"seed={seed} runs={len(created)} held_at_kill={len(held_at_kill)}"
    print(summary)

    assert victim.killed_at is not None, f"the victim was never killed: {summary}"
    assert all(count == 0 for count in wanted.values()), summary
    assert len(created) == expect
    by_pid = Counter(item.pid for item in intervals)
    assert by_pid[victim.pid] > 0 and by_pid[survivor.pid] > 0, (dict(by_pid), summary)
    assert overlapping(intervals) == [], summary
    for run in created:
        final = await durably.get_run(run.id)
        assert final is not None
        assert final.status == "completed", (final, summary)
        assert final.output == {"steps": INTERVAL_STEPS}
        steps = {i.step for i in intervals if i.run_id == run.id}
        assert len(steps) == INTERVAL_STEPS, (run.id, summary)
        assert {i.key for i in intervals if i.run_id == run.id} == {run.concurrency_key}
        if run.id in held_at_kill:
            assert final.lease_generation >= 2, (final, summary)
            assert final.lease_owner is None
    await durably.close()
