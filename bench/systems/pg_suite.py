"""Systems ``durably_web_pg``, ``upstream_pg``, ``dbos_pg``: the PostgreSQL suite, across processes.

    pg_suite.py --system NAME --workload W --synchronous FULL|NORMAL --dir DIR --params '{...}'

Run by ``bench/run.py``, which starts one throwaway cluster (``scripts/postgres``) for the whole
run and exports its URL as ``DURABLY_BENCH_POSTGRES_URL`` (by hand: ``scripts/postgres start``
and export its ``URL``). Every phase of a workload runs on a fresh database of that server,
created with ``synchronous_commit`` = ``on`` for ``FULL`` (PostgreSQL's default: a commit
waits for its WAL flush, as SQLite's FULL waits for its fsync) or ``off`` for ``NORMAL`` (a
crash may lose the last commits, never consistency, as SQLite's WAL + NORMAL), and dropped
after. Prints the harness's one JSON result line (``benchlib``).

This process only orchestrates: each system's own code runs in *agents*, processes of that
system's runtime (``durably_pg_agent.py`` in the project's venv, ``bench/upstream_pg/agent.mjs``
on Node, ``dbos_pg_agent.py`` in DBOS's venv), one role each::

    <agent> --role client|worker|crash|resume --url URL [--concurrency C] [--params JSON]

- ``client``: migrates, says ``{"ready": info}``; for each command ``{"count": n, "input":
  {...}}`` on stdin triggers n runs of the ``bench`` job with its own API and says
  ``{"triggered": [ids], "t0": s, "t1": s}`` (wall clock before the first and after the last).
- ``worker``: migrates, says ``{"ready": info}``, then on ``{"start": true, "own_runs": k,
  "input": {...}}`` starts executing (up to C runs at once) and reports
  ``{"event": "start"|"complete"|"fail", "run": id, "t": s}`` per run; ``own_runs`` > 0 means
  it starts k runs itself first (DBOS, below). When stdin closes it stops and says
  ``{"bye": {"rss_peak_mb": ...}}``.
- ``crash``: triggers a ``steps``-step run and executes it until it SIGKILLs itself inside
  step ``crash_after``. ``resume``: times engine start → completion of that run, replaying
  its checkpoints, and says ``{"result": metrics, "info": info}``.

Times are wall-clock seconds (``time.time()`` / ``Date.now()``): every process reads the same
clock. The ``bench`` job: ``steps`` steps, each returning ``benchlib.step_value(i)``, after
awaiting ``sleep_ms`` if set. Workloads:

- ``pg_throughput``: ``runs`` runs triggered from a client process, then 1, 2 and 4 worker
  processes (one run at a time each) are started together; steps/s from the start command to
  the last completion. Per worker count, a fresh database.
- ``pg_latency``: one idle worker process (default polling), runs triggered one at a time from
  the client process: trigger call → start (the worker's ``run:start``; upstream
  ``run:leased``; DBOS the workflow body) and → complete, p50/p95.
- ``resume``: as in the SQLite suite (the crash in one process, the lease expired in SQL, the
  resume timed in a fresh one).
- ``pg_io``: ``runs`` runs whose steps each await ``sleep_ms``, 1 then 4 worker processes
  executing ``concurrency`` runs at once each; the scaling is 4 workers' steps/s ÷ 1 worker's.

DBOS has no trigger that another process's worker picks up without polling: ``DBOSClient``
enqueues on a DBOS queue, which workers poll (every second by default). The latency workload
uses that (it is how another process starts DBOS work); the drain workloads let each DBOS
worker start and run its share of the runs itself, as the SQLite suite runs DBOS, so DBOS is
measured at its fastest there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import benchlib
import psycopg
from bench_workloads import latency_metrics
from benchlib import Args

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
URL_VARIABLE = "DURABLY_BENCH_POSTGRES_URL"  # set by bench/run.py (setup_systems.POSTGRES_URL)
PHASE_TIMEOUT = 900.0  # seconds one phase may take before it is an error
WARM_UP = 2  # latency samples not counted: connections and plans warm up

_DURABLY_CHECKPOINTS = "SELECT COUNT(*) FROM durably_steps WHERE status = 'completed'"
_DURABLY_EXPIRE = "UPDATE durably_runs SET lease_expires_at = %s WHERE status = 'leased'"


@dataclass(frozen=True)
class PgSystem:
    """How to run one system's agents and inspect what its crash left behind.

    Attributes:
        name: the harness's system name.
        argv: the agent command, without ``--role`` and the rest.
        checkpoints_sql: counts the crashed run's completed steps.
        expire_sql: expires the crashed run's lease (``%s``: a time in the past), if needed.
        own_runs: workers start their share of the runs themselves (no client trigger).

    """

    name: str
    argv: list[str]
    checkpoints_sql: str
    expire_sql: str | None = None
    own_runs: bool = False


SYSTEMS = {
    system.name: system
    for system in (
        PgSystem(
            "durably_web_pg",
            [sys.executable, str(HERE / "durably_pg_agent.py")],
            _DURABLY_CHECKPOINTS,
            _DURABLY_EXPIRE,
        ),
        PgSystem(
            "upstream_pg",
            ["node", str(BENCH / "upstream_pg" / "agent.mjs")],
            _DURABLY_CHECKPOINTS,
            _DURABLY_EXPIRE,
        ),
        PgSystem(
            "dbos_pg",
            [str(BENCH / ".venv-dbos" / "bin" / "python"), str(HERE / "dbos_pg_agent.py")],
            "SELECT COUNT(*) FROM dbos.operation_outputs WHERE workflow_uuid = 'bench-resume'",
            own_runs=True,
        ),
    )
}


# -- databases ----------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(server_url: str, synchronous: str) -> Iterator[str]:
    """Create an empty database on the server for one phase; yield its URL; drop it after."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    commit = "on" if synchronous == "FULL" else "off"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = {commit}')
    parts = urlsplit(server_url)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_info(server_url: str) -> dict[str, Any]:
    """Return the server's version, for the record."""
    with psycopg.connect(server_url) as db:
        row = db.execute("SHOW server_version").fetchone()
    return {"postgresql": row[0] if row else None}


