"""The ``dbos_pg`` agent: DBOS Transact for Python on its PostgreSQL system database.

Spawned by ``pg_suite.py`` (in ``bench/.venv-dbos``), which documents the agent protocol. A run
is a ``@DBOS.workflow`` and a step a ``@DBOS.step``, as in the SQLite suite
(``dbos_python.py``); DBOS's defaults otherwise (its pool, ``use_listen_notify``).

- ``client``: ``DBOSClient.enqueue`` on the queue ``bench`` (how another process starts DBOS
  work); the worker's queue is polled at DBOS's default interval (1 s).
- ``worker``: ``DBOS()`` + ``launch()`` with the queue ``bench`` (``worker_concurrency`` = the
  workload's concurrency); on ``start`` with ``own_runs`` = k it also starts k workflows itself
  with ``start_workflow`` + ``get_result``, ``concurrency`` at a time (the drain workloads:
  no queue polling between runs, DBOS's fastest path).
- ``crash`` / ``resume``: as ``dbos_python.py``: ``launch()`` recovers the pending workflow.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from typing import Any

import benchlib
import pg_agent
from dbos import DBOS, DBOSClient, SetWorkflowID
from pg_agent import AgentArgs

QUEUE = "bench"
WORKFLOW = "bench_workflow"
RESUMED = "bench-resume"  # the crashed workflow's id
OWN = "own-"  # the id prefix of workflows a worker started itself
_STATE: dict[str, Any] = {"crash_at": -1, "report": False}
_MARKS: dict[str, float] = {}


@DBOS.step()
def bench_step(i: int, sleep_ms: float) -> dict[str, Any]:
    """One benchmark step: sleeps ``sleep_ms`` if set; the crash, in the crash phase."""
    if sleep_ms:
        time.sleep(sleep_ms / 1000)
    if i == _STATE["crash_at"]:
        os.kill(os.getpid(), signal.SIGKILL)
    return benchlib.step_value(i)


@DBOS.workflow(name=WORKFLOW)
def bench_workflow(steps: int, sleep_ms: float = 0) -> int:
    """Run ``steps`` steps; report its start and end (worker role), note its start (resume).

    A dequeued workflow's end is reported as its body returns (its result is written just
    after); one this worker started itself is reported once ``get_result`` returns.
    """
    _MARKS.setdefault("started", time.perf_counter())
    workflow_id = DBOS.workflow_id
    if _STATE["report"]:
        pg_agent.event("start", workflow_id)
    for i in range(steps):
        bench_step(i, sleep_ms)
    if _STATE["report"] and not str(workflow_id).startswith(OWN):
        pg_agent.event("complete", workflow_id)
    return steps


def _launch(args: AgentArgs, executor_id: str | None = None) -> None:
    config: Any = {"name": "bench", "system_database_url": args.url, "log_level": "WARNING"}
    if executor_id is not None:
        config["executor_id"] = executor_id
    DBOS(config=config)
    DBOS.launch()


def _info() -> dict[str, Any]:
    return {
        "version": version("dbos"),
        "python": sys.version.split()[0],
        "sqlalchemy": version("sqlalchemy"),
        "psycopg": version("psycopg"),
        "queue_polling_interval_s": 1.0,
    }


def client(args: AgentArgs) -> None:
    """Enqueue workflows when told to, from this process."""
    dbos = DBOSClient(system_database_url=args.url)
    pg_agent.say({"ready": _info()})
    options: Any = {"queue_name": QUEUE, "workflow_name": WORKFLOW}
    while (command := pg_agent.read_command()) is not None:
        job = command["input"]
        t0 = pg_agent.now()
        ids = [
            dbos.enqueue(options, int(job["steps"]), float(job.get("sleep_ms", 0))).workflow_id
            for _ in range(command["count"])
        ]
        pg_agent.say({"triggered": ids, "t0": t0, "t1": pg_agent.now()})
    dbos.destroy()


def worker(args: AgentArgs) -> None:
    """Run workflows (dequeued, or started here when told to) until stdin closes."""
    _STATE["report"] = True
    # Its own executor id: a worker's launch recovers only its own pending workflows.
    _launch(args, executor_id=f"bench-worker-{os.getpid()}")
    DBOS.register_queue(QUEUE, worker_concurrency=args.concurrency)
    pg_agent.say({"ready": _info()})
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        while (command := pg_agent.read_command()) is not None:
            job = command["input"]
            for _ in range(int(command.get("own_runs", 0))):
                pool.submit(_run_one, int(job["steps"]), float(job.get("sleep_ms", 0)))
    DBOS.destroy()
    pg_agent.say({"bye": {"rss_peak_mb": benchlib.peak_rss_mb()}})


def _run_one(steps: int, sleep_ms: float) -> None:
    workflow_id = f"{OWN}{uuid.uuid4()}"
    try:
        with SetWorkflowID(workflow_id):
            handle = DBOS.start_workflow(bench_workflow, steps, sleep_ms)
        handle.get_result()
    except Exception as exc:  # noqa: BLE001 - reported, not lost in the pool
        pg_agent.event("fail", workflow_id, error=repr(exc))
    else:
        pg_agent.event("complete", workflow_id)


def crash(args: AgentArgs) -> None:
    """Run the long workflow until it kills itself inside step ``crash_after``."""
    _STATE["crash_at"] = int(args.params["crash_after"])
    _launch(args)
    with SetWorkflowID(RESUMED):
        DBOS.start_workflow(bench_workflow, int(args.params["steps"])).get_result()
    raise RuntimeError("the crash phase did not crash")


def resume(args: AgentArgs) -> None:
    """DBOS() + launch() (which recovers the pending workflow) → its result."""
    steps, crash_after = int(args.params["steps"]), int(args.params["crash_after"])
    started = time.perf_counter()
    _launch(args)
    DBOS.retrieve_workflow(RESUMED).get_result()
    ended = time.perf_counter()
    DBOS.destroy()
    result = {
        "resume_s": ended - started,
        "claim_to_complete_s": ended - _MARKS["started"],
        "replayed_steps": crash_after,
        "new_steps": steps - crash_after,
    }
    pg_agent.say({"result": result, "info": _info()})


ROLES = {"client": client, "worker": worker, "crash": crash, "resume": resume}

if __name__ == "__main__":
    agent_args = pg_agent.parse_args(__doc__.splitlines()[0], list(ROLES))
    ROLES[agent_args.role](agent_args)
