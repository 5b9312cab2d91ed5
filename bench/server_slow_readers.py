"""Server memory with SSE subscribers that never read (issue 14, item 3).

One ``durably-web serve-api bench/systems/flood_jobs.py:JOBS`` process on 127.0.0.1 with a
fresh database. ``--subscribers`` raw TCP clients open ``GET /runs/subscribe`` (a small
receive buffer, so the kernel absorbs little) and then never read. ``--runs`` runs of
``bench-flood`` are triggered; each runs ``--steps`` steps and logs ``--log-bytes`` characters
after each, so every subscriber is owed ``runs x steps x log_bytes`` bytes of ``log:write``
frames. The server's ``VmRSS`` is sampled every 100 ms from ``/proc`` until every run has
completed; ``VmHWM`` is its peak.

Reported: RSS when idle (before the subscribers connect), peak RSS during the load, RSS once
the runs are done, the time from the first trigger to the last run's completion, how many
subscriber streams the server had ended (a cut-off reader: EOF once the client finally reads
what its socket holds), and the server's log lines (``ERROR``/``WARNING``/``Traceback``).

Usage::

    .venv/bin/python bench/server_slow_readers.py                  # 5 x 5 x 100 x 100 KB
    .venv/bin/python bench/server_slow_readers.py --log-bytes 10000 --steps 20   # quick

Stdout is one Markdown table; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from server.processes import (
    BENCH,
    ROOT,
    Server,
    free_port,
    proc_status_mib,
    server_log,
    stop_server,
    wait_ready,
)

JOBS_TARGET = f"{BENCH / 'systems' / 'flood_jobs.py'}:JOBS"
RUNS_TIMEOUT_S = 600.0
DRAIN_TIMEOUT_S = 10.0


def log(message: str) -> None:
    """Write a progress line to stderr."""
    print(message, file=sys.stderr, flush=True)


def start(workdir: Path) -> Server:
    """Start ``serve-api`` on a free port with a fresh database in ``workdir``."""
    port = free_port()
    script = Path(sys.executable).parent / "durably-web"
    launcher = [str(script)] if script.exists() else [sys.executable, "-m", "durably_web"]
    command = [*launcher, "serve-api", JOBS_TARGET, "--db", str(workdir / "server.db")]
    log_path = workdir / "server.log"
    with log_path.open("wb") as output:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server("durably_web", process, port, log_path)


def open_non_reader(port: int, path: str) -> socket.socket:
    """Open ``GET path`` as an SSE request and return the socket, which is never read."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
    sock.sendall(request.encode())
    return sock


def drain(sock: socket.socket, timeout: float) -> tuple[int, bool]:
    """Read what the server sent until EOF or ``timeout``; return (bytes, ended by server)."""
    sock.settimeout(0.5)
    received = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            continue
        except OSError:
            return received, True
        if not chunk:
            return received, True
        received += len(chunk)
    return received, False


async def load(server: Server, args: argparse.Namespace) -> dict[str, float | int]:
    """Connect the non-readers, run the flood, sample RSS; return the measurements."""
    pid = server.process.pid
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30.0, trust_env=False) as http:
        await wait_ready(http, server)
        idle = proc_status_mib(pid)["VmRSS"]
        readers = [open_non_reader(server.port, args.path) for _ in range(args.subscribers)]
        await asyncio.sleep(0.5)  # let the server start the streams
        run_ids = []
        started = time.monotonic()
        for _ in range(args.runs):
            response = await http.post(
                "/trigger",
                json={
                    "jobName": "bench-flood",
                    "input": {"steps": args.steps, "log_bytes": args.log_bytes},
                },
            )
            response.raise_for_status()
            run_ids.append(response.json()["runId"])
        log(f"triggered {len(run_ids)} runs; {args.subscribers} subscribers not reading")
        peak = idle
        while True:
            peak = max(peak, proc_status_mib(pid)["VmRSS"])
            runs = (await http.get("/runs", params={"jobName": "bench-flood"})).json()
            if all(run["status"] == "completed" for run in runs) and len(runs) == args.runs:
                break
            if any(run["status"] in ("failed", "cancelled") for run in runs):
                raise RuntimeError(f"a run did not complete: {runs}")
            if time.monotonic() - started > RUNS_TIMEOUT_S:
                raise RuntimeError("the runs did not finish in time")
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - started
        status = proc_status_mib(pid)
        after = status["VmRSS"]
        hwm = status["VmHWM"]
    ended = 0
    received = 0
    for sock in readers:
        with sock:
            got, closed = drain(sock, DRAIN_TIMEOUT_S)
        received += got
        ended += int(closed)
    return {
        "idle_rss_mib": idle,
        "peak_rss_mib": max(peak, hwm),
        "after_rss_mib": after,
        "runs_s": elapsed,
        "streams_ended": ended,
        "bytes_received_after": received,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--subscribers", type=int, default=5, help="non-reading SSE clients")
    parser.add_argument("--runs", type=int, default=5, help="bench-flood runs")
    parser.add_argument("--steps", type=int, default=100, help="steps per run")
    parser.add_argument("--log-bytes", type=int, default=100_000, help="log line per step")
    parser.add_argument("--path", default="/runs/subscribe", help="the stream they open")
    parser.add_argument("--tmpdir", help="where the fresh database directory goes")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the measurement once and print it."""
    args = parse_args(argv)
    if min(args.subscribers, args.runs, args.steps, args.log_bytes) < 1:
        raise SystemExit("--subscribers, --runs, --steps and --log-bytes must be positive")
    with tempfile.TemporaryDirectory(prefix="slow-readers-", dir=args.tmpdir) as name:
        server = start(Path(name))
        try:
            result = asyncio.run(load(server, args))
        except BaseException:
            log(f"--- server log ---\n{server_log(server)}")
            raise
        finally:
            stop_server(server)
        logged = [
            line
            for line in server_log(server, limit=1_000_000).splitlines()
            if any(word in line for word in ("ERROR", "WARNING", "Traceback", "behind"))
        ]
    owed = args.runs * args.steps * args.log_bytes / 1e6
    print(
        f"{args.subscribers} non-reading subscribers on {args.path}; {args.runs} runs x "
        f"{args.steps} steps x {args.log_bytes} B logged ({owed:.0f} MB owed to each)\n"
    )
    print("| idle RSS | peak RSS | RSS after | runs took | streams ended by the server |")
    print("|---|---|---|---|---|")
    print(
        f"| {result['idle_rss_mib']:.0f} MiB | {result['peak_rss_mib']:.0f} MiB "
        f"| {result['after_rss_mib']:.0f} MiB | {result['runs_s']:.1f} s "
        f"| {result['streams_ended']} of {args.subscribers} |"
    )
    print(f"\nServer log: {len(logged)} error/warning lines")
    for line in dict.fromkeys(logged):
        print(f"    {line}  (x{logged.count(line)})")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
