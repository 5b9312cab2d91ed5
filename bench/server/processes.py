"""The servers under load: start, wait for, inspect and stop their processes.

``durably_web`` runs ``durably-web serve-api bench/systems/server_jobs.py:JOBS``, ``upstream``
runs ``node bench/upstream_node/server.mjs``; each in its own process group, with its combined
output in a log file. CPU time and RSS are read from ``/proc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent.parent
BENCH = ROOT / "bench"
UPSTREAM_DIR = BENCH / "upstream_node"
JOBS_TARGET = f"{BENCH / 'systems' / 'server_jobs.py'}:JOBS"
READY_TIMEOUT_S = 30.0
_LOG_ERRORS = ("Traceback", "Exception", "Error:", "request failed", "failed")


@dataclass(slots=True)
class Server:
    """A started server process and where it listens."""

    system: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    base_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.base_url = f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    """Return a TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_command(system: str, db: Path, port: int) -> tuple[list[str], Path]:
    """Return the command line and working directory that start ``system``'s server."""
    if system == "durably_web":
        script = Path(sys.executable).parent / "durably-web"
        launcher = [str(script)] if script.exists() else [sys.executable, "-m", "durably_web"]
        args = ["serve-api", JOBS_TARGET, "--db", str(db), "--port", str(port)]
        return [*launcher, *args], ROOT
    if system == "upstream":
        if not (UPSTREAM_DIR / "node_modules" / "@coji" / "durably").is_dir():
            raise RuntimeError(f"upstream is not installed: run `npm ci` in {UPSTREAM_DIR}")
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not on PATH")
        return [node, "server.mjs", "--db", str(db), "--port", str(port)], UPSTREAM_DIR
    raise ValueError(f"unknown system {system!r}")


def start_server(system: str, workdir: Path) -> Server:
    """Start ``system``'s server on a free port with a fresh database in ``workdir``."""
    port = free_port()
    command, cwd = server_command(system, workdir / "server.db", port)
    log_path = workdir / "server.log"
    with log_path.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as a whole at the end
        )
    return Server(system, process, port, log_path)


def server_log(server: Server, limit: int = 4000) -> str:
    """Return the end of the server's combined stdout and stderr."""
    try:
        return server.log_path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def stop_server(server: Server) -> None:
    """Terminate the server's process group (SIGTERM, then SIGKILL after 5 s)."""
    process = server.process
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    # Anything the server started in its group goes too (nothing should remain).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


async def wait_ready(client: httpx.AsyncClient, server: Server) -> None:
    """Poll ``GET /runs?limit=1`` until it answers 200; fail if the process exits first."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.system} server exited with {server.process.returncode}:\n"
                + server_log(server)
            )
        with contextlib.suppress(httpx.TransportError):
            response = await client.get("/runs", params={"limit": "1"})
            if response.status_code == 200:
                return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{server.system} server not ready in {READY_TIMEOUT_S:.0f} s")


def proc_status_mib(pid: int) -> dict[str, float]:
    """Read ``VmHWM`` and ``VmRSS`` of ``pid`` from ``/proc``, in MiB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0]) / 1024  # kB
    return values


def proc_cpu_s(pid: int) -> float:
    """Return the user + system CPU seconds ``pid`` has used, from ``/proc/<pid>/stat``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """Return this process's user + system CPU seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def check_server_log(server: Server) -> None:
    """Fail if the server logged an error (beyond its start-up lines)."""
    text = server_log(server, limit=1_000_000)
    bad = [line for line in text.splitlines() if any(word in line for word in _LOG_ERRORS)]
    if bad:
        raise RuntimeError(f"{server.system} server logged errors:\n" + server_log(server))
