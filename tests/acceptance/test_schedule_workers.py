"""Exactly one run per schedule tick with three worker processes racing on one database.

The workers' clock is a file this test moves tick by tick through 500 hourly ticks of a
Europe/Berlin schedule that cross the end of summer time (2026-10-25, when 02:00 comes
twice), with a daily 02:30 Berlin schedule beside it, and a downtime gap in the middle: every
worker is SIGKILLed, the clock jumps 10 hours, three new workers start and catch up
(``all`` for the hourly schedule: each missed tick; ``latest`` for the daily one).
The gap (ten hours from 2026-10-24 20:30 UTC) covers the repeated 02:00 and the daily 02:30 of
the DST night, so the catch-up crosses the change too. With the engine on SQLite and on
PostgreSQL (``engine``).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.acceptance.crash_harness import Engine, _die_with_parent

WORKER = Path(__file__).with_name("schedule_worker.py")
START = datetime(2026, 10, 15, 0, 30, tzinfo=UTC)
HOUR = 3600.0
TICKS = 500
GAP_AT = 236  # after this many ticks every worker dies: 10-24 20:30Z, over the DST night
GAP_HOURS = 10


def set_clock(path: Path, epoch: float) -> None:
    """Move the workers' clock (atomically: a worker never reads a half-written file)."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(str(epoch))
    temporary.replace(path)


def iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Workers:
    def __init__(self, db: str, clock: Path, logs: Path) -> None:
        self.db, self.clock, self.logs = db, clock, logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, count: int) -> None:
        """Start ``count`` workers; return once each has declared its schedules."""
        started = []
        for _ in range(count):
            path = self.logs / f"worker{len(self.processes)}.log"
            with path.open("wb") as log:
                self.processes.append(
                    subprocess.Popen(
                        [sys.executable, str(WORKER), self.db, str(self.clock)],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        preexec_fn=_die_with_parent,
                    )
                )
            started.append(path)
        deadline = time.monotonic() + 30
        while not all(path.read_text().startswith("ready") for path in started):
            self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"workers did not start: see {self.logs}")
            time.sleep(0.02)

    def kill_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()

    def check_alive(self) -> None:
        for process in self.processes[-3:]:
            if process.poll() is not None:
                raise AssertionError(f"a worker exited: see {self.logs}")


@pytest.fixture
def workers(tmp_path: Path, engine: Engine) -> Iterator[Workers]:
    clock = tmp_path / "clock"
    clock.write_text(str(START.timestamp()))
    running = Workers(engine.url or f"sqlite:///{tmp_path / 's.db'}", clock, tmp_path)
    yield running
    running.kill_all()


_SCHEDULED = "SELECT idempotency_key, status FROM durably_runs WHERE job_name = 'tick'"


def scheduled(db: str) -> list[tuple[str, str]]:
    """The tick job's runs (idempotency key, status), read outside the engine."""
    if db.startswith("sqlite:///"):
        with closing(sqlite3.connect(db.removeprefix("sqlite:///"), timeout=10)) as connection:
            rows = connection.execute(_SCHEDULED).fetchall()
    else:
        import psycopg

        with psycopg.connect(db, autocommit=True) as pg:
            rows = pg.execute(_SCHEDULED).fetchall()
    return [(str(key), str(status)) for key, status in rows]


def wait_for(workers: Workers, hourly: int, timeout: float = 30) -> list[tuple[str, str]]:
    """Wait until ``hourly`` hourly runs exist and every run completed."""
    deadline = time.monotonic() + timeout
    while True:
        workers.check_alive()
        try:
            runs = scheduled(workers.db)
        except (sqlite3.OperationalError, _undefined_table()):  # the schema is not there yet
            runs = []
        done = all(status == "completed" for _, status in runs)
        count = sum(key.startswith("schedule:hourly:") for key, _ in runs)
        if count >= hourly and done:
            return runs
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} of {hourly} hourly runs after {timeout}s")
        time.sleep(0.01)


@pytest.mark.slow
def test_three_workers_make_exactly_one_run_per_tick(workers: Workers) -> None:
    workers.start(3)
    hour = START  # always half past an hour: each step crosses one tick (a whole UTC hour)
    made = 0
    for step in range(TICKS - GAP_HOURS):
        if step == GAP_AT:
            workers.kill_all()  # downtime: GAP_HOURS ticks pass with no worker
            hour += timedelta(hours=GAP_HOURS)
            set_clock(workers.clock, hour.timestamp())
            workers.start(3)
            made += GAP_HOURS
            wait_for(workers, made)  # caught up: one run per missed tick ("all")
        hour += timedelta(hours=1)
        set_clock(workers.clock, hour.timestamp() - 1800)  # the tick itself
        set_clock(workers.clock, hour.timestamp())
        made += 1
        wait_for(workers, made)
    runs = wait_for(workers, TICKS)

    keys = Counter(key for key, _ in runs)
    assert max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]
    hourly = sorted(k for k in keys if k.startswith("schedule:hourly:"))
    # Berlin's offsets are whole hours, so "0 * * * *" there is every UTC hour, the repeated
    # 02:00 of 2026-10-25 included: the oracle needs no cron library.
    first = START + timedelta(minutes=30)
    expected = [f"schedule:hourly:{iso(first + timedelta(hours=i))}" for i in range(len(hourly))]
    assert hourly == expected
    assert len(hourly) == TICKS
    assert "schedule:hourly:2026-10-25T00:00:00.000Z" in keys  # 02:00 CEST
    assert "schedule:hourly:2026-10-25T01:00:00.000Z" in keys  # 02:00 CET, the repeat
    daily = sorted(k.removeprefix("schedule:daily:") for k in keys if k.startswith("schedule:d"))
    cest = [f"2026-10-{day}T00:30:00.000Z" for day in range(16, 26)]  # 02:30 CEST
    cet = [f"2026-{d:%m-%d}T01:30:00.000Z" for d in _days(datetime(2026, 10, 26), 10)]  # CET
    assert daily == cest + cet  # 10-25's (missed in the downtime, caught up) once, not twice
    print(f"schedule test: {len(hourly)} hourly + {len(daily)} daily runs, 3 workers, no doubles")


def _undefined_table() -> type[Exception]:
    import psycopg.errors

    return psycopg.errors.UndefinedTable


def _days(first: datetime, count: int) -> list[datetime]:
    return [first + timedelta(days=i) for i in range(count)]
