"""The command line when the database is at fault: full, newer, unreadable, or holding a run
of a job nobody registers. Real subprocesses, real SQLite files.
"""

from __future__ import annotations

import hashlib
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from durably_web import create_durably
from durably_web.storage.queries import migrations
from durably_web.testing import FakeClock
from tests.integration.test_cli import JOBS, cli, query

BIG = f"{JOBS}:big_steps"


def limit_file_size(limit: int) -> None:
    """In the child: files may not grow past ``limit`` bytes (writes past it fail, no signal)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE semantics are Linux's")
def test_full_disk_stops_the_command_and_the_run_resumes_later(tmp_path: Path) -> None:
    record = tmp_path / "record.txt"
    args = ["run", BIG, "--input", f'{{"record": "{record}"}}', "--lease-duration", "2"]
    full = subprocess.run(
        [sys.executable, "-m", "durably_web", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: limit_file_size(400_000),
        check=False,
    )
    assert full.returncode == 1, full.stderr
    assert "The worker stopped: the database failed (SQLite error: " in full.stderr
    assert "is not marked failed" in full.stderr
    assert "Traceback" not in full.stderr
    [(status, error)] = query(tmp_path / "durably.db", "SELECT status, error FROM durably_runs")
    assert status in ("pending", "leased") and error is None
    before = record.read_text().split()
    assert 0 < len(before) < 40

    resumed = cli(*args, cwd=tmp_path)  # space is back (no limit)
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming run" in resumed.stderr
    executed = record.read_text().split()
    assert sorted(set(executed), key=lambda s: int(s.split("-")[1])) == [
        f"step-{i}" for i in range(40)
    ]
    assert len(executed) <= 41  # at most the step in flight when the disk filled ran again
    assert query(tmp_path / "durably.db", "SELECT status FROM durably_runs") == [("completed",)]


def test_database_of_a_newer_version_is_refused_unchanged(tmp_path: Path) -> None:
    assert cli("run", f"{JOBS}:slow_steps", cwd=tmp_path).returncode == 0
    db = tmp_path / "durably.db"
    with sqlite3.connect(db) as connection:
        connection.execute("INSERT INTO durably_schema_versions VALUES (99, '2030-01-01')")
    connection.close()
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    for args in (["runs"], ["run", f"{JOBS}:slow_steps"]):
        result = cli(*args, cwd=tmp_path)
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stderr == (
            "durably-web: error: the database has schema version 99, newer than this "
            f"durably_web supports (version {migrations()[-1][0]}): it was written by a newer "
            "release. Upgrade "
            "durably_web to open it; it was left unchanged.\n"
        )
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    assert query(db, "SELECT count(*) FROM durably_runs") == [(1,)]


def test_runs_and_run_info_show_a_run_with_unreadable_values(tmp_path: Path) -> None:
    assert cli("run", f"{JOBS}:slow_steps", "--preserve-steps", cwd=tmp_path).returncode == 0
    db = tmp_path / "durably.db"
    with sqlite3.connect(db) as connection:
        connection.execute(
            "UPDATE durably_runs SET lease_expires_at = '33715-07-10T20:40:52.123Z', "
            "completed_at = 'soon', progress = '{'"
        )
        connection.execute("UPDATE durably_steps SET output = '[' WHERE name = 'step-1'")
    connection.close()
    [(run_id,)] = query(db, "SELECT id FROM durably_runs")
    listing = cli("runs", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert run_id in listing.stdout
    info = cli("run-info", run_id, cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    [line] = [line for line in info.stdout.splitlines() if line.startswith("Unreadable  ")]
    assert sorted(line.split(None, 1)[1].split("; ")) == [
        "completed_at = 'soon' (cannot be parsed)",
        "lease_expires_at = '33715-07-10T20:40:52.123Z' (cannot be parsed)",
        "progress = '{' (cannot be parsed)",
    ]
    assert "expires 9999-12-31T23:59:59.999" in info.stdout
    assert "Unreadable in step " in info.stdout and "output = '[' (cannot be parsed)" in info.stdout


async def test_run_info_shows_the_unknown_job_warning(tmp_path: Path) -> None:
    from tests.integration.cli_jobs import other_steps, slow_steps

    db = tmp_path / "durably.db"
    clock = FakeClock()
    producer = create_durably(f"sqlite:///{db}", clock=clock, jobs={"other": other_steps})
    worker = create_durably(f"sqlite:///{db}", clock=clock, jobs={"slow": slow_steps})
    run = await producer.jobs.other.trigger({})
    await clock.advance(60)
    await worker.process_until_idle()
    await producer.close()
    await worker.close()
    info = cli("run-info", run.id, cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert "Status            pending" in info.stdout
    assert (
        "Error             Unknown job: other-steps. No worker that registers this job has "
        "claimed the run since 2026-01-01T00:00:00.000Z; it fails at 2026-01-01T00:05:00.000Z "
        "unless one does."
    ) in info.stdout
    listing = cli("runs", cwd=tmp_path)
    assert "Unknown job: other-steps" in listing.stdout
