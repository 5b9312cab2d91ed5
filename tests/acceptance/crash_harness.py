"""What the crash tests and the fault campaign share: worker processes and the effect checks.

``crash_worker.py`` is the worker process; its jobs commit one side-effect row per step
execution, so the rows show every time a step function ran. :func:`double_executions`
tells the executions the at-least-once rule allows (the step in flight at a kill) from the
ones it does not (a completed step run again).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from durably_web import Durably, create_durably
from tests.acceptance.crash_worker import JOBS, create_tables

WORKER_SCRIPT = Path(__file__).with_name("crash_worker.py")


# -- worker processes ------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child: ask Linux for SIGKILL when the test process ends, however it ends."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


_PR_SET_PDEATHSIG = 1


class WorkerProcess:
    """One ``crash_worker.py`` process, its output going to a log file."""

    def __init__(
        self,
        db: Path,
        log: Path,
        *,
        expect: int,
        max_concurrent_runs: int,
        extra: Sequence[str] = (),
    ) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(WORKER_SCRIPT),
                str(db),
                "--expect",
                str(expect),
                "--max-concurrent-runs",
                str(max_concurrent_runs),
                *extra,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        self.pid = self.process.pid
        self.killed_at: float | None = None

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> bool:
        """SIGKILL the process; return True if the signal is what ended it."""
        if self.running:
            self.killed_at = time.time()
            os.kill(self.pid, signal.SIGKILL)
        code = self.process.wait()
        self._log.close()
        return code == -signal.SIGKILL

    async def wait(self, deadline: float) -> int:
        """Wait for the process to exit by itself; return its exit code."""
        while self.running:
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {self.pid} did not finish:\n{self.output()}")
            await asyncio.sleep(0.02)
        self._log.close()
        return self.process.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@contextmanager
def reaped(workers: list[WorkerProcess]) -> Iterator[None]:
    """Kill whatever worker is still alive when the test ends, pass or fail."""
    try:
        yield
    finally:
        for worker in workers:
            worker.kill()


def seeded_rng() -> tuple[random.Random, int]:
    seed = int(os.environ.get("CRASH_SEED") or random.randrange(2**32))
    return random.Random(seed), seed


async def open_engine(db: Path, engine_url: str | None = None) -> Durably:
    """The test's own engine on the database: it triggers and inspects, never executes.

    The side-effect tables go in the SQLite file ``db``; the engine runs there too, or on
    ``engine_url`` (PostgreSQL).
    """
    create_tables(str(db))
    durably = create_durably(engine_url or f"sqlite:///{db}", jobs=JOBS, preserve_steps=True)
    await durably.migrate()
    return durably


def scalar(db: sqlite3.Connection, sql: str, params: Sequence[object] = ()) -> int:
    return int(db.execute(sql, params).fetchone()[0])


# -- what the side effects may look like -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Effect:
    """One execution of a step function, as its side-effect row records it."""

    id: int
    run_id: str
    step: str
    pid: int


def read_effects(db: sqlite3.Connection) -> list[Effect]:
    rows = db.execute("SELECT id, run_id, step_name, pid FROM side_effects ORDER BY id")
    return [Effect(*row) for row in rows]


def double_executions(effects: Iterable[Effect], killed_pids: set[int], kills: int) -> list[str]:
    """Explain every execution of a step that the at-least-once rule does not allow.

    A step may run again only when each earlier execution was the last thing its worker did
    for that run: the step in flight when the worker was killed, or when a worker starved past
    its lease (a loaded machine) lost the run to another worker and its fenced checkpoint was
    refused. Any other repeat means a step that had completed (and whose worker carried on)
    was executed a second time. ``killed_pids`` only sharpens the message.
    """
    effects = sorted(effects, key=lambda e: e.id)
    last_of_worker: dict[tuple[str, int], int] = {}
    by_step: dict[tuple[str, str], list[Effect]] = defaultdict(list)
    for effect in effects:
        last_of_worker[effect.run_id, effect.pid] = effect.id
        by_step[effect.run_id, effect.step].append(effect)
    problems = []
    for (run_id, step), executions in by_step.items():
        if len(executions) > kills + 1:
            problems.append(f"{run_id}/{step} ran {len(executions)} times with only {kills} kills")
        for earlier in executions[:-1]:
            if earlier.id != last_of_worker[run_id, earlier.pid]:
                how = "was killed" if earlier.pid in killed_pids else "lost the run"
                problems.append(
                    f"{run_id}/{step} ran again although worker {earlier.pid} completed it "
                    f"(effect #{earlier.id}) and went on to effect "
                    f"#{last_of_worker[run_id, earlier.pid]} before it {how}"
                )
    return problems


# -- executions that must not overlap ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Interval:
    """One execution of a step function: which run, key and process, and when."""

    run_id: str
    key: str | None
    step: str
    pid: int
    start: float
    end: float


def overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def overlapping(intervals: Sequence[Interval], key: str | None = None) -> list[str]:
    """Explain every pair of step executions that ran at the same time and must not have.

    The same run in two processes, or two runs sharing a concurrency key, anywhere. Both step
    intervals and each (run, process) execution window, first step start to last step end,
    are compared: a window covers the checkpoints between steps as well.
    """
    windows: dict[tuple[str, int], tuple[float, float]] = {}
    keys: dict[str, str | None] = {}
    for item in intervals:
        start, end = windows.get((item.run_id, item.pid), (item.start, item.end))
        windows[item.run_id, item.pid] = (min(start, item.start), max(end, item.end))
        keys[item.run_id] = item.key
    spans = [(i.run_id, i.pid, (i.start, i.end), f"{i.step}") for i in intervals]
    spans += [(run, pid, window, "window") for (run, pid), window in windows.items()]
    spans.sort(key=lambda span: span[2][0])
    problems = []
    for n, (run_a, pid_a, span_a, what_a) in enumerate(spans):
        for run_b, pid_b, span_b, what_b in spans[n + 1 :]:
            if span_b[0] >= span_a[1]:
                break
            same_run = run_a == run_b and pid_a != pid_b
            same_key = run_a != run_b and keys[run_a] is not None and keys[run_a] == keys[run_b]
            if (same_run or same_key) and overlaps(span_a, span_b):
                problems.append(
                    f"{run_a}/{what_a} in {pid_a} {span_a} overlaps "
                    f"{run_b}/{what_b} in {pid_b} {span_b} (key {keys[run_a]})"
                )
    return problems