# -- agents -------------------------------------------------------------------------------


@dataclass
class Agent:
    """One agent process: commands to its stdin, replies and events from its stdout."""

    name: str
    proc: asyncio.subprocess.Process
    stderr_path: Path
    events: asyncio.Queue[dict[str, Any]]
    replies: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    reader: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode().strip()
            if not line.startswith("{"):
                continue  # a library's own output
            message = json.loads(line)
            if "event" in message:
                self.events.put_nowait({**message, "agent": self.name})
            else:
                self.replies.put_nowait(message)
        self.replies.put_nowait(None)
        self.events.put_nowait({"event": "exit", "agent": self.name})

    def failure(self, what: str) -> RuntimeError:
        """Return an error naming this agent, with the end of its stderr."""
        tail = self.stderr_path.read_text(errors="replace")[-2000:]
        return RuntimeError(f"{self.name}: {what}; stderr:\n{tail}")

    async def send(self, message: dict[str, Any]) -> None:
        """Write one command line."""
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        await self.proc.stdin.drain()

    async def reply(self, key: str, timeout: float = PHASE_TIMEOUT) -> dict[str, Any]:
        """Wait for the next reply, which must carry ``key``."""
        try:
            message = await asyncio.wait_for(self.replies.get(), timeout)
        except TimeoutError:
            raise self.failure(f"no {key!r} within {timeout:.0f} s") from None
        if message is None:
            raise self.failure(f"exited before saying {key!r}")
        if key not in message:
            raise self.failure(f"said {message} instead of {key!r}")
        return message

    async def close(self, timeout: float = 60.0) -> dict[str, Any] | None:
        """Close stdin (the agent stops), wait for it; return its ``bye``, if it said one."""
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise self.failure(f"did not stop within {timeout:.0f} s") from None
        if self.reader is not None:
            await self.reader
        bye = None
        while not self.replies.empty():
            message = self.replies.get_nowait()
            if message is not None and "bye" in message:
                bye = message["bye"]
        return bye


