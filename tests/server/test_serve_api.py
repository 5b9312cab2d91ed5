"""``durably-web serve-api``: a real server process, its engine in the same process."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.server.conftest import free_port

TARGET = str(Path(__file__).with_name("serve_target.py"))


def wait_for_port(port: int, process: subprocess.Popen[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early: {process.communicate()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("server did not start")


def test_serve_api_runs_jobs_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "durably_web",
        "serve-api",
        TARGET,
        "--db",
        str(tmp_path / "api.db"),
        "--port",
        str(port),
        "--base-path",
        "/api/durably",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, process)
        base = f"http://127.0.0.1:{port}/api/durably"
        run_id = httpx.post(
            f"{base}/trigger", json={"jobName": "hello", "input": {"name": "you"}}
        ).json()["runId"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            run = httpx.get(f"{base}/run", params={"runId": run_id}).json()
            if run["status"] == "completed":
                break
            time.sleep(0.05)
        assert run["output"] == {"greeting": "hello you"}
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "no auth configured: listening on loopback only" in err
    assert f"http://127.0.0.1:{port}/api/durably/" in err


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durably_web", "serve-api", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_serve_api_bad_arguments(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = run_cli(TARGET, "--db", str(tmp_path / "x.db"), "--port", str(port))
    assert taken.returncode == 2
    assert (
        taken.stderr.strip()
        == f"durably-web: error: port {port} is in use on 127.0.0.1; pass --port N"
    )
    missing = run_cli("no_such_module_here:thing")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    wrong = run_cli(f"{TARGET}:StepContext")
    assert wrong.returncode == 2 and "cannot serve" in wrong.stderr
    assert not (tmp_path / "x.db").exists()
