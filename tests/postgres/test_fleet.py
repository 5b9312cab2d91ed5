"""Four worker processes on one PostgreSQL database: 2,000 runs, 100 SIGKILLs and a restart.

The workers stand in for four machines: ``durably-web worker URL --jobs
tests.postgres.fleet_jobs`` processes, 4 runs at once each, running a mix of the crash tests'
jobs (many-step runs with outputs to check, runs that log and report progress, runs sharing
concurrency keys, and runs that SIGKILL their own worker between their last checkpoint and
their outcome). While they work, 100 random SIGKILLs hit them (each replaced at once, as a
supervisor would), and halfway through the server restarts (``pg_ctl restart -m fast``: every
connection drops). Then:

- every run completed, with the right output;
- no run was ever leased by two workers at once: a trigger on ``durably_runs`` records, at
  each claim, the lease it replaced; a replaced lease must have expired by the claim's time
  (or been released), and each claim raises the generation by exactly one;
- no run executed in two processes at once, and no two runs of one concurrency key at once
  (step intervals recorded by the jobs);
- no completed step ran again: no side effect happened after its step's checkpoint was
  stored, and every repeated execution is the step in flight when its worker was killed.

It prints its totals (``pytest -s`` shows them). Set ``CRASH_SEED`` to replay a seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from durably_web import Durably, create_durably
from tests.acceptance.crash_harness import (
    Interval,
    double_executions,
    overlapping,
    read_effects,
    seeded_rng,
)
from tests.acceptance.crash_worker import JOBS, create_tables, step_value
from tests.postgres.fleet_jobs import EFFECTS_VARIABLE, ENGINE_VARIABLE, UNCHECKED
from tests.postgres.server import PostgresServer

ROOT = Path(__file__).resolve().parents[2]
RUNS = 2000
WORKERS = 4
KILLS = 100
RESTART_AT_KILL = 50
KEYS = ("k1", "k2", "k3", "k4")
KEYED_JOBS = ("interval_a", "interval_b")
KEYED_WAVES = 12
"""Runs per (job, key): triggered one after the other, each once the previous one left pending."""
LEASE_DURATION = 5.0
"""Longer than the restart takes, so no live worker loses its lease to it."""
DEADLINE = 900.0

AUDIT = """
CREATE TABLE fleet_claims (
  id bigserial PRIMARY KEY,
  run_id text NOT NULL,
  old_status text NOT NULL,
  old_owner text,
  old_generation integer NOT NULL,
  old_expires_at text,
  new_owner text,
  new_generation integer NOT NULL,
  claimed_at text NOT NULL
);
CREATE FUNCTION fleet_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO fleet_claims (run_id, old_status, old_owner, old_generation, old_expires_at,
                            new_owner, new_generation, claimed_at)
  VALUES (NEW.id, OLD.status, OLD.lease_owner, OLD.lease_generation, OLD.lease_expires_at,
          NEW.lease_owner, NEW.lease_generation, NEW.updated_at);
  RETURN NEW;
