"""Real worker processes: log lines across SIGKILLs, and a step that blocks past its lease.

Both use ``crash_worker.py`` (lease 1 s, renewed every 0.2 s, polling every 50 ms).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.acceptance.crash_harness import (
    WorkerProcess,
    open_engine,
    read_effects,
    reaped,
    scalar,
    seeded_rng,
)
from tests.acceptance.crash_worker import logged_lines
from tests.acceptance.test_crash import DEADLINE, executions_before_kill, wait_for_executions

LOG_RUNS = 2
LOG_STEPS = 60
LOG_KILLS = 12


@pytest.mark.slow
async def test_each_log_line_is_stored_once_across_sigkills(tmp_path: Path) -> None:
    """Kill the worker at random points; every run's lines end up stored once each, in order."""
    rng, seed = seeded_rng()
    db = tmp_path / "lines.db"
    durably = await open_engine(db)
    runs = [
        await durably.jobs.logged_steps.trigger({"steps": LOG_STEPS, "seed": n, "sleep": 0.01})
        for n in range(LOG_RUNS)
    ]
    workers: list[WorkerProcess] = []
    kills = 0
    deadline = time.monotonic() + DEADLINE
    with closing(sqlite3.connect(db, timeout=10)) as effects, reaped(workers):
        while True:
            worker = WorkerProcess(
                db, tmp_path / f"w{len(workers)}.log", expect=LOG_RUNS, max_concurrent_runs=2
            )
            workers.append(worker)
            if kills < LOG_KILLS:
                done = scalar(
                    effects,
                    "SELECT COUNT(*) FROM (SELECT DISTINCT run_id, step_name FROM side_effects)",
                )
                count = executions_before_kill(rng, LOG_RUNS * LOG_STEPS - done, LOG_KILLS - kills)
                if await wait_for_executions(effects, worker, count, deadline):
                    await asyncio.sleep(rng.uniform(0, 0.02))
                    if worker.kill():
                        kills += 1
                        continue
            code = await worker.wait(deadline)
            assert code == 0, worker.output()
            break
        executions = len(read_effects(effects))
    summary = f"seed={seed} kills={kills} executions={executions}"
    print(summary)
    assert kills >= LOG_KILLS // 2, summary
    for run in runs:
        final = await durably.get_run(run.id)
        assert final is not None and final.status == "completed", (final, summary)
        lines = [log.message for log in await durably.get_logs(run.id)]
        assert lines == logged_lines(LOG_STEPS), summary
    await durably.close()


@pytest.mark.slow
async def test_step_blocking_past_the_lease_ends_with_two_workers(tmp_path: Path) -> None:
    """A step blocks 1.6 s with a 1 s lease: warned about, then completed, not ping-ponged."""
    db = tmp_path / "block.db"
    durably = await open_engine(db)
    run = await durably.jobs.blocking_step.trigger({"block": 1.6})
    workers: list[WorkerProcess] = []
    deadline = time.monotonic() + DEADLINE
    started = time.monotonic()
    with closing(sqlite3.connect(db, timeout=10)) as effects, reaped(workers):
        for n in range(2):
            workers.append(
                WorkerProcess(db, tmp_path / f"w{n}.log", expect=1, max_concurrent_runs=1)
            )
        codes = [await worker.wait(deadline) for worker in workers]
        blocks = scalar(effects, "SELECT COUNT(*) FROM side_effects WHERE step_name = 'block'")
    took = time.monotonic() - started
    outputs = "\n".join(worker.output() for worker in workers)
    assert codes == [0, 0], outputs
    final = await durably.get_run(run.id)
    assert final is not None, outputs
    assert (final.status, final.output) == ("completed", {"count": 1, "total": 1}), outputs
    assert 2 <= blocks <= 4, (blocks, outputs)  # each worker lost it at most once
    assert "'context': 'step-blocked'" in outputs
    assert "step 'block' of run" in outputs
    assert "another worker took the run over and this result was discarded" in outputs
    assert took < 30, took
    await durably.close()
