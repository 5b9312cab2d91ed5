"""SIGKILL during durable waits, with real processes: every run completes exactly once.

For each kind of wait (a sleep, a signal wait, a retry backoff, parallel steps) and with 1
and 3 worker processes, with the engine on SQLite and on PostgreSQL: 20 cycles, each triggering a run, starting the workers, and
SIGKILLing every one of them once the new run is in the wait (or, for ``step.all``, once some
of its parallel steps finished and others did not). Older runs are hit wherever they are. For
a signal wait the signal is sent while no worker is alive. Then fresh workers finish
everything. Checked: every run completed, no completed step ran again (the side-effect rows,
as in ``test_crash.py``: none started with its checkpoint written, and none but the one in
flight at a kill ran twice), a sleep kept its original start (not restarted from zero) and ended
no earlier than due, a signal's payload arrived, a retry's attempt count went on (the
successful attempt is the third), the finished parallel steps replayed.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from durably_web import Durably, Run
from tests.acceptance.crash_harness import (
    Engine,
    WorkerProcess,
    double_executions,
    open_engine,
    read_effects,
    reaped,
)
from tests.acceptance.crash_worker import ALL_STEPS, FLAKY_FAILURES

CYCLES = 20
DEADLINE = 240.0
WAIT = {"sleep": 2.0, "signal": 0.0, "retry": 2.5, "all": 0.15}
"""The payload's ``wait``: a sleep's seconds, a retry's backoff (over 2 s: the run waits), the
first parallel step's seconds (the others take 2, 3, 4 times as long)."""


async def until(check: Callable[[], Awaitable[bool]], deadline: float, what: str) -> None:
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def in_wait(durably: Durably, run_id: str, kind: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        if kind == "all":
            done = {s.name for s in await durably.get_steps(run_id) if s.status == "completed"}
            return "p0" in done and "p3" not in done
        run = await durably.get_run(run_id)
        return run is not None and run.waiting is not None and run.waiting.kind == kind

    return check


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("kind", ["sleep", "signal", "retry", "all"])
async def test_sigkill_during_durable_waits(
    tmp_path: Path, kind: str, workers: int, engine: Engine
) -> None:
    db = tmp_path / "waits.db"
    durably = await open_engine(db, engine.url)
    deadline = time.monotonic() + DEADLINE
    runs: list[Run] = []
    started_sleep: dict[str, str] = {}
    processes: list[WorkerProcess] = []
    killed: set[int] = set()

    def start(count: int) -> list[WorkerProcess]:
        new = [
            WorkerProcess(
                db,
                tmp_path / f"w{len(processes) + i}.log",
                expect=CYCLES,
                max_concurrent_runs=2,
                extra=engine.worker_args,
            )
            for i in range(count)
        ]
        processes.extend(new)
        return new

    with closing(sqlite3.connect(db, timeout=10)) as effects, reaped(processes):
        for cycle in range(CYCLES):
            run = await durably.jobs.durable_waits.trigger({"kind": kind, "wait": WAIT[kind]})
            runs.append(run)
            alive = start(workers)
            await until(in_wait(durably, run.id, kind), deadline, f"{run.id} in its {kind}")
            if kind == "sleep":
                sleeping = await durably.get_run(run.id)
                assert sleeping is not None and sleeping.waiting is not None
                assert sleeping.waiting.since is not None
                started_sleep[run.id] = sleeping.waiting.since.isoformat()
            for process in alive:
                if process.kill():
                    killed.add(process.pid)
            if kind == "signal":
                await durably.signal(run.id, "go", {"cycle": cycle})  # no worker is alive
        for process in start(workers):
            code = await process.wait(deadline)
            assert code == 0, process.output()
        all_effects = read_effects(effects)
        repeated = effects.execute(
            "SELECT run_id, step_name FROM side_effects WHERE after_checkpoint = 1"
        ).fetchall()

    summary = f"{kind}, {workers} workers: {len(killed)} kills, {len(all_effects)} step executions"
    print(summary)
    assert len(killed) >= CYCLES, summary
    # A step function that started although its step had a completed checkpoint: never.
    assert repeated == [], summary
    # Parallel steps are all in flight at once, so the sequential rule (only the last step a
    # killed worker ran may run again) holds for the others only.
    sequential = [e for e in all_effects if e.step not in ALL_STEPS]
    assert double_executions(sequential, killed, len(killed)) == [], summary
    for cycle, run in enumerate(runs):
        final = await durably.get_run(run.id)
        assert final is not None and final.status == "completed", (final, summary)
        steps = {s.name: s for s in await durably.get_steps(run.id) if s.status == "completed"}
        if kind == "sleep":
            nap = steps["nap"]
            assert nap.started_at.isoformat() == started_sleep[run.id], "the sleep restarted"
            assert nap.completed_at is not None
            assert nap.completed_at - nap.started_at >= timedelta(seconds=WAIT["sleep"])
        elif kind == "signal":
            assert final.output == {"cycle": cycle}
        elif kind == "retry":
            # The attempts go on from the failures recorded: an attempt killed before its
            # failure was recorded is numbered again (at-least-once), never from 1.
            recorded = [
                s
                for s in await durably.get_steps(run.id)
                if s.name == "flaky" and s.status == "failed"
            ]
            assert 1 <= len(recorded) <= FLAKY_FAILURES, recorded
            assert steps["flaky"].attempt == len(recorded) + 1, "the attempt count restarted"
            assert sorted(s.attempt for s in recorded) == list(range(1, len(recorded) + 1))
        else:
            assert set(ALL_STEPS) <= set(steps)
            assert [steps[name].index for name in ALL_STEPS] == [1, 2, 3, 4]
    await durably.close()
