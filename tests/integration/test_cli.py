"""The ``durably-web`` command line, run as a real subprocess in a temporary directory."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import IO, Any

import pytest

from durably_web import create_durably
from durably_web.cli.render import ProgressLine, format_table
from durably_web.models import Progress
from tests.databases import lock_held_by_process
from tests.integration import cli_jobs

ROOT = Path(__file__).resolve().parents[2]
JOBS = Path(__file__).with_name("cli_jobs.py")
SLOW = f"{JOBS}:slow_steps"
EXAMPLE = ROOT / "examples" / "import_csv.py"


def cli(
    *args: str, cwd: Path, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durably_web", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def output_of(stdout: str) -> Any:
    """The run's output: the JSON document that ends stdout."""
    lines = stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if line in ("{", "[") or line.startswith('"'))
    return json.loads("\n".join(lines[start:]))


def query(db: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db, timeout=5) as connection:
        rows = connection.execute(sql, params).fetchall()
    connection.close()
    return rows


def wait_until(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def checkpointed(db: Path) -> int:
    try:
        return int(query(db, "SELECT count(*) FROM durably_steps WHERE status = 'completed'")[0][0])
    except sqlite3.OperationalError:  # the file or the schema is not there yet
        return 0


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``durably-web`` in the background; anything still running is killed at the end."""
    started: list[subprocess.Popen[str]] = []
    files: list[IO[str]] = []

    def launch(*args: str) -> subprocess.Popen[str]:
        n = len(started)
        files.extend([(tmp_path / f"out{n}.txt").open("w"), (tmp_path / f"err{n}.txt").open("w")])
        proc = subprocess.Popen(
            [sys.executable, "-m", "durably_web", *args],
            cwd=tmp_path,
            stdout=files[-2],
            stderr=files[-1],
            text=True,
        )
        started.append(proc)
        return proc

    yield launch
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    for file in files:
        file.close()


# -- running a job ------------------------------------------------------------------------


def test_run_completes_and_prints_output(tmp_path: Path) -> None:
    result = cli("run", SLOW, "--input", '{"steps": 3}', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert output_of(result.stdout) == {"total": 3, "steps": 3}
    assert '[info] first step done {"i": 0}' in result.stdout
    assert "3/3 (100%) · step 3 of 3 · 3 steps done" in result.stdout
    assert "Started run" in result.stderr
    assert "completed" in result.stderr
    assert query(tmp_path / "durably.db", "SELECT status FROM durably_runs") == [("completed",)]


def test_run_by_module_name_and_example(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    by_name = cli(
        "run", "tests.integration.cli_jobs:slow_steps", "--db", "jobs.db", cwd=tmp_path, env=env
    )
    assert by_name.returncode == 0, by_name.stderr
    assert output_of(by_name.stdout) == {"total": 3, "steps": 3}
    example = cli(
        "run", f"{EXAMPLE}:import_csv", "--input", '{"rows": 50, "delay": 0}', cwd=tmp_path
    )
    assert example.returncode == 0, example.stderr
    assert output_of(example.stdout) == {"imported": 50, "batches": 3, "total_amount": 12175}
    assert "[info] Import complete" in example.stdout


def test_failed_run_exits_1_with_its_error(tmp_path: Path) -> None:
    result = cli("run", SLOW, "--input", '{"steps": 3, "fail_at": 1}', cwd=tmp_path)
    assert result.returncode == 1
    assert "failed at step 'step-1': exploded at step 1" in result.stderr
    assert query(tmp_path / "durably.db", "SELECT status FROM durably_runs") == [("failed",)]


def test_idempotency_key_follows_the_existing_run(tmp_path: Path) -> None:
    args = ("run", SLOW, "--input", '{"steps": 2}', "--idempotency-key", "nightly")
    first = cli(*args, cwd=tmp_path)
    second = cli(*args, cwd=tmp_path)
    assert first.returncode == second.returncode == 0, second.stderr
    assert output_of(second.stdout) == output_of(first.stdout) == {"total": 1, "steps": 2}
    assert "is completed" in second.stderr
    assert query(tmp_path / "durably.db", "SELECT count(*) FROM durably_runs") == [(1,)]


# -- runs and run-info ----------------------------------------------------------------------


def test_runs_lists_runs_newest_first_with_filters(tmp_path: Path) -> None:
    assert cli("run", SLOW, "--input", '{"steps": 2}', cwd=tmp_path).returncode == 0
    assert cli("run", SLOW, "--input", '{"fail_at": 0}', cwd=tmp_path).returncode == 1
    ids = [row[0] for row in query(tmp_path / "durably.db", "SELECT id FROM durably_runs")]

    listing = cli("runs", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    header, *rows = listing.stdout.splitlines()
    assert header.split() == ["ID", "JOB", "STATUS", "PROGRESS", "STEPS", "CREATED", "ERROR"]
    assert [row.split()[0] for row in rows] == sorted(ids, reverse=True)
    failed, completed = rows
    assert failed.split()[1:3] == ["slow-steps", "failed"]
    assert failed.endswith("exploded at step 0")
    assert completed.split()[1:6] == ["slow-steps", "completed", "2/2", "(100%)", "2"]
    assert header.index("STATUS") == failed.index("failed") == completed.index("completed")

    only_failed = cli("runs", "--status", "failed", cwd=tmp_path).stdout.splitlines()
    assert len(only_failed) == 2
    assert "failed" in only_failed[1]
    assert cli("runs", "--job", "nope", cwd=tmp_path).stdout.strip() == "No runs found."
    limited = cli("runs", "--limit", "1", cwd=tmp_path).stdout.splitlines()
    assert len(limited) == 3
    assert "more runs not shown" in limited[2]


def test_run_info_shows_the_run_its_steps_and_logs(tmp_path: Path) -> None:
    kept = cli("run", SLOW, "--input", '{"steps": 2}', "--preserve-steps", cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr
    dropped = cli("run", SLOW, "--input", '{"steps": 1}', cwd=tmp_path)
    assert dropped.returncode == 0, dropped.stderr
    (kept_id,), (dropped_id,) = query(
        tmp_path / "durably.db", "SELECT id FROM durably_runs ORDER BY id"
    )

    info = cli("run-info", kept_id, cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    fields = dict(line.split(None, 1) for line in info.stdout.splitlines()[:3])
    assert fields == {"Run": kept_id, "Job": "slow-steps", "Status": "completed"}
    assert '{"steps": 2, "delay": 0.0, "record": null, "fail_at": null}' in info.stdout
    assert '{"total": 1, "steps": 2}' in info.stdout
    assert "2/2 (100%) step 2 of 2" in info.stdout
    steps = info.stdout.split("Steps (2)\n")[1].splitlines()
    assert steps[0].split() == ["INDEX", "NAME", "STATUS", "OUTPUT"]
    assert [line.split() for line in steps[1:3]] == [
        ["0", "step-0", "completed", "0"],
        ["1", "step-1", "completed", "1"],
    ]
    assert "Logs (1)" in info.stdout
    assert 'step-0: [info] first step done {"i": 0}' in info.stdout

    gone = cli("run-info", dropped_id, cwd=tmp_path)
    assert gone.returncode == 0, gone.stderr
    assert "Steps and logs are deleted when a run completes" in gone.stdout


# -- bad command lines --------------------------------------------------------------------


BAD_ARGUMENTS = {
    "no command": [],
    "unknown command": ["frobnicate"],
    "unknown option": ["runs", "--colour"],
    "invalid JSON": ["run", SLOW, "--input", "{steps: 3}"],
    "target without job": ["run", str(JOBS)],
    "module not importable": ["run", "no_such_module_xyz:job"],
    "file missing": ["run", "missing.py:job"],
    "module raises on import": ["run", "broken.py:job"],
    "attribute missing": ["run", f"{JOBS}:missing"],
    "not a JobDefinition": ["run", f"{JOBS}:not_a_job"],
    "input fails validation": ["run", SLOW, "--input", '{"steps": "many"}'],
    "input of the wrong shape": ["run", SLOW, "--input", "[1, 2]"],
    # Bad input (issue 14): each was a traceback, or stored as null, before json_value.
    "input 300 levels deep": ["run", SLOW, "--input", "[" * 300 + "]" * 300],
    "input 50,000 levels deep": ["run", SLOW, "--input", "[" * 50_000 + "]" * 50_000],
    "input with NaN": ["run", SLOW, "--input", '{"delay": NaN}'],
    "input with Infinity": ["run", SLOW, "--input", '{"delay": Infinity}'],
    "input with 1e400": ["run", SLOW, "--input", '{"delay": 1e400}'],
    "input with a 5,000-digit integer": ["run", SLOW, "--input", '{"steps": ' + "9" * 5000 + "}"],
    "input with a \\ud800 escape": ["run", SLOW, "--input", '{"record": "\\ud800"}'],
    "input with a non-UTF-8 byte": ["run", SLOW, "--input", '{"record": "\udcff"}'],
    "idempotency key with a non-UTF-8 byte": ["run", SLOW, "--idempotency-key", "k\udcff"],
    "empty idempotency key": ["run", SLOW, "--idempotency-key", ""],
    "bad lease duration": ["run", SLOW, "--lease-duration", "0"],
    "lease duration of 1e12 s": ["run", SLOW, "--lease-duration", "1e12"],
    "lease duration of 1e308 s": ["run", SLOW, "--lease-duration", "1e308"],
    "lease duration of NaN": ["run", SLOW, "--lease-duration", "nan"],
    "db directory missing": ["run", SLOW, "--db", "nowhere/x.db"],
    "run on a foreign file": ["run", SLOW, "--db", "notes.txt"],
    "runs without a db": ["runs"],
    "runs on a missing db": ["runs", "--db", "nope.db"],
    "runs with a bad limit": ["runs", "--limit", "-3"],
    "runs with a bad status": ["runs", "--status", "running"],
    "run-info without a db": ["run-info", "01ABC"],
    "run-info on a missing db": ["run-info", "01ABC", "--db", "nope.db"],
    "run-info on a foreign file": ["run-info", "01ABC", "--db", "notes.txt"],
}


@pytest.mark.parametrize("args", BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS.keys())
def test_bad_arguments_exit_2_with_one_line_and_write_nothing(
    tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / "broken.py").write_text("raise RuntimeError('cannot configure')\n")
    (tmp_path / "notes.txt").write_text("not a database\n")
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("durably-web: error: ")
    created = {p.name for p in tmp_path.iterdir()} - {"__pycache__"}  # from importing broken.py
    assert created == {"broken.py", "notes.txt"}
    assert (tmp_path / "notes.txt").read_text() == "not a database\n"


def test_non_utf8_arguments_on_a_database_exit_2_and_write_nothing(tmp_path: Path) -> None:
    """argv bytes that are not UTF-8 reach Python as lone surrogates: SQLite cannot take them."""
    assert cli("run", SLOW, cwd=tmp_path).returncode == 0
    before = query(tmp_path / "durably.db", "SELECT * FROM durably_runs")
    for args in (
        ["run-info", "01\udcff"],
        ["runs", "--job", "\udcff"],
        ["run", SLOW, "--input", '{"record": "\udcff"}'],
        ["run", SLOW, "--idempotency-key", "\udcff"],
    ):
        result = cli(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and "strings must be valid Unicode" in result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
    assert query(tmp_path / "durably.db", "SELECT * FROM durably_runs") == before


def test_unknown_run_id_exits_2(tmp_path: Path) -> None:
    assert cli("run", SLOW, cwd=tmp_path).returncode == 0
    result = cli("run-info", "01NOSUCHRUN", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "durably-web: error: run not found: 01NOSUCHRUN\n"


def test_import_errors_name_the_cause(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("raise RuntimeError('cannot configure')\n")
    result = cli("run", "broken.py:job", cwd=tmp_path)
    assert "RuntimeError: cannot configure" in result.stderr
    result = cli("run", f"{JOBS}:not_a_job", cwd=tmp_path)
    assert "is an int, not a job" in result.stderr
    assert "jobs in" in result.stderr
    assert "other_steps, slow_steps" in result.stderr


# -- interrupting and resuming ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"]
)
def test_interrupted_run_is_released_and_resumes_without_redoing_steps(
    tmp_path: Path, start: Callable[..., subprocess.Popen[str]], signum: int, status: int
) -> None:
    db, record = tmp_path / "durably.db", tmp_path / "record.txt"
    job_input = json.dumps({"steps": 30, "delay": 0.1, "record": str(record)})
    first = start("run", SLOW, "--input", job_input)
    wait_until(lambda: checkpointed(db) >= 3)
    first.send_signal(signum)
    assert first.wait(timeout=15) == status
    assert "Interrupted" in (tmp_path / "err0.txt").read_text()

    [(run_id, run_status, count)] = query(
        db, "SELECT id, status, completed_step_count FROM durably_runs"
    )
    done = {
        name for (name,) in query(db, "SELECT name FROM durably_steps WHERE run_id = ?", run_id)
    }
    assert run_status == "pending"
    assert count == len(done) >= 3

    second = cli("run", SLOW, "--input", job_input, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert f"Resuming run {run_id} ({count} steps already done)" in second.stderr
    assert output_of(second.stdout) == {"total": sum(range(30)), "steps": 30}
    assert query(db, "SELECT id, status FROM durably_runs") == [(run_id, "completed")]
    executions = Counter(record.read_text().split())
    assert set(executions) == {f"step-{i}" for i in range(30)}
    assert all(executions[name] == 1 for name in done), executions


@pytest.mark.slow
def test_killed_run_resumes_after_its_lease_expires(
    tmp_path: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    db, record = tmp_path / "durably.db", tmp_path / "record.txt"
    job_input = json.dumps({"steps": 20, "delay": 0.1, "record": str(record)})
    first = start("run", SLOW, "--input", job_input, "--lease-duration", "2")
    wait_until(lambda: checkpointed(db) >= 3)
    first.kill()
    first.wait(timeout=10)
    [(run_id, run_status)] = query(db, "SELECT id, status FROM durably_runs")
    done = {
        name for (name,) in query(db, "SELECT name FROM durably_steps WHERE run_id = ?", run_id)
    }
    assert run_status == "leased"

    began = time.monotonic()
    second = cli("run", SLOW, "--input", job_input, "--lease-duration", "2", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert time.monotonic() - began < 15
    assert f"Resuming run {run_id} ({len(done)} steps already done)" in second.stderr
    assert "waiting up to" in second.stderr
    assert "lease to expire" in second.stderr
    assert output_of(second.stdout) == {"total": sum(range(20)), "steps": 20}
    executions = Counter(record.read_text().split())
    assert set(executions) == {f"step-{i}" for i in range(20)}
    assert all(executions[name] == 1 for name in done), executions


@pytest.mark.slow
def test_same_command_while_running_follows_the_live_worker(
    tmp_path: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    db, record = tmp_path / "durably.db", tmp_path / "record.txt"
    job_input = json.dumps({"steps": 15, "delay": 0.1, "record": str(record)})
    first = start("run", SLOW, "--input", job_input)
    wait_until(lambda: checkpointed(db) >= 2)
    second = cli("run", SLOW, "--input", job_input, cwd=tmp_path)
    assert first.wait(timeout=15) == 0
    assert second.returncode == 0, second.stderr
    assert "Resuming run" in second.stderr
    assert "or following that worker if it is still running" in second.stderr
    assert output_of(second.stdout) == output_of((tmp_path / "out0.txt").read_text())
    assert sorted(Counter(record.read_text().split()).values()) == [1] * 15


@pytest.mark.slow
def test_another_input_starts_a_new_run(
    tmp_path: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    db = tmp_path / "durably.db"
    first = start("run", SLOW, "--input", '{"steps": 30, "delay": 0.1}')
    wait_until(lambda: checkpointed(db) >= 1)
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=15) == 130
    [(first_id,)] = query(db, "SELECT id FROM durably_runs")
    other = cli("run", SLOW, "--input", '{"steps": 2}', cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    assert "Started run" in other.stderr
    assert "Resuming" not in other.stderr
    assert output_of(other.stdout) == {"total": 1, "steps": 2}
    # The worker takes runs in order, so the older interrupted run of this job goes first.
    assert f"note: running run {first_id} first" in other.stdout
    assert query(db, "SELECT status FROM durably_runs ORDER BY id") == [
        ("completed",),
        ("completed",),
    ]


@pytest.mark.slow
async def test_run_stops_after_its_own_run_without_starting_queued_ones(
    tmp_path: Path, start: Callable[..., subprocess.Popen[str]]
) -> None:
    db = tmp_path / "durably.db"
    proc = start("run", SLOW, "--input", '{"steps": 10, "delay": 0.1}')
    wait_until(lambda: checkpointed(db) >= 1)
    durably = create_durably(f"sqlite:///{db}").register({"slow_steps": cli_jobs.slow_steps})
    try:
        queued = await durably.jobs.slow_steps.trigger({"steps": 5})
    finally:
        await durably.close()
    assert await asyncio.to_thread(proc.wait, 30) == 0
    # The queued run was never claimed: no partial execution, nothing to release.
    assert query(db, "SELECT status, started_at FROM durably_runs WHERE id = ?", queued.id) == [
        ("pending", None)
    ]


# -- rendering ------------------------------------------------------------------------------


class FakeTerminal(io.TextIOWrapper):
    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", write_through=True)

    def isatty(self) -> bool:
        return True

    def getvalue(self) -> str:
        buffer = self.buffer
        assert isinstance(buffer, io.BytesIO)
        return buffer.getvalue().decode("utf-8")


def test_live_progress_line_redraws_in_place_and_prints_logs_above(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    now = [0.0]
    out = FakeTerminal()
    line = ProgressLine(out, live=True, clock=lambda: now[0])
    line.update(Progress(5, 20, "working"), steps=1)
    now[0] = 1.0
    line.message("[info] hello")
    now[0] = 65.0
    line.update(Progress(20, 20, "done"), steps=4)
    line.finish()
    text = out.getvalue()
    frames = text.split("\r\x1b[K")
    assert frames[1] == "[" + "█" * 6 + "░" * 18 + "] 5/20 (25%) · working · 1 step done · 0:00"
    assert frames[2] == "[info] hello\n"
    assert frames[-1] == "[" + "█" * 24 + "] 20/20 (100%) · done · 4 steps done · 1:05\n"


def test_plain_progress_lines_are_throttled() -> None:
    now = [0.0]
    out = io.StringIO()
    line = ProgressLine(out, live=False, clock=lambda: now[0])
    for i in range(1, 10):
        now[0] = i * 0.3
        line.update(Progress(i, 10))
    line.finish()
    assert "\r" not in out.getvalue()
    assert out.getvalue().splitlines() == [
        "1/10 (10%) · 0 steps done · 0:00",
        "5/10 (50%) · 0 steps done · 0:01",
        "9/10 (90%) · 0 steps done · 0:02",
    ]


def test_format_table_aligns_columns() -> None:
    table = format_table(("A", "LONGER"), [("xyz", "1"), ("", "22")])
    assert table.splitlines() == ["A    LONGER", "xyz  1", "     22"]


def _sqlite_worker(db: Path, *options: str) -> subprocess.Popen[str]:
    """Start ``durably-web worker`` on the SQLite file ``db`` with the CLI test jobs."""
    return subprocess.Popen(
        [sys.executable, "-m", "durably_web", "worker", str(JOBS), "--db", str(db), *options],
        cwd=db.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_worker_on_a_sqlite_file_runs_what_another_process_triggers(tmp_path: Path) -> None:
    """``durably-web worker`` takes a SQLite file too: processes of one machine share it.

    Spelled ``worker MODULE --db FILE`` here (API.md's), ``worker URL --jobs MODULE`` in
    tests/postgres/test_cli.py."""
    db = tmp_path / "shared.db"
    worker = _sqlite_worker(db, "--polling-interval", "0.1")
    try:

        async def trigger_and_wait() -> str:
            durably = create_durably(f"sqlite:///{db}", jobs={"slow": cli_jobs.slow_steps})
            await durably.migrate()
            run = await durably.jobs.slow.trigger({"steps": 2})
            done = await durably.wait_for_run(run.id, timeout=30)
            await durably.close()
            return done.status

        assert asyncio.run(trigger_and_wait()) == "completed"
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=20)
    assert worker.returncode == 0, err
    assert out.strip().endswith("slow-steps completed"), out


def test_a_run_that_ends_while_the_worker_stops_is_printed(tmp_path: Path) -> None:
    """SIGTERM mid-run: the run finishes in the grace period, and its outcome line is printed."""
    db = tmp_path / "shared.db"
    worker = _sqlite_worker(db, "--polling-interval", "0.05", "--shutdown-timeout", "20")
    try:

        async def trigger_and_wait_for_the_lease() -> str:
            durably = create_durably(f"sqlite:///{db}", jobs={"slow": cli_jobs.slow_steps})
            await durably.migrate()
            run = await durably.jobs.slow.trigger({"steps": 3, "delay": 0.4})
            async with asyncio.timeout(30):
                while (current := await durably.get_run(run.id)) is None or (
                    current.status != "leased"
                ):
                    await asyncio.sleep(0.02)
            await durably.close()
            return run.id

        run_id = asyncio.run(trigger_and_wait_for_the_lease())
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert out.splitlines()[-1].endswith(f"{run_id} slow-steps completed"), (out, err)


def test_worker_stops_on_sigterm_while_it_waits_for_a_locked_database(tmp_path: Path) -> None:
    """A worker that cannot migrate yet (another process holds the write lock) still stops."""
    db = tmp_path / "locked.db"
    with closing(sqlite3.connect(db)) as created:  # a WAL file: it opens, the migration waits
        created.execute("PRAGMA journal_mode = WAL")
    with lock_held_by_process(db, 8.0):
        worker = subprocess.Popen(
            [sys.executable, "-m", "durably_web", "worker", str(JOBS), "--db", str(db)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(2.0)  # started, and waiting for the lock
        assert worker.poll() is None
        stopped_at = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=20)
        assert time.monotonic() - stopped_at < 5, err
    assert worker.returncode == 0, err