END $$;
CREATE TRIGGER fleet_audit AFTER UPDATE ON durably_runs FOR EACH ROW
WHEN (NEW.lease_generation IS DISTINCT FROM OLD.lease_generation)
EXECUTE FUNCTION fleet_audit();
"""


@dataclass
class Totals:
    """What the test did and saw."""

    seed: int
    runs: int = 0
    runs_by_job: dict[str, int] = field(default_factory=dict)
    kills: int = 0
    self_kills: int = 0
    exits_during_restart: int = 0
    workers_started: int = 0
    restarts: int = 0
    claims: int = 0
    reclaims_after_expiry: int = 0
    step_executions: int = 0
    reexecutions_in_flight: int = 0
    effects_unchecked: int = 0
    """Side effects whose checkpoint the job could not look up (the server was restarting)."""
    seconds: float = 0.0


class Fleet:
    """The worker processes: started, killed at random, replaced."""

    def __init__(self, url: str, effects: Path, logs: Path, totals: Totals) -> None:
        self.url = url
        self.env = {**os.environ, EFFECTS_VARIABLE: str(effects), ENGINE_VARIABLE: url}
        self.logs = logs
        self.totals = totals
        self.live: list[subprocess.Popen[bytes]] = []
        self.dead: set[int] = set()  # pids that ended by a SIGKILL, ours or their own
        self.log_of: dict[int, Path] = {}
        self.restarting_until = 0.0
        """Until then a worker starting may find the server down, exit 1 and be replaced."""

    def spawn(self) -> None:
        path = self.logs / f"worker-{self.totals.workers_started}.log"
        log = path.open("wb")
        command = [sys.executable, "-m", "durably_web", "worker", self.url]
        command += ["--jobs", "tests.postgres.fleet_jobs", "--concurrency", "4"]
        command += ["--lease-duration", str(LEASE_DURATION), "--polling-interval", "0.2"]
        with log:
            process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log)
        self.live.append(process)
        self.log_of[process.pid] = path
        self.totals.workers_started += 1

    def replace_the_dead(self) -> None:
        """Account for workers that ended by themselves; start new ones.

        A run of ``die-before-outcome`` SIGKILLs its worker; a worker started while the server
        was down for the restart exits 1 saying it cannot connect. Nothing else may end one.
        """
        for process in [p for p in self.live if p.poll() is not None]:
            self.live.remove(process)
            output = self.log_of[process.pid].read_text(errors="replace")
            if process.returncode == -signal.SIGKILL:
                self.dead.add(process.pid)
                self.totals.self_kills += 1
            elif (
                process.returncode == 1
                and time.monotonic() < self.restarting_until
                and "cannot connect to PostgreSQL" in output
            ):
                self.totals.exits_during_restart += 1
            else:
                raise AssertionError(f"worker {process.pid} exited {process.returncode}:\n{output}")
        while len(self.live) < WORKERS:
            self.spawn()

    def kill_one(self, rng: random.Random) -> None:
        process = rng.choice(self.live)
        self.live.remove(process)
        process.kill()
        process.wait()
        self.dead.add(process.pid)
        self.totals.kills += 1

    def stop(self) -> list[int | None]:
        """SIGTERM every worker; return their exit codes."""
        for process in self.live:
            process.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for process in self.live:
            try:
                codes.append(process.wait(30))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(None)
        return codes


@contextlib.contextmanager
def reaping(fleet: Fleet) -> Iterator[None]:
    try:
        yield
    finally:
        for process in fleet.live:
            if process.poll() is None:
                process.kill()
                process.wait()


def count_completed(url: str) -> int:
    """Count the completed runs; -1 while the server restarts."""
    try:
        with psycopg.connect(url) as connection:
            row = connection.execute(
                "SELECT count(*) FROM durably_runs WHERE status = 'completed'"
            ).fetchone()
    except psycopg.OperationalError:
        return -1
    assert row is not None
    return int(row[0])


async def trigger_unkeyed(durably: Durably, rng: random.Random, count: int) -> dict[str, Any]:
    """Trigger ``count`` runs of the unkeyed jobs; return what each must output, by run id."""
    expected: dict[str, Any] = {}
    for _ in range(count):
        kind = rng.choices(
            ["crash_steps", "chatty", "interval", "die_before_outcome"], [55, 30, 14, 1]
        )[0]
        steps, sleep = rng.randint(3, 8), rng.uniform(0.002, 0.01)
        if kind == "crash_steps":
            seed = rng.randrange(1_000_000)
            run = await durably.jobs.crash_steps.trigger(
                {"steps": steps, "seed": seed, "sleep": sleep}
            )
            output: Any = {"count": steps, "total": sum(step_value(seed, i) for i in range(steps))}
        elif kind == "chatty":
            run = await durably.jobs.chatty.trigger({"steps": steps, "sleep": sleep})
            output = {"count": steps}
        elif kind == "interval":
            job = rng.choice(KEYED_JOBS)
            run = await durably.jobs[job].trigger({"key": None, "steps": steps, "sleep": sleep})
            output = {"steps": steps}
        else:
            run = await durably.jobs.die_before_outcome.trigger({"steps": steps})
            output = {"count": steps, "total": sum(range(steps))}
        expected[run.id] = output
    return expected


async def trigger_keyed_wave(
    durably: Durably, wanted: dict[tuple[str, str], int], expected: dict[str, Any]
) -> None:
    """Trigger the next run of each (job, key) whose previous one left pending."""
    for (job, key), left in wanted.items():
        if not left:
            continue
        try:
            run = await durably.jobs[job].trigger(
                {"key": key, "steps": 3, "sleep": 0.005}, concurrency_key=key, coalesce="skip"
            )
        except Exception:  # noqa: BLE001 - the server is restarting: the next wave triggers it
            return
        if run.disposition == "created":
            expected[run.id] = {"steps": 3}
            wanted[job, key] = left - 1


def unfinished(url: str, wanted: dict[tuple[str, str], int]) -> str:
    """What keeps the test waiting: the runs not completed yet, for the failure message."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT id, job_name, status, lease_owner, lease_expires_at, lease_generation, "
            "concurrency_key, error FROM durably_runs WHERE status <> 'completed' "
            "ORDER BY created_at LIMIT 10"
        ).fetchall()
        counts = connection.execute(
            "SELECT status, count(*) FROM durably_runs GROUP BY status"
        ).fetchall()
    left = {key: n for key, n in wanted.items() if n}
    return f"by status {dict(counts)}, keyed runs still to trigger {left}, first: {rows}"


