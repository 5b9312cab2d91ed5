"""Crash tests of the batched checkpoint mode: real worker processes killed with SIGKILL.

With ``checkpoint="batched"`` a kill may run the steps of the last uncommitted group again,
at most ``checkpoint_max_steps`` of them (the step in flight included), and never a step
whose checkpoint committed. ``crash_worker.py``'s steps commit a side-effect row saying
whether their checkpoint was already in the database when they started
(``after_checkpoint``): that must never be true. From the rows' order the test also counts
how many steps each kill made the next worker run again.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import defaultdict
from contextlib import closing
from pathlib import Path

import pytest

from tests.acceptance.crash_harness import (
    Effect,
    WorkerProcess,
    open_engine,
    read_effects,
    reaped,
    scalar,
    seeded_rng,
)
from tests.acceptance.crash_worker import step_name, step_value
from tests.acceptance.test_crash import executions_before_kill, wait_for_executions

DEADLINE = 120.0
RUNS = 2
STEPS = 300
STEP_SLEEP = 0.002
KILLS = 12
MAX_STEPS = 16
MAX_DELAY = 0.2
"""Long enough that groups fill up to ``MAX_STEPS`` (each step sleeps ``STEP_SLEEP``)."""


def reruns_per_kill(effects: list[Effect], index_of: dict[str, int]) -> dict[tuple[str, int], int]:
    """Per (run, killed worker): how many of that worker's steps a later worker ran again."""
    by_run: dict[str, list[Effect]] = defaultdict(list)
    for effect in sorted(effects, key=lambda e: e.id):
        by_run[effect.run_id].append(effect)
    counts: dict[tuple[str, int], int] = {}
    for run_id, executions in by_run.items():
        done_by: dict[str, int] = {}
        for effect in executions:
            earlier = done_by.get(effect.step)
            if earlier is not None and earlier != effect.pid:
                counts[run_id, earlier] = counts.get((run_id, earlier), 0) + 1
            done_by[effect.step] = effect.pid
    return counts


def test_reruns_per_kill_counts_what_it_should() -> None:
    index_of = {"s0": 0, "s1": 1, "s2": 2}
    history = [
        Effect(1, "r", "s0", 10),
        Effect(2, "r", "s1", 10),
        Effect(3, "r", "s0", 11),  # 10 was killed with s0 and s1 uncommitted
        Effect(4, "r", "s1", 11),
        Effect(5, "r", "s2", 11),
    ]
    assert reruns_per_kill(history, index_of) == {("r", 10): 2}


@pytest.mark.slow
async def test_sigkill_in_batched_mode_reruns_at_most_the_group(tmp_path: Path) -> None:
    rng, seed = seeded_rng()
    db = tmp_path / "crash.db"
    durably = await open_engine(db)
    runs = [
        await durably.jobs.crash_steps.trigger({"steps": STEPS, "seed": n, "sleep": STEP_SLEEP})
        for n in range(1, RUNS + 1)
    ]
    extra = [
        "--checkpoint",
        "batched",
        "--checkpoint-max-steps",
        str(MAX_STEPS),
        "--checkpoint-max-delay",
        str(MAX_DELAY),
    ]
    workers: list[WorkerProcess] = []
    killed: set[int] = set()
    deadline = time.monotonic() + DEADLINE
    with closing(sqlite3.connect(db, timeout=10)) as effects, reaped(workers):
        while True:
            worker = WorkerProcess(
                db,
                tmp_path / f"worker-{len(workers)}.log",
                expect=RUNS,
                max_concurrent_runs=2,
                extra=extra,
            )
            workers.append(worker)
            if len(killed) < KILLS:
                done = scalar(
                    effects,
                    "SELECT COUNT(*) FROM (SELECT DISTINCT run_id, step_name FROM side_effects)",
                )
                count = executions_before_kill(rng, RUNS * STEPS - done, KILLS - len(killed))
                if not await wait_for_executions(effects, worker, count, deadline):
                    raise AssertionError(f"worker exited before its kill:\n{worker.output()}")
                await asyncio.sleep(rng.uniform(0, 4 * STEP_SLEEP))
                if worker.kill():
                    killed.add(worker.pid)
                    continue
            code = await worker.wait(deadline)
            assert code == 0, f"final worker exited with {code}:\n{worker.output()}"
            break
        all_effects = read_effects(effects)
        after_checkpoint = scalar(
            effects, "SELECT COUNT(*) FROM side_effects WHERE after_checkpoint = 1"
        )
    summary = f"seed={seed} kills={len(killed)} executions={len(all_effects)}"
    print(summary)

    # No step whose checkpoint had committed ran again.
    assert after_checkpoint == 0, summary
    # Each kill re-ran at most the uncommitted group: MAX_STEPS steps, the one in flight too.
    index_of = {step_name(i): i for i in range(STEPS)}
    reruns = reruns_per_kill(all_effects, index_of)
    assert set(pid for _, pid in reruns) <= killed, (reruns, summary)
    assert max(reruns.values(), default=0) <= MAX_STEPS, (reruns, summary)
    assert sum(reruns.values()) > len(killed), f"groups never held several steps: {summary}"
    for number, run in enumerate(runs, start=1):
        final = await durably.get_run(run.id)
        assert final is not None and final.status == "completed", (final, summary)
        expected = sum(step_value(number, i) for i in range(STEPS))
        assert final.output == {"count": STEPS, "total": expected}, summary
        assert (final.current_step_index, final.completed_step_count) == (STEPS, STEPS)
        steps = await durably.get_steps(run.id)
        assert [s.name for s in steps] == [step_name(i) for i in range(STEPS)], summary
        assert [s.output for s in steps] == [step_value(number, i) for i in range(STEPS)]
    await durably.close()
    assert len(killed) >= KILLS // 2, f"too few kills landed: {summary}"
