"""The fault campaign: random SIGKILLs of worker processes, full disks and held locks.

One SQLite file, 1-4 CPython worker processes (``crash_worker.py``) running a mix of jobs (many
steps, logs and progress, runs that must fail, shared concurrency keys, a run that kills its
own process between its last checkpoint and its outcome), and:

- ``--kills`` SIGKILLs, each of a random worker at a random moment once it has started
  working; the pool size is drawn again every few kills;
- ``--disk-full`` intervals: the database lives on a small tmpfs, filled to the last byte for
  0.5-2.5 s (SQLite then fails every write with "database or disk is full");
- ``--lock-held`` intervals: another connection holds the write lock for 0.5-3 s, longer
  than the workers' 0.5 s ``busy_timeout``.

Then the faults stop, fresh workers finish the queue, and the campaign checks that every run
ended (completed, or failed where the job fails on purpose), that no step function ran again
after its checkpoint was committed (each side-effect row says whether the checkpoint was
there when the step started, and :func:`~tests.acceptance.crash_harness.double_executions`
checks the execution order), that completed runs have the right outputs, and that
``PRAGMA integrity_check`` is ``ok``. It prints the totals, and writes them as JSON with
``--json``. Exit status 0 when every check passed, 1 otherwise.

Run it from the repository root::

    .venv/bin/python -m tests.acceptance.fault_campaign --kills 1000            # ~10 min
    .venv/bin/python -m tests.acceptance.fault_campaign --kills 30 --seed 7     # a sample

The tmpfs is mounted in a private mount namespace of the campaign: as root directly, or else
through ``unshare --map-root-user`` (util-linux; unprivileged user namespaces must be
enabled). ``--disk-full 0`` needs neither. ``tests/acceptance/test_fault_campaign.py`` runs a
short sample in the default test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from durably_web import Durably, DurablyError, create_durably
from tests.acceptance.crash_harness import (
    WorkerProcess,
    double_executions,
    read_effects,
)
from tests.acceptance.crash_worker import (
    JOBS,
    OUTCOME_KILL,
    create_tables,
    doomed_error,
    step_value,
)

_NAMESPACE_ENV = "DURABLY_FAULT_CAMPAIGN_NAMESPACE"
TMPFS_SIZE = "64m"
BUSY_TIMEOUT = 0.5
"""The workers' ``busy_timeout``: the lock-held intervals outlast it."""
MATURE_AFTER = 2.0
"""Seconds after which a worker that has done nothing yet may be killed anyway."""
TERMINAL = ("completed", "failed", "cancelled")


@dataclass
class Settings:
    """What to run: see ``--help``."""

    kills: int = 1000
    max_workers: int = 4
    disk_full: int = 10
    lock_held: int = 10
    seed: int = 0
    work_dir: Path | None = None
    keep: bool = False
    drain_timeout: float = 600.0


@dataclass
class Expected:
    """What a run the campaign triggered must end as."""

    job: str
    status: str
    output: Any = None
    error: str | None = None


@dataclass
class Totals:
    """What the campaign did and found; ``problems`` empty means every check passed."""

    seed: int
    kills: int = 0
    self_kills: int = 0
    workers_started: int = 0
    exits_during_disk_full: int = 0
    exits_on_held_lock: int = 0
    disk_full_intervals: int = 0
    lock_held_intervals: int = 0
    runs: int = 0
    runs_by_job: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    step_executions: int = 0
    steps_checkpointed: int = 0
    reexecutions_in_flight: int = 0
    reexecutions_after_checkpoint: int = 0
    lost_runs: int = 0
    runs_failed_by_faults: int = 0
    fault_failures: dict[str, int] = field(default_factory=dict)
    wrong_outcomes: int = 0
    integrity_check: str = ""
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


# -- the faults ------------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(directory: Path) -> Iterator[None]:
    """Mount a small tmpfs on ``directory`` (in this process's own mount namespace)."""
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(directory)],
        check=True,
        capture_output=True,
    )
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False, capture_output=True)


