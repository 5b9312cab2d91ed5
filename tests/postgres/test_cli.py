"""The command line on PostgreSQL: every ``--db`` takes a URL, ``worker`` runs worker processes.

Real ``durably-web`` subprocesses on the session's throwaway server, each test in a schema of
its own.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from durably_web import create_durably
from tests.integration import cli_jobs
from tests.server.conftest import free_port
from tests.server.test_serve_api import wait_for_port

JOBS = "tests.integration.cli_jobs"
ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durably_web", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def worker(url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "durably_web", "worker", url, "--jobs", JOBS, *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def tables(url: str) -> list[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() ORDER BY 1"
        ).fetchall()
    return [row[0] for row in rows]


def test_run_runs_and_run_info_take_a_postgres_url(postgres_url: str, tmp_path: Path) -> None:
    record = tmp_path / "steps.txt"
    payload = json.dumps({"steps": 3, "record": str(record)})
    done = cli("run", f"{JOBS}:slow_steps", "--db", postgres_url, "--input", payload)
    assert done.returncode == 0, done.stderr
    assert '"total": 3' in done.stdout
    assert record.read_text().split() == ["step-0", "step-1", "step-2"]

    listed = cli("runs", "--db", postgres_url)
    assert listed.returncode == 0, listed.stderr
    run_id = listed.stdout.splitlines()[1].split()[0]
    assert "slow-steps" in listed.stdout and "completed" in listed.stdout

    info = cli("run-info", run_id, "--db", postgres_url)
    assert info.returncode == 0, info.stderr
    assert run_id in info.stdout and "completed" in info.stdout


def test_reading_commands_refuse_a_database_without_the_schema(postgres_url: str) -> None:
    for command in (["runs"], ["run-info", "01ABC"]):
        refused = cli(*command, "--db", postgres_url)
        assert refused.returncode == 2, refused.stderr
        assert "is not a durably database" in refused.stderr
        password = postgres_url.split(":")[2].split("@")[0]
        assert password not in refused.stderr  # the URL is shown without it
    assert tables(postgres_url) == []  # nothing was created


def test_an_unreachable_server_is_one_line_and_status_1(tmp_path: Path) -> None:
    url = "postgresql://nobody:secret@127.0.0.1:1/none?connect_timeout=2&retry_for=1"
    refused = cli("runs", "--db", url)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "127.0.0.1" in refused.stderr
    assert "secret" not in refused.stderr


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_worker_processes_execute_runs_triggered_elsewhere(postgres_url: str, loop: str) -> None:
    """Two ``durably-web worker`` processes share the triggers; SIGTERM stops each, exit 0.

    On either event loop (uvloop, the default when installed; asyncio's own).
    """
    workers = [worker(postgres_url, "--concurrency", "2", "--loop", loop) for _ in range(2)]
    try:

        async def trigger_and_wait() -> list[str]:
            durably = create_durably(postgres_url, jobs={"slow_steps": cli_jobs.slow_steps})
            await durably.migrate()
            runs = await durably.jobs.slow_steps.batch_trigger(
                [{"steps": 2, "delay": 0.05} for _ in range(20)]
            )
            finished = [await durably.wait_for_run(run.id, timeout=60) for run in runs]
            await durably.close()
            return [run.status for run in finished]

        assert asyncio.run(trigger_and_wait()) == ["completed"] * 20
    finally:
        outputs = []
        for process in workers:
            process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        for process in workers:
            out, err = process.communicate(timeout=20)
            outputs.append((process.returncode, out, err))
        assert time.monotonic() - started < 10
    assert [code for code, _, _ in outputs] == [0, 0], outputs
    completed = [line for _, out, _ in outputs for line in out.splitlines()]
    assert len(completed) == 20 and all(line.endswith(" completed") for line in completed)
    assert all("durably-web worker" in err for _, _, err in outputs)
    assert all(f"{loop} event loop" in err for _, _, err in outputs)
    assert all(postgres_url.split(":")[2].split("@")[0] not in err for _, _, err in outputs)


def test_worker_refuses_bad_arguments_before_connecting(postgres_url: str) -> None:
    cases = {
        (
            "--jobs",
            f"{JOBS}:not_a_job",
        ): "is int: give a module, a job, a dict of jobs or a Durably",
        ("--jobs", JOBS, "--concurrency", "0"): "--concurrency must be 1-1000",
        ("--jobs", JOBS, "--lease-duration", "-1"): "lease",
        ("--jobs", "no_such_module_here"): "cannot import",
        ("--jobs", JOBS, "--db", "x.db"): "give the database once",
    }
    for extra, message in cases.items():
        refused = cli("worker", postgres_url, *extra, timeout=30)
        assert refused.returncode == 2, (extra, refused.stderr)
        assert message in refused.stderr, (extra, refused.stderr)
    assert tables(postgres_url) == []


def test_serve_api_without_a_worker_serves_runs_a_worker_process_executes(
    postgres_url: str,
) -> None:
    """``serve-api --no-worker`` triggers and reports; only the ``worker`` process executes."""
    port = free_port()
    serve = ["serve-api", JOBS, "--db", postgres_url, "--port", str(port), "--no-worker"]
    server = subprocess.Popen(
        [sys.executable, "-m", "durably_web", *serve],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    running: subprocess.Popen[str] | None = None
    try:
        wait_for_port(port, server)
        base = f"http://127.0.0.1:{port}"
        body = {"jobName": "slow-steps", "input": {"steps": 2}}
        run_id = httpx.post(f"{base}/trigger", json=body).json()["runId"]
        time.sleep(1.5)  # the server's engine polls every second: it would have claimed it
        assert httpx.get(f"{base}/run", params={"runId": run_id}).json()["status"] == "pending"
        running = worker(postgres_url)
        deadline = time.monotonic() + 20
        while httpx.get(f"{base}/run", params={"runId": run_id}).json()["status"] != "completed":
            assert time.monotonic() < deadline, "the worker did not complete the run"
            time.sleep(0.05)
    finally:
        for process in (server, running):
            if process is not None:
                process.send_signal(signal.SIGTERM)
                process.communicate(timeout=20)
    assert server.returncode == 0 and running is not None and running.returncode == 0
