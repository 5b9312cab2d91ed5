"""A worker process for the crash tests and the fault campaign, and the jobs it runs.

Run as a script (``python crash_worker.py DB --expect N``) it opens the engine on ``DB`` (or
on ``--engine URL``, PostgreSQL, keeping side effects in ``DB``),
executes runs until ``N`` runs are terminal and none is pending or leased, then exits 0. The
tests SIGKILL it at random points and start a new one, which must resume the runs.

The jobs record what they did in tables of their own (``side_effects``, ``intervals``) in the
same database file, or in the file ``--effects`` names, through a separate ``sqlite3``
connection that commits each row before the step returns: what a real side effect (an API
call, a file write) looks like to the engine. Each side-effect row also says whether the
step's checkpoint was already committed when the step function started
(``after_checkpoint``): that is a completed step executed again, which must never happen.
The test process imports this module only for the job definitions, to trigger runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from durably_web import Event, JobDefinition, Retry, StepContext, create_durably, define_job

LEASE_DURATION = 1.0
LEASE_RENEW_INTERVAL = 0.2
POLLING_INTERVAL = 0.05

TABLES = """
CREATE TABLE IF NOT EXISTS side_effects (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id TEXT NOT NULL,
  step_name TEXT NOT NULL,
  pid INTEGER NOT NULL,
  after_checkpoint INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS intervals (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id TEXT NOT NULL,
  concurrency_key TEXT,
  step_name TEXT NOT NULL,
  pid INTEGER NOT NULL,
  t_start REAL NOT NULL,
  t_end REAL NOT NULL
);
"""


def open_effects(path: str) -> sqlite3.Connection:
    """Open an autocommit connection for side effects (every INSERT commits on its own)."""
    db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA busy_timeout = 10000")
    return db


def create_tables(path: str) -> None:
    """Create the side-effect tables in the database file ``path``."""
    db = open_effects(path)
    try:
        db.executescript(TABLES)
    finally:
        db.close()


_effects: sqlite3.Connection | None = None
_engine_reader: Any = None
"""A DB-API connection to the engine's database: sqlite3, or psycopg on PostgreSQL."""
_placeholder = "?"


def _effects_db() -> sqlite3.Connection:
    if _effects is None:
        raise RuntimeError("side effects are only recorded in a worker process")
    return _effects


def _checkpointed(run_id: str, name: str) -> bool:
    """Whether the engine's database already holds a completed checkpoint of this step."""
    if _engine_reader is None:
        raise RuntimeError("side effects are only recorded in a worker process")
    mark = _placeholder
    row = _engine_reader.execute(
        f"SELECT 1 FROM durably_steps WHERE run_id = {mark} AND name = {mark}"
        " AND status = 'completed'",
        (run_id, name),
    ).fetchone()
    return row is not None


def record_effect(run_id: str, name: str) -> None:
    """Commit one side-effect row for an execution of step ``name`` of ``run_id``."""
    _effects_db().execute(
        "INSERT INTO side_effects (run_id, step_name, pid, after_checkpoint) VALUES (?, ?, ?, ?)",
        (run_id, name, os.getpid(), int(_checkpointed(run_id, name))),
    )


# -- the many-step job (test_sigkill_resume) -------------------------------------------------


class StepsInput(BaseModel):
    steps: int
    seed: int
    sleep: float


class StepsOutput(BaseModel):
    count: int
    total: int


def step_name(index: int) -> str:
    """The name of step ``index`` of the many-step job."""
    return f"step-{index:04d}"


def step_value(seed: int, index: int) -> int:
    """What step ``index`` returns; the output sums them (replayed values included)."""
    return (seed * 7919 + index * index) % 100_003


def _side_effect_step(
    run_id: str, name: str, value: int, sleep: float
) -> Callable[[], Awaitable[int]]:
    async def run() -> int:
        await asyncio.sleep(sleep / 2)
        record_effect(run_id, name)
        await asyncio.sleep(sleep / 2)
        return value

    return run


@define_job(name="crash-steps", input=StepsInput, output=StepsOutput)
async def crash_steps(step: StepContext, payload: StepsInput) -> StepsOutput:
    """``steps`` checkpointed steps, each committing one side-effect row mid-way."""
    total = 0
    for index in range(payload.steps):
        name = step_name(index)
        value = step_value(payload.seed, index)
        total += await step.run(name, _side_effect_step(step.run_id, name, value, payload.sleep))
        step.progress(index + 1, payload.steps)
    return StepsOutput(count=payload.steps, total=total)


class DieInput(BaseModel):
    steps: int


OUTCOME_KILL = "killed-before-outcome"


@define_job(name="die-before-outcome", input=DieInput, output=StepsOutput)
async def die_before_outcome(step: StepContext, payload: DieInput) -> StepsOutput:
    """Checkpoint every step, then, the first time only, SIGKILL its own process.

    The process dies after the last checkpoint and before the run's outcome is written: the
    next worker replays every step from the cache and only has the outcome left to write.
    """
    total = 0
    for index in range(payload.steps):
        name = step_name(index)
        total += await step.run(name, _side_effect_step(step.run_id, name, index, 0.0))
    effects = _effects_db()
    marker = (step.run_id, OUTCOME_KILL)
    seen = "SELECT COUNT(*) FROM side_effects WHERE run_id = ? AND step_name = ?"
    if not effects.execute(seen, marker).fetchone()[0]:
        effects.execute(
            "INSERT INTO side_effects (run_id, step_name, pid) VALUES (?, ?, ?)",
            (*marker, os.getpid()),
        )
        os.kill(os.getpid(), signal.SIGKILL)
    return StepsOutput(count=payload.steps, total=total)


@define_job(name="logged-steps", input=StepsInput, output=StepsOutput)
async def logged_steps(step: StepContext, payload: StepsInput) -> StepsOutput:
    """Like ``crash-steps``, logging a line before, inside and after each step."""
    step.log.info("start")
    total = 0
    for index in range(payload.steps):
        name = step_name(index)
        value = step_value(payload.seed, index)
        effect = _side_effect_step(step.run_id, name, value, payload.sleep)

        async def work(index: int = index, effect: Callable[[], Awaitable[int]] = effect) -> int:
            step.log.info(f"inside {index}")
            return await effect()

        step.log.info(f"before {index}")
        total += await step.run(name, work)
        step.log.info(f"after {index}")
    step.log.info("end")
    return StepsOutput(count=payload.steps, total=total)


def logged_lines(steps: int) -> list[str]:
    """Every line ``logged-steps`` writes, in order, once each."""
    lines = ["start"]
    for index in range(steps):
        lines += [f"before {index}", f"inside {index}", f"after {index}"]
    return [*lines, "end"]


class BlockInput(BaseModel):
    block: float


@define_job(name="blocking-step", input=BlockInput, output=StepsOutput)
async def blocking_step(step: StepContext, payload: BlockInput) -> StepsOutput:
    """One step that blocks the event loop (``time.sleep``) for ``block`` seconds."""

    def block() -> int:
        _effects_db().execute(
            "INSERT INTO side_effects (run_id, step_name, pid) VALUES (?, ?, ?)",
            (step.run_id, "block", os.getpid()),
        )
        time.sleep(payload.block)  # blocking on purpose: no lease renewal meanwhile
        return 1

    total = await step.run("block", block)
    return StepsOutput(count=1, total=total)


# -- two jobs sharing concurrency keys (test_two_workers) ------------------------------------


class IntervalInput(BaseModel):
    key: str | None
    steps: int
    sleep: float


class IntervalOutput(BaseModel):
    steps: int


def _interval_step(
    run_id: str, key: str | None, name: str, sleep: float
) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        started = time.time()
        await asyncio.sleep(sleep)
        record_effect(run_id, name)
        ended = time.time()
        _effects_db().execute(
            "INSERT INTO intervals (run_id, concurrency_key, step_name, pid, t_start, t_end) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, key, name, os.getpid(), started, ended),
        )

    return run


async def _interval_job(step: StepContext, payload: IntervalInput) -> IntervalOutput:
    for index in range(payload.steps):
        name = f"work-{index:03d}"
        await step.run(name, _interval_step(step.run_id, payload.key, name, payload.sleep))
    return IntervalOutput(steps=payload.steps)


interval_a = define_job(
    name="interval-a", input=IntervalInput, output=IntervalOutput, run=_interval_job
)
interval_b = define_job(
    name="interval-b", input=IntervalInput, output=IntervalOutput, run=_interval_job
)

# -- jobs that log, report progress and fail (the fault campaign's mix) ----------------------


class ChattyInput(BaseModel):
    steps: int
    sleep: float


class CountOutput(BaseModel):
    count: int


@define_job(name="chatty", input=ChattyInput, output=CountOutput)
async def chatty(step: StepContext, payload: ChattyInput) -> CountOutput:
    """Steps that each log a line and report progress around their checkpoint."""
    for index in range(payload.steps):
        name = step_name(index)
        step.log.info(f"starting {name}", {"index": index})
        await step.run(name, _side_effect_step(step.run_id, name, index, payload.sleep))
        step.progress(index + 1, payload.steps, f"{name} done")
    return CountOutput(count=payload.steps)


class DoomedInput(BaseModel):
    steps: int
    fail_at: int
    sleep: float


def doomed_error(index: int) -> str:
    """The error a doomed run fails with."""
    return f"doomed at step {index}"


@define_job(name="doomed", input=DoomedInput, output=CountOutput)
async def doomed(step: StepContext, payload: DoomedInput) -> CountOutput:
    """Checkpoint ``fail_at`` steps, then fail in the next one: a run that must end failed."""
    for index in range(payload.steps):
        name = step_name(index)
        if index == payload.fail_at:
            await step.run(name, _failing_step(index))
        await step.run(name, _side_effect_step(step.run_id, name, index, payload.sleep))
    return CountOutput(count=payload.steps)


def _failing_step(index: int) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        raise RuntimeError(doomed_error(index))

    return run


# -- durable waits (test_crash_waits) --------------------------------------------------------


class WaitsInput(BaseModel):
    kind: str  # "sleep" | "signal" | "retry" | "all"
    wait: float


FLAKY_FAILURES = 2
"""Attempts of the ``flaky`` step that fail before one succeeds."""
ALL_STEPS = ("p0", "p1", "p2", "p3")


def _effect_count(run_id: str, prefix: str) -> int:
    row = (
        _effects_db()
        .execute(
            "SELECT COUNT(*) FROM side_effects WHERE run_id = ? AND step_name LIKE ?",
            (run_id, f"{prefix}%"),
        )
        .fetchone()
    )
    return int(row[0])


@define_job(name="durable-waits", input=WaitsInput)
async def durable_waits(step: StepContext, payload: WaitsInput) -> Any:
    """Step ``a``, then a durable wait of ``kind`` (or parallel steps), then step ``b``."""
    run_id = step.run_id
    await step.run("a", _side_effect_step(run_id, "a", 1, 0.0))
    result: Any = None
    if payload.kind == "sleep":
        await step.sleep("nap", payload.wait)
    elif payload.kind == "signal":
        result = await step.wait_for_signal("go")
    elif payload.kind == "retry":

        def flaky() -> int:
            attempt = _effect_count(run_id, "flaky#") + 1
            record_effect(run_id, f"flaky#{attempt}")
            if attempt <= FLAKY_FAILURES:
                raise ConnectionError(f"attempt {attempt} failed")
            return attempt

        policy = Retry(attempts=FLAKY_FAILURES + 3, initial=payload.wait, factor=1, jitter=False)
        result = await step.run("flaky", flaky, retry=policy)
    else:
        steps = {  # p0 finishes first, p3 last: a kill in between leaves some done
            name: _side_effect_step(run_id, name, i, payload.wait * (i + 1))
            for i, name in enumerate(ALL_STEPS)
        }
        result = await step.all(steps)
    await step.run("b", _side_effect_step(run_id, "b", 2, 0.0))
    return result


JOBS: dict[str, JobDefinition[Any, Any]] = {
    "durable_waits": durable_waits,
    "crash_steps": crash_steps,
    "die_before_outcome": die_before_outcome,
    "interval_a": interval_a,
    "interval_b": interval_b,
    "chatty": chatty,
    "doomed": doomed,
    "logged_steps": logged_steps,
    "blocking_step": blocking_step,
}


# -- the worker process ----------------------------------------------------------------------


async def work(
    path: str,
    expect: int,
    max_concurrent_runs: int,
    effects_path: str | None = None,
    busy_timeout: float | None = None,
    engine_url: str | None = None,
    checkpoint: dict[str, Any] | None = None,
) -> None:
    """Run the engine on ``path`` (or ``engine_url``) until ``expect`` runs are terminal."""
    global _effects, _engine_reader, _placeholder
    _effects = open_effects(effects_path or path)
    if engine_url is None:
        _engine_reader = open_effects(path)
        url = f"sqlite:///{path}" + (
            "" if busy_timeout is None else f"?busy_timeout={busy_timeout}"
        )
    else:  # PostgreSQL: side effects stay in the SQLite file, the outside world to the engine
        import psycopg

        _engine_reader, _placeholder = psycopg.connect(engine_url, autocommit=True), "%s"
        url = engine_url
    durably = create_durably(
        url,
        lease_duration=LEASE_DURATION,
        lease_renew_interval=LEASE_RENEW_INTERVAL,
        polling_interval=POLLING_INTERVAL,
        max_concurrent_runs=max_concurrent_runs,
        preserve_steps=True,
        jobs=JOBS,
        worker_id=f"worker-{os.getpid()}",
        **(checkpoint or {}),
    )

    def report(event: Event) -> None:
        print(f"[{os.getpid()}] {event.type}: {event.to_wire()}", file=sys.stderr, flush=True)

    durably.on("worker:error", report)
    await durably.init()
    try:
        while True:
            if durably.worker.failure is not None:  # a full disk: stop, as the CLI does
                raise SystemExit(f"worker {os.getpid()} stopped: {durably.worker.failure}")
            active = await durably.get_runs(status=["pending", "leased", "waiting"], limit=1)
            if not active:
                finished = await durably.get_runs(status=["completed", "failed", "cancelled"])
                if len(finished) >= expect:
                    break
            await asyncio.sleep(POLLING_INTERVAL)
    finally:
        await durably.close()
        _effects.close()
        _engine_reader.close()


def main() -> None:
    """Parse the command line and run the worker."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("database", help="path of the SQLite file")
    parser.add_argument("--expect", type=int, required=True, help="runs to see finished")
    parser.add_argument("--max-concurrent-runs", type=int, default=1)
    parser.add_argument("--effects", help="the side-effect database (default: DATABASE)")
    parser.add_argument("--busy-timeout", type=float, help="the engine's busy_timeout, seconds")
    parser.add_argument("--engine", help="the engine's database URL (default: DATABASE)")
    parser.add_argument("--checkpoint", choices=["each", "batched"], default="each")
    parser.add_argument("--checkpoint-max-steps", type=int, default=100)
    parser.add_argument("--checkpoint-max-delay", type=float, default=0.01)
    args = parser.parse_args()
    checkpoint = {
        "checkpoint": args.checkpoint,
        "checkpoint_max_steps": args.checkpoint_max_steps,
        "checkpoint_max_delay": args.checkpoint_max_delay,
    }
    print(f"worker {os.getpid()} starting", file=sys.stderr, flush=True)
    asyncio.run(
        work(
            args.database,
            args.expect,
            args.max_concurrent_runs,
            effects_path=args.effects,
            busy_timeout=args.busy_timeout,
            engine_url=args.engine,
            checkpoint=checkpoint,
        )
    )
    print(f"worker {os.getpid()} done", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
