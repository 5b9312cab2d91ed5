"""``durably-web serve-api``: a real server process, its engine in the same process."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.test_cli import JOBS, query
from tests.integration.test_cli_faults import limit_file_size
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


def open_stream(port: int, path: str) -> socket.socket:
    """Open an SSE request and read its headers; the stream stays open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    assert received.startswith(b"HTTP/1.1 200")
    return sock


def read_to_end(sock: socket.socket) -> bytes:
    """Read until the server closes the connection (or 10 s pass)."""
    received = b""
    with sock:
        while chunk := sock.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize(
    "stops",
    [[signal.SIGINT], [signal.SIGTERM], [signal.SIGINT, signal.SIGINT]],
    ids=["SIGINT", "SIGTERM", "SIGINT-twice"],
)
def test_one_signal_stops_the_server_with_streams_open_and_releases_its_run(
    tmp_path: Path, stops: list[signal.Signals]
) -> None:
    """Issue 14, item 4: Ctrl-C was ignored while an EventSource was connected, and a second
    one skipped the shutdown, leaving the run leased."""
    port = free_port()
    db = tmp_path / "api.db"
    command = [sys.executable, "-m", "durably_web", "serve-api", TARGET, "--db", str(db)]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port, process)
        base = f"http://127.0.0.1:{port}"
        every_run = open_stream(port, "/runs/subscribe")
        run_id = httpx.post(f"{base}/trigger", json={"jobName": "slow", "input": {}}).json()[
            "runId"
        ]
        one_run = open_stream(port, f"/subscribe?runId={run_id}")
        deadline = time.monotonic() + 10
        while httpx.get(f"{base}/steps", params={"runId": run_id}).json() == []:
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.05)  # the run is leased, in its hour-long second step
        assert httpx.get(f"{base}/run", params={"runId": run_id}).json()["status"] == "leased"
        stopped_at = time.monotonic()
        for stop in stops:  # back to back: the second one stops uvicorn waiting at all
            process.send_signal(stop)
        _, err = process.communicate(timeout=20)
        took = time.monotonic() - stopped_at
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert took < 10, f"exit took {took:.1f} s"
    for stream in (every_run, one_run):
        stream.settimeout(10)
        assert read_to_end(stream).endswith(b"0\r\n\r\n")  # ended, not cut mid-frame
    assert "Traceback" not in err, err
    with sqlite3.connect(db) as conn:
        status, owner = conn.execute(
            "SELECT status, lease_owner FROM durably_runs WHERE id = ?", (run_id,)
        ).fetchone()
    assert (status, owner) == ("pending", None)  # released: the next start resumes it


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE semantics are Linux's")
def test_serve_api_exits_when_the_database_breaks_under_its_worker(tmp_path: Path) -> None:
    """A full disk stops the worker; the server stops with it and says why (exit 1)."""
    port = free_port()
    db = tmp_path / "full.db"
    command = [
        sys.executable, "-m", "durably_web", "serve-api", f"{JOBS}:big_steps",
        "--db", str(db), "--port", str(port),
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: limit_file_size(400_000),
    )
    try:
        wait_for_port(port, process)
        answer = httpx.post(
            f"http://127.0.0.1:{port}/trigger",
            json={"jobName": "big-steps", "input": {"record": str(tmp_path / "record.txt")}},
        )
        assert answer.status_code == 200, answer.text
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1, err
    assert "the worker stopped: the database failed (SQLite error: " in err
    assert "start serve-api again" in err and "Traceback" not in err
    [(status, error)] = query(db, "SELECT status, error FROM durably_runs")
    assert status in ("pending", "leased") and error is None


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
    for flag, value in (("--allowed-origin", "example.com"), ("--allowed-host", "http://x")):
        bad = run_cli(TARGET, "--db", str(tmp_path / "x.db"), flag, value)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
        assert bad.stderr.startswith(f"durably-web: error: {flag}: {value!r} is not"), bad.stderr
    assert not (tmp_path / "x.db").exists()