def fill_disk(directory: Path, seconds: float) -> None:
    """Fill the file system of ``directory`` for ``seconds``, keeping it full; then free it."""
    path = directory / "filler"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    until = time.monotonic() + seconds
    try:
        while time.monotonic() < until:
            for size in (1 << 20, 1 << 12, 1):  # to the last byte
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, b"\0" * size)
            time.sleep(0.02)  # top up whatever a checkpoint or a deletion freed
    finally:
        os.close(fd)
        path.unlink()


def hold_lock(database: Path, seconds: float) -> None:
    """Hold the database's write lock for ``seconds`` from a connection of our own."""
    db = sqlite3.connect(database, timeout=60, isolation_level=None)
    try:
        db.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        db.execute("ROLLBACK")
    finally:
        db.close()


# -- the campaign ----------------------------------------------------------------------------


class Campaign:
    """One campaign run in ``directory``; see the module docstring."""

    def __init__(self, settings: Settings, directory: Path) -> None:
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.directory = directory
        self.disk = directory / "disk"
        self.database = self.disk / "campaign.db"
        self.effects_path = directory / "effects.db"
        self.logs = directory / "logs"
        self.totals = Totals(seed=settings.seed)
        self.expected: dict[str, Expected] = {}
        self.live: list[WorkerProcess] = []
        self.ended_abnormally: set[int] = set()
        self.killed: set[int] = set()
        self.disk_full_until = 0.0
        self.lock_held_until = 0.0
        self.faults: set[asyncio.Task[None]] = set()
        self.active_faults: set[str] = set()
        self.last_spawn = 0.0
        self.durably: Durably | None = None
        self.effects: sqlite3.Connection | None = None
        self.draining = False

    # -- workers --------------------------------------------------------------------------

    def spawn(self, expect: int) -> WorkerProcess:
        worker = WorkerProcess(
            self.database,
            self.logs / f"worker-{self.totals.workers_started}.log",
            expect=expect,
            max_concurrent_runs=self.rng.randint(1, 3),
            extra=["--effects", str(self.effects_path), "--busy-timeout", str(BUSY_TIMEOUT)],
        )
        self.totals.workers_started += 1
        self.live.append(worker)
        return worker

    def may_spawn(self) -> bool:
        """While the disk is full, restart stopped workers slowly, as a supervisor would."""
        if "disk" in self.active_faults and time.monotonic() - self.last_spawn < 0.5:
            return False
        self.last_spawn = time.monotonic()
        return True

    def reap(self) -> None:
        """Account for workers that ended by themselves (not by one of our kills)."""
        for worker in [w for w in self.live if not w.running]:
            self.live.remove(worker)
            code = worker.process.returncode
            worker.kill()  # closes its log
            if code == 0 and not self.draining:
                self.problem(f"worker {worker.pid} exited 0 during the campaign")
            if code == 0:
                continue
            self.ended_abnormally.add(worker.pid)
            if self.killed_itself(worker.pid):
                self.totals.self_kills += 1
            elif time.monotonic() < self.disk_full_until + 5.0:
                self.totals.exits_during_disk_full += 1
            elif time.monotonic() < self.lock_held_until + 5.0:
                self.totals.exits_on_held_lock += 1
            else:
                self.problem(
                    f"worker {worker.pid} exited with {code} outside any fault:\n"
                    f"{worker.output()[-1500:]}"
                )

    def killed_itself(self, pid: int) -> bool:
        assert self.effects is not None
        row = self.effects.execute(
            "SELECT 1 FROM side_effects WHERE pid = ? AND step_name = ?", (pid, OUTCOME_KILL)
        ).fetchone()
        return row is not None

    def mature(self, worker: WorkerProcess) -> bool:
        assert self.effects is not None
        if time.monotonic() - worker.started_at > MATURE_AFTER:
            return True
        row = self.effects.execute(
            "SELECT 1 FROM side_effects WHERE pid = ? LIMIT 1", (worker.pid,)
        ).fetchone()
        return row is not None

    def kill(self, worker: WorkerProcess) -> None:
        self.live.remove(worker)
        if worker.kill():
            self.killed.add(worker.pid)
            self.ended_abnormally.add(worker.pid)
            self.totals.kills += 1
        else:  # it ended by itself just before: account for it as such
            self.live.append(worker)
            self.reap()

    # -- runs -----------------------------------------------------------------------------

    async def trigger_one(self) -> None:
        assert self.durably is not None
        rng = self.rng
        kind = rng.choices(
            ["crash_steps", "chatty", "doomed", "interval", "die_before_outcome"],
            weights=[40, 25, 15, 15, 5],
        )[0]
        sleep = rng.uniform(0.002, 0.02)
        steps = rng.randint(5, 60)
        if kind == "crash_steps":
            seed = rng.randrange(1_000_000)
            total = sum(step_value(seed, i) for i in range(steps))
            run = await self.durably.jobs.crash_steps.trigger(
                {"steps": steps, "seed": seed, "sleep": sleep}
            )
            expected = Expected("crash-steps", "completed", {"count": steps, "total": total})
        elif kind == "chatty":
            run = await self.durably.jobs.chatty.trigger({"steps": steps, "sleep": sleep})
            expected = Expected("chatty", "completed", {"count": steps})
        elif kind == "doomed":
            fail_at = rng.randrange(steps)
            run = await self.durably.jobs.doomed.trigger(
                {"steps": steps, "fail_at": fail_at, "sleep": sleep}
            )
            expected = Expected("doomed", "failed", error=doomed_error(fail_at))
        elif kind == "interval":
            key = rng.choice(["k1", "k2", "k3", None])
            job = rng.choice(["interval_a", "interval_b"])
            run = await self.durably.jobs[job].trigger(
                {"key": key, "steps": steps // 2 + 1, "sleep": sleep},
                concurrency_key=key,
                coalesce="skip" if key else None,
            )
            expected = Expected(run.job_name, "completed", {"steps": steps // 2 + 1})
        else:
            steps = rng.randint(1, 5)
            run = await self.durably.jobs.die_before_outcome.trigger({"steps": steps})
            expected = Expected(
                "die-before-outcome", "completed", {"count": steps, "total": sum(range(steps))}
            )
        if run.disposition == "created":
            self.expected[run.id] = expected

    async def top_up(self) -> None:
        """Keep enough runs queued that every worker has something to be killed in."""
        assert self.durably is not None
        try:
            active = await self.durably.get_runs(status=["pending", "leased"])
            for _ in range(2 * self.settings.max_workers + 2 - len(active)):
                await self.trigger_one()
        except DurablyError:
            pass  # the disk is full or the lock held: the next round triggers them

    # -- faults ---------------------------------------------------------------------------

    def start_fault(self, kind: str) -> None:
        """Start a disk-full (``"disk"``) or lock-held (``"lock"``) interval in the background."""

        async def disk_full() -> None:
            seconds = self.rng.uniform(0.5, 2.5)
            self.disk_full_until = time.monotonic() + seconds + 1.0
            self.totals.disk_full_intervals += 1
            await asyncio.to_thread(fill_disk, self.disk, seconds)
            self.disk_full_until = time.monotonic()

        async def lock_held() -> None:
            seconds = self.rng.uniform(0.5, 3.0)
            self.lock_held_until = time.monotonic() + seconds + 60.0  # until it is taken
            self.totals.lock_held_intervals += 1
            await asyncio.to_thread(hold_lock, self.database, seconds)
            self.lock_held_until = time.monotonic()

        async def guarded() -> None:
            self.active_faults.add(kind)
            try:
                await (disk_full() if kind == "disk" else lock_held())
            except Exception as exc:  # noqa: BLE001 - a broken fault is the campaign's failure
                self.problem(f"the {kind} fault failed: {type(exc).__name__}: {exc}")
            finally:
                self.active_faults.discard(kind)

        task = asyncio.ensure_future(guarded())
        self.faults.add(task)
        task.add_done_callback(self.faults.discard)

    # -- the phases -----------------------------------------------------------------------

    async def kill_phase(self) -> None:
        settings, rng = self.settings, self.rng
        schedule = sorted(
            [(k, "disk") for k in rng.sample(range(1, settings.kills), settings.disk_full)]
            + [(k, "lock") for k in rng.sample(range(1, settings.kills), settings.lock_held)]
        )
        pool = rng.randint(1, settings.max_workers)
        last_top_up = 0.0
        while self.totals.kills < settings.kills:
            self.reap()
            while len(self.live) < pool and self.may_spawn():
                self.spawn(expect=10**9)
            if time.monotonic() - last_top_up > 0.3:
                await self.top_up()
                last_top_up = time.monotonic()
            for due in [f for f in schedule if f[0] <= self.totals.kills]:
                if due[1] not in self.active_faults:  # one interval of a kind at a time
                    schedule.remove(due)
                    self.start_fault(due[1])
            ready = [w for w in self.live if self.mature(w)]
            if not ready:
                await asyncio.sleep(0.02)
                continue
            await asyncio.sleep(rng.uniform(0.0, 0.15))  # anywhere in a step or checkpoint
            self.reap()
            ready = [w for w in ready if w in self.live]
            if ready:
                self.kill(rng.choice(ready))
                if rng.random() < 0.2:
                    pool = rng.randint(1, settings.max_workers)
        for worker in list(self.live):  # the last ones: stopped, not counted as kills
            self.live.remove(worker)
            worker.kill()
            self.ended_abnormally.add(worker.pid)
        if self.faults:
            await asyncio.wait(set(self.faults))

    async def drain_phase(self) -> None:
        """No more faults: workers finish every run (ones that die are replaced)."""
        assert self.durably is not None
        self.draining = True
        deadline = time.monotonic() + self.settings.drain_timeout
        pool = self.rng.randint(1, self.settings.max_workers)
        expect = len(self.expected)
        while time.monotonic() < deadline:
            self.reap()
            runs = await self.durably.get_runs(status=["pending", "leased"], limit=1)
            if not runs and not self.live:
                return
            if runs:
                while len(self.live) < pool:
                    self.spawn(expect=expect)
            await asyncio.sleep(0.1)
        for worker in list(self.live):
            self.live.remove(worker)
            worker.kill()

    # -- the checks -----------------------------------------------------------------------

    def problem(self, text: str) -> None:
        self.totals.problems.append(text)

    async def check(self) -> None:
        assert self.durably is not None and self.effects is not None
        totals = self.totals
        totals.runs = len(self.expected)
        totals.runs_by_job = dict(Counter(e.job for e in self.expected.values()))
        outcomes: Counter[str] = Counter()
        fault_failures: Counter[str] = Counter()
        for run_id, expected in self.expected.items():
            run = await self.durably.get_run(run_id)
            if run is None or run.status not in TERMINAL:
                totals.lost_runs += 1
                self.problem(f"run {run_id} ({expected.job}) never ended: {run}")
                continue
            outcomes[run.status] += 1
            if run.status == expected.status == "completed" and run.output == expected.output:
                continue
            if run.status == expected.status == "failed" and run.error == expected.error:
                continue
            if run.status == "failed" and _storage_error(run.error):
                # The database failed under the run (a full disk, a lock held too long).
                totals.runs_failed_by_faults += 1
                fault_failures[(run.error or "")[:80]] += 1
                continue
            totals.wrong_outcomes += 1
            self.problem(
                f"run {run_id} ({expected.job}) ended {run.status} with output {run.output} "
                f"and error {run.error!r}; expected {expected}"
            )
        totals.outcomes = dict(outcomes)
        totals.fault_failures = dict(fault_failures)

        effects = read_effects(self.effects)
        totals.step_executions = len(effects)
        per_step = Counter((e.run_id, e.step) for e in effects if e.step != OUTCOME_KILL)
        totals.reexecutions_in_flight = sum(n - 1 for n in per_step.values() if n > 1)
        totals.reexecutions_after_checkpoint = int(
            self.effects.execute(
                "SELECT COUNT(*) FROM side_effects WHERE after_checkpoint"
            ).fetchone()[0]
        )
        if totals.reexecutions_after_checkpoint:
            rows = self.effects.execute(
                "SELECT run_id, step_name, pid FROM side_effects WHERE after_checkpoint LIMIT 5"
            ).fetchall()
            self.problem(f"steps executed again after their checkpoint: {rows}")
        order = double_executions(
            [e for e in effects if e.step != OUTCOME_KILL],
            self.ended_abnormally,
            len(self.ended_abnormally),
        )
        for text in order[:10]:
            self.problem(text)
        with contextlib.closing(sqlite3.connect(self.database)) as db:
            totals.steps_checkpointed = int(
                db.execute(
                    "SELECT COUNT(*) FROM durably_steps WHERE status = 'completed'"
                ).fetchone()[0]
            )
            totals.integrity_check = "; ".join(
                str(row[0]) for row in db.execute("PRAGMA integrity_check")
            )
        if totals.integrity_check != "ok":
            self.problem(f"integrity_check: {totals.integrity_check}")

    async def run(self) -> Totals:
        started = time.monotonic()
        self.disk.mkdir()
        self.logs.mkdir()
        create_tables(str(self.effects_path))
        with (
            tmpfs(self.disk) if self.settings.disk_full else contextlib.nullcontext(),
            contextlib.closing(sqlite3.connect(self.effects_path, timeout=30)) as effects,
        ):
            self.effects = effects
            self.durably = create_durably(f"sqlite:///{self.database}", jobs=JOBS)
            try:
                await self.durably.migrate()
                await self.kill_phase()
                await self.drain_phase()
                await self.check()
            finally:
                for worker in self.live:
                    worker.kill()
                await self.durably.close()
                if self.settings.keep:
                    shutil.copy(self.database, self.directory / "campaign.db")
        self.totals.seconds = round(time.monotonic() - started, 1)
        return self.totals


def _storage_error(error: str | None) -> bool:
    """Whether a run's error is the database failing (durably_web's StorageError text)."""
    text = error or ""
    return text.startswith("SQLite error") or "disk is full" in text or "locked" in text


# -- the command line ------------------------------------------------------------------------


def _in_private_mount_namespace(argv: Sequence[str]) -> None:
    """Re-run this command in a mount namespace of its own, where it may mount a tmpfs."""
    if os.environ.get(_NAMESPACE_ENV) == "1":
        return
    unshare = shutil.which("unshare")
    if unshare is None:
        raise SystemExit(
            "fault_campaign: disk-full intervals need `unshare` (util-linux) for a private "
            "tmpfs; install it, or pass --disk-full 0"
        )
    flags = ["--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        flags.append("--map-root-user")
    command = [unshare, *flags, sys.executable, "-m", "tests.acceptance.fault_campaign", *argv]
    os.execve(unshare, command, {**os.environ, _NAMESPACE_ENV: "1"})


def parse_args(argv: Sequence[str]) -> tuple[Settings, str | None]:
    parser = argparse.ArgumentParser(
        prog="python -m tests.acceptance.fault_campaign",
        description="SIGKILL durably_web workers, fill the disk and hold the lock; check "
        "that every run ends, no checkpointed step runs again and the database is intact.",
    )
    parser.add_argument("--kills", type=int, default=1000, help="SIGKILLs (default 1000)")
    parser.add_argument("--max-workers", type=int, default=4, help="1..N workers (default 4)")
    parser.add_argument(
        "--disk-full", type=int, help="disk-full intervals (default: one per 100 kills, >= 1)"
    )
    parser.add_argument(
        "--lock-held", type=int, help="lock-held intervals (default: one per 100 kills, >= 1)"
    )
    parser.add_argument("--seed", type=int, help="random seed (default: random, printed)")
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--json", help="also write the totals to this file as JSON")
    parser.add_argument("--drain-timeout", type=float, default=600.0, help="seconds")
    args = parser.parse_args(argv)
    if args.kills < 2 or args.max_workers < 1:
        parser.error("--kills must be at least 2 and --max-workers at least 1")
    per_hundred = max(1, args.kills // 100)
    settings = Settings(
        kills=args.kills,
        max_workers=args.max_workers,
        disk_full=per_hundred if args.disk_full is None else args.disk_full,
        lock_held=per_hundred if args.lock_held is None else args.lock_held,
        seed=random.randrange(2**32) if args.seed is None else args.seed,
        work_dir=args.dir,
        keep=args.keep,
        drain_timeout=args.drain_timeout,
    )
    if settings.disk_full + settings.lock_held >= settings.kills:
        parser.error("fewer fault intervals than kills, please")
    return settings, args.json


def report(totals: Totals) -> str:
    lines = [
        f"fault campaign (seed {totals.seed}): {totals.seconds} s",
        f"  kills                         {totals.kills} (+ {totals.self_kills} runs that "
        f"killed their own worker, {totals.exits_during_disk_full} workers that stopped on "
        "a full disk)",
        f"  worker processes              {totals.workers_started} "
        f"({totals.exits_on_held_lock} stopped by a held lock)",
        f"  fault intervals               {totals.disk_full_intervals} disk full, "
        f"{totals.lock_held_intervals} lock held",
        f"  runs                          {totals.runs} {totals.runs_by_job}",
        f"  outcomes                      {totals.outcomes}",
        f"  runs failed by a fault        {totals.runs_failed_by_faults} {totals.fault_failures}",
        f"  step executions               {totals.step_executions} "
        f"({totals.steps_checkpointed} checkpoints)",
        f"  re-executions in flight       {totals.reexecutions_in_flight} (allowed: at least once)",
        f"  re-executions after checkpoint {totals.reexecutions_after_checkpoint}",
        f"  lost runs                     {totals.lost_runs}",
        f"  wrong outcomes                {totals.wrong_outcomes}",
        f"  integrity_check               {totals.integrity_check}",
    ]
    if totals.problems:
        lines.append(f"FAILED: {len(totals.problems)} problem(s):")
        lines.extend(f"  - {text}" for text in totals.problems[:20])
    else:
        lines.append("OK: every run ended, no checkpointed step ran again, the database is intact")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the campaign; print the totals; return 0 if every check passed."""
    argv = list(sys.argv[1:] if argv is None else argv)
    settings, json_path = parse_args(argv)
    if settings.disk_full:
        _in_private_mount_namespace(argv)
    print(
        f"fault campaign: seed {settings.seed}, {settings.kills} kills, 1-{settings.max_workers} "
        f"workers, {settings.disk_full} disk-full and {settings.lock_held} lock-held intervals",
        flush=True,
    )
    base = settings.work_dir or Path(tempfile.mkdtemp(prefix="durably-faults-"))
    base.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(dir=base, prefix="campaign-"))
    try:
        totals = asyncio.run(Campaign(settings, directory).run())
    finally:
        if not settings.keep:
            shutil.rmtree(directory, ignore_errors=True)
            if settings.work_dir is None:
                shutil.rmtree(base, ignore_errors=True)
    print(report(totals), flush=True)
    if json_path:
        Path(json_path).write_text(json.dumps(asdict(totals), indent=1) + "\n")
    return 1 if totals.problems else 0


if __name__ == "__main__":
    sys.exit(main())