class Agents:
    """The agents of one phase: spawned together, their events on one queue, stopped together."""

    def __init__(self, system: PgSystem, url: str, workdir: str) -> None:
        self.system = system
        self.url = url
        self.workdir = Path(workdir)
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.all: list[Agent] = []
        self.spawned = 0
        self.info: dict[str, Any] = {}  # what the agents said about themselves (versions)

    async def spawn(
        self, role: str, concurrency: int = 1, params: dict[str, Any] | None = None
    ) -> Agent:
        """Start one agent; for ``client`` and ``worker``, wait until it says ``ready``."""
        name = f"{role}-{self.spawned}"
        self.spawned += 1  # before any await: agents spawned together get distinct names
        stderr_path = self.workdir / f"{name}.stderr"
        argv = [*self.system.argv, "--role", role, "--url", self.url]
        argv += ["--concurrency", str(concurrency), "--params", json.dumps(params or {})]
        with stderr_path.open("wb") as stderr:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                cwd=self.workdir,
            )
        agent = Agent(name, proc, stderr_path, self.events)
        agent.reader = asyncio.create_task(agent._read())
        self.all.append(agent)
        if role in ("client", "worker"):
            self.info.update((await agent.reply("ready"))["ready"])
        return agent

    async def workers(self, count: int, concurrency: int) -> list[Agent]:
        """Start ``count`` workers: the first alone (it migrates), the others together."""
        first = await self.spawn("worker", concurrency)
        rest = await asyncio.gather(*(self.spawn("worker", concurrency) for _ in range(count - 1)))
        return [first, *rest]

    async def next_event(self, timeout: float = PHASE_TIMEOUT) -> dict[str, Any]:
        """Return the next run event of any agent; an agent's exit or a failed run raises."""
        try:
            message = await asyncio.wait_for(self.events.get(), timeout)
        except TimeoutError:
            raise RuntimeError(f"{self.system.name}: no run event within {timeout:.0f} s") from None
        agent = next(a for a in self.all if a.name == message["agent"])
        if message["event"] == "exit":
            raise agent.failure("exited during the workload")
        if message["event"] == "fail":
            raise agent.failure(f"run {message['run']} failed: {message.get('error')}")
        return message

    async def close(self) -> list[dict[str, Any] | None]:
        """Stop every agent still running; return their ``bye`` messages."""
        byes = []
        for agent in self.all:
            if agent.proc.returncode is None:
                byes.append(await agent.close())
            else:
                with contextlib.suppress(Exception):
                    byes.append(await agent.close())
        return byes


@contextlib.asynccontextmanager
async def phase(
    system: PgSystem, server_url: str, args: Args, info: dict[str, Any]
) -> AsyncIterator[Agents]:
    """Yield a fresh database's agents; the agents and the database are gone afterwards."""
    with fresh_database(server_url, args.synchronous) as url:
        agents = Agents(system, url, args.dir)
        try:
            yield agents
        finally:
            for agent in agents.all:  # on an error, nobody waits for a stuck agent
                if agent.proc.returncode is None and agent.proc.stdin is not None:
                    agent.proc.stdin.close()
            await asyncio.wait_for(agents.close(), 120)
            info.update(agents.info)


# -- workloads ----------------------------------------------------------------------------


