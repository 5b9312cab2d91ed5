"""The ``durably_web_pg`` agent: this project on PostgreSQL, one role per process.

Spawned by ``pg_suite.py``, which documents the agent protocol (roles, JSON lines on stdin and
stdout). Defaults as in the SQLite suite: ``polling_interval=1.0``, 30 s leases; the worker's
``max_concurrent_runs`` is the workload's ``concurrency``. Each role runs on the event loop
``durably-web worker`` picks by default (``--loop auto``: uvloop when it is installed, as it
is in the project's dev environment); ``DURABLY_BENCH_LOOP=asyncio`` forces asyncio's own.
The loop used is in the agent's ``info``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from importlib.metadata import version
from typing import Any

import bench_workloads
import benchlib
import pg_agent
from pg_agent import AgentArgs

from durably_web import Durably, StepContext, create_durably, define_job
from durably_web.cli import eventloop

_LOOP = os.environ.get("DURABLY_BENCH_LOOP", "auto")

_CRASH = {"at": -1}  # set by the crash role: the step that kills the process


@define_job(name="bench-steps", input=dict)
async def bench_steps(step: StepContext, payload: dict[str, Any]) -> int:
    """Run ``payload["steps"]`` checkpointed steps; each awaits ``sleep_ms`` first if set."""
    steps, sleep_ms = int(payload["steps"]), float(payload.get("sleep_ms", 0))
    for i in range(steps):
        if sleep_ms:
            await step.run(f"step-{i}", lambda i=i: _sleepy_step(i, sleep_ms))
        else:
            await step.run(f"step-{i}", lambda i=i: _step(i))
    return steps


def _step(i: int) -> dict[str, Any]:
    if i == _CRASH["at"]:
        os.kill(os.getpid(), signal.SIGKILL)
    return benchlib.step_value(i)


async def _sleepy_step(i: int, sleep_ms: float) -> dict[str, Any]:
    await asyncio.sleep(sleep_ms / 1000)
    return benchlib.step_value(i)


def _engine(args: AgentArgs) -> Durably:
    return create_durably(
        args.url, jobs={"bench": bench_steps}, max_concurrent_runs=args.concurrency
    )


def _info() -> dict[str, Any]:
    return {
        "version": version("durably-web"),
        "python": sys.version.split()[0],
        "psycopg": version("psycopg"),
        "polling_interval_s": 1.0,
        "loop": eventloop.loop_name(_LOOP),
    }


async def client(args: AgentArgs) -> None:
    """Trigger runs when told to, from this process."""
    durably = _engine(args)
    await durably.migrate()
    pg_agent.say({"ready": _info()})
    while (command := await pg_agent.command()) is not None:
        t0 = pg_agent.now()
        ids = [
            (await durably.jobs.bench.trigger(command["input"])).id for _ in range(command["count"])
        ]
        pg_agent.say({"triggered": ids, "t0": t0, "t1": pg_agent.now()})
    await durably.close()


async def worker(args: AgentArgs) -> None:
    """Execute runs once told to start, reporting each start and end, until stdin closes."""
    durably = _engine(args)
    durably.on("run:start", lambda e: pg_agent.event("start", e.run_id))
    durably.on("run:complete", lambda e: pg_agent.event("complete", e.run_id))
    durably.on("run:fail", lambda e: pg_agent.event("fail", e.run_id, error=e.error))
    await durably.migrate()
    pg_agent.say({"ready": _info()})
    while (command := await pg_agent.command()) is not None:
        if command.get("own_runs"):
            raise RuntimeError("durably_web workers run triggered runs, not runs of their own")
        durably.start()
    await durably.close()
    pg_agent.say({"bye": {"rss_peak_mb": benchlib.peak_rss_mb()}})


async def crash(args: AgentArgs) -> None:
    """Run the long job until it kills itself inside step ``crash_after``."""
    _CRASH["at"] = int(args.params["crash_after"])
    durably = _engine(args)
    await durably.migrate()
    await durably.jobs.bench.trigger({"steps": int(args.params["steps"])})
    await durably.process_one()
    raise RuntimeError("the crash phase did not crash")


async def resume(args: AgentArgs) -> None:
    """Time engine creation → completion of the run the crash left behind."""
    steps, crash_after = int(args.params["steps"]), int(args.params["crash_after"])
    metrics = await bench_workloads.resume(
        lambda: _engine(args), lambda durably: durably.init(), steps, crash_after
    )
    pg_agent.say({"result": metrics, "info": _info()})


ROLES = {"client": client, "worker": worker, "crash": crash, "resume": resume}

if __name__ == "__main__":
    args = pg_agent.parse_args(__doc__.splitlines()[0], list(ROLES))
    eventloop.run(ROLES[args.role](args), _LOOP)