def lease_problems(url: str, totals: Totals) -> list[str]:
    """Explain every claim that took a lease another worker still held."""
    with psycopg.connect(url) as connection:
        claims = connection.execute(
            "SELECT run_id, old_status, old_owner, old_generation, old_expires_at, new_owner, "
            "new_generation, claimed_at FROM fleet_claims ORDER BY id"
        ).fetchall()
    problems = []
    for run_id, status, owner, generation, expires, new_owner, new_generation, at in claims:
        totals.claims += 1
        if new_generation != generation + 1:
            problems.append(f"{run_id}: generation {generation} -> {new_generation}")
        if status == "leased":
            totals.reclaims_after_expiry += 1
            if expires is None or expires > at:
                problems.append(
                    f"{run_id}: claimed by {new_owner} at {at} while {owner} held it until "
                    f"{expires} (generation {generation})"
                )
        elif status != "pending":
            problems.append(f"{run_id}: claimed from status {status}")
    return problems


@pytest.mark.slow
async def test_four_workers_2000_runs_100_kills_and_a_server_restart(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    rng, seed = seeded_rng()
    totals = Totals(seed=seed)
    started = time.monotonic()
    effects_path = tmp_path / "effects.db"
    create_tables(str(effects_path))
    durably = create_durably(postgres_url, jobs=JOBS)
    await durably.migrate()
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(AUDIT)

    wanted = {(job, key): KEYED_WAVES for job in KEYED_JOBS for key in KEYS}
    keyed = sum(wanted.values())
    expected = await trigger_unkeyed(durably, rng, RUNS - keyed)
    await trigger_keyed_wave(durably, wanted, expected)

    (tmp_path / "logs").mkdir()
    fleet = Fleet(postgres_url, effects_path, tmp_path / "logs", totals)
    deadline = started + DEADLINE
    with reaping(fleet):
        fleet.replace_the_dead()
        restart: asyncio.Task[None] | None = None
        while totals.kills < KILLS:
            assert time.monotonic() < deadline, (
                f"only {totals.kills} kills in time, seed {seed}: {unfinished(postgres_url, wanted)}"
            )
            await trigger_keyed_wave(durably, wanted, expected)
            # Spread the kills over the first 90% of the runs.
            due = (totals.kills + 1) * RUNS * 0.9 / KILLS
            if await asyncio.to_thread(count_completed, postgres_url) < due:
                await asyncio.sleep(0.05)
                fleet.replace_the_dead()
                continue
            await asyncio.sleep(rng.uniform(0.0, 0.1))  # anywhere in a step or a checkpoint
            fleet.replace_the_dead()
            fleet.kill_one(rng)
            fleet.replace_the_dead()
            if totals.kills == RESTART_AT_KILL:
                fleet.restarting_until = float("inf")
                restart = asyncio.create_task(asyncio.to_thread(postgres_server.restart))
                restart.add_done_callback(
                    lambda _: setattr(fleet, "restarting_until", time.monotonic() + 5.0)
                )
        assert restart is not None
        await restart
        totals.restarts = 1
        while await asyncio.to_thread(count_completed, postgres_url) < len(expected) or any(
            wanted.values()
        ):
            assert time.monotonic() < deadline, (
                f"runs did not finish, seed {seed}: {unfinished(postgres_url, wanted)}; "
                f"worker logs in {tmp_path / 'logs'}"
            )
            await trigger_keyed_wave(durably, wanted, expected)
            fleet.replace_the_dead()
            await asyncio.sleep(0.2)
        codes = fleet.stop()
    assert codes == [0] * WORKERS, codes

    totals.runs = len(expected)
    runs = await durably.get_runs(limit=RUNS + 1)
    totals.runs_by_job = dict(Counter(run.job_name for run in runs))
    assert len(runs) == RUNS == totals.runs
    wrong = [
        (run.id, run.status, run.output, expected[run.id])
        for run in runs
        if run.status != "completed" or run.output != expected[run.id]
    ]
    assert wrong == [], wrong[:5]
    await durably.close()

    problems = lease_problems(postgres_url, totals)
    with closing(sqlite3.connect(effects_path)) as effects:
        executions = read_effects(effects)
        after_checkpoint = effects.execute(
            "SELECT run_id, step_name, pid FROM side_effects WHERE after_checkpoint = 1"
        ).fetchall()
        intervals = [
            Interval(*row)
            for row in effects.execute(
                "SELECT run_id, concurrency_key, step_name, pid, t_start, t_end FROM intervals"
            )
        ]
    kills = totals.kills + totals.self_kills
    problems += double_executions(executions, fleet.dead, kills)
    problems += [
        f"{run}/{step} ran in {pid} after its checkpoint" for run, step, pid in after_checkpoint
    ]
    problems += overlapping(intervals)
    steps = Counter((e.run_id, e.step) for e in executions)
    totals.step_executions = len(executions)
    totals.reexecutions_in_flight = sum(n - 1 for n in steps.values())
    totals.effects_unchecked = sum(
        log.read_text(errors="replace").count(UNCHECKED) for log in fleet.log_of.values()
    )
    totals.seconds = round(time.monotonic() - started, 1)
    print(f"\nfleet totals: {totals}")
    assert problems == [], problems[:10]
    assert totals.kills == KILLS and totals.restarts == 1
    assert totals.reclaims_after_expiry > 0  # the kills did leave leases to reclaim