def _shares(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def drain(
    system: PgSystem,
    agents: Agents,
    runs: int,
    job_input: dict[str, Any],
    workers: int,
    concurrency: int,
) -> tuple[float, dict[str, Any]]:
    """Trigger ``runs`` runs, start ``workers`` workers together; return steps/s and facts.

    The clock runs from the start command to the last run's completion, as the workers report
    it. DBOS workers start their share of the runs themselves (see the module docstring).
    """
    crew = await agents.workers(workers, concurrency)
    if not system.own_runs:
        client = await agents.spawn("client")
        await client.send({"count": runs, "input": job_input})
        await client.reply("triggered")
    shares = _shares(runs, workers) if system.own_runs else [0] * workers
    started = time.time()
    for agent, share in zip(crew, shares, strict=True):
        await agent.send({"start": True, "own_runs": share, "input": job_input})
    ended, per_worker = started, dict.fromkeys((a.name for a in crew), 0)
    for _ in range(runs):
        message = await agents.next_event()
        while message["event"] != "complete":
            message = await agents.next_event()
        ended = max(ended, float(message["t"]))
        per_worker[message["agent"]] += 1
    byes = [await agent.close() for agent in crew]
    steps_per_s = runs * int(job_input["steps"]) / (ended - started)
    rss = [b["rss_peak_mb"] for b in byes if b is not None]
    return steps_per_s, {"runs_per_worker": list(per_worker.values()), "rss_peak_mb": max(rss)}


async def scaling(
    system: PgSystem,
    server_url: str,
    args: Args,
    info: dict[str, Any],
    job_input: dict[str, Any],
    concurrency: int,
) -> dict[str, Any]:
    """Drain ``runs`` runs with each worker count in ``params["workers"]``, fresh each time."""
    runs, counts = int(args.params["runs"]), [int(n) for n in args.params["workers"]]
    metrics: dict[str, Any] = {}
    for count in counts:
        async with phase(system, server_url, args, info) as agents:
            rate, facts = await drain(system, agents, runs, job_input, count, concurrency)
        metrics[f"steps_per_s_{count}w"] = rate
        info.setdefault("runs_per_worker", {})[f"{count}w"] = facts["runs_per_worker"]
        if count == counts[0]:
            metrics["rss_peak_mb"] = facts["rss_peak_mb"]
    base = metrics[f"steps_per_s_{counts[0]}w"]
    for count in counts[1:]:
        metrics[f"scaling_{count}w"] = metrics[f"steps_per_s_{count}w"] / base
    return metrics


async def pg_throughput(
    system: PgSystem, server_url: str, args: Args, info: dict[str, Any]
) -> dict[str, Any]:
    """Steps/s of ``runs`` x ``steps`` with 1, 2, 4 workers, one run at a time each."""
    job_input = {"steps": int(args.params["steps"])}
    return await scaling(system, server_url, args, info, job_input, concurrency=1)


async def pg_io(
    system: PgSystem, server_url: str, args: Args, info: dict[str, Any]
) -> dict[str, Any]:
    """Steps/s of ``runs`` x ``steps`` steps awaiting ``sleep_ms``, 1 then 4 workers."""
    job_input = {"steps": int(args.params["steps"]), "sleep_ms": float(args.params["sleep_ms"])}
    concurrency = int(args.params["concurrency"])
    return await scaling(system, server_url, args, info, job_input, concurrency)


async def pg_latency(
    system: PgSystem, server_url: str, args: Args, info: dict[str, Any]
) -> dict[str, Any]:
    """Trigger (client process) → start and → complete (worker process) of 1-step runs."""
    samples, gap_ms = int(args.params["samples"]), float(args.params["gap_ms"])
    rng = random.Random(1)
    to_start, to_complete, trigger_call = [], [], []
    async with phase(system, server_url, args, info) as agents:
        [worker] = await agents.workers(1, 1)
        client = await agents.spawn("client")
        await worker.send({"start": True, "own_runs": 0, "input": {}})
        for i in range(samples + WARM_UP):
            await asyncio.sleep(rng.uniform(0, gap_ms) / 1000)
            await client.send({"count": 1, "input": {"steps": 1}})
            reply = await client.reply("triggered")
            [run_id] = reply["triggered"]
            times: dict[str, float] = {}
            while "complete" not in times:
                message = await agents.next_event()
                if message["run"] == run_id:
                    times[message["event"]] = float(message["t"])
            if i >= WARM_UP:
                t0 = float(reply["t0"])
                trigger_call.append((float(reply["t1"]) - t0) * 1000)
                to_start.append((times["start"] - t0) * 1000)
                to_complete.append((times["complete"] - t0) * 1000)
    return latency_metrics(trigger_call, to_start, to_complete)


async def resume(
    system: PgSystem, server_url: str, args: Args, info: dict[str, Any]
) -> dict[str, Any]:
    """Time a fresh process resuming a run SIGKILLed after ``crash_after`` checkpoints."""
    crash_after = int(args.params["crash_after"])
    async with phase(system, server_url, args, info) as agents:
        crash = await agents.spawn("crash", params=args.params)
        code = await asyncio.wait_for(crash.proc.wait(), PHASE_TIMEOUT)
        if code != -signal.SIGKILL:
            raise crash.failure(f"the crash phase exited {code}, not by SIGKILL")
        with psycopg.connect(agents.url, autocommit=True) as db:
            row = db.execute(system.checkpoints_sql).fetchone()
            if row is None or row[0] != crash_after:
                raise RuntimeError(f"expected {crash_after} checkpoints, found {row}")
            if system.expire_sql is not None:
                db.execute(system.expire_sql, (benchlib.EXPIRED,))
        done = await agents.spawn("resume", params=args.params)
        reply = await done.reply("result")
    info.update(reply.get("info", {}))
    result: dict[str, Any] = reply["result"]
    return result


WORKLOADS = {
    "pg_throughput": pg_throughput,
    "pg_latency": pg_latency,
    "resume": resume,
    "pg_io": pg_io,
}


async def run_workload(system: PgSystem, args: Args) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one workload on the harness's server; return its metrics and facts."""
    server_url = os.environ.get(URL_VARIABLE)
    if not server_url:
        raise SystemExit(
            f"{URL_VARIABLE} is not set: bench/run.py starts a server and sets it "
            "(by hand: scripts/postgres start, then export its URL)"
        )
    info: dict[str, Any] = server_info(server_url)
    info["settings"] = "synchronous_commit=" + ("on" if args.synchronous == "FULL" else "off")
    metrics = await WORKLOADS[args.workload](system, server_url, args, info)
    return metrics, info


def main() -> None:
    """Run one workload of one PostgreSQL system once and print its result line."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--system", required=True, choices=list(SYSTEMS))
    known, rest = pre.parse_known_args()
    system = SYSTEMS[known.system]
    args = benchlib.parse_args(__doc__.splitlines()[0], list(WORKLOADS), rest)
    metrics, info = asyncio.run(run_workload(system, args))
    benchlib.emit(args, system.name, metrics, info)


if __name__ == "__main__":
    main()
