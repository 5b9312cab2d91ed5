"""Server mode under load (issue 4): durably_web's HTTP/SSE server against upstream Durably's.

Two systems, each a real server process on 127.0.0.1 with its engine worker in-process and a
fresh file database (WAL, ``synchronous=NORMAL``) per repetition:

- ``durably_web``: ``durably-web serve-api bench/systems/server_jobs.py:JOBS --db FILE
  --port N`` (uvicorn, ``create_app`` defaults: ``sse_throttle=0.1``).
- ``upstream``: ``node bench/upstream_node/server.mjs --db FILE --port N``: upstream Durably
  0.15.0's ``createDurablyHandler(durably)`` (defaults: ``sseThrottleMs: 100``) on
  ``node:http``, same jobs, better-sqlite3 in WAL with ``synchronous=NORMAL``.

Both engines keep their defaults: polling interval 1 s, one run at a time. Per repetition and
system (systems alternate: A B A B ...), in one server process:

1. **SSE**: ``--sse-run-subscribers`` clients on ``GET /subscribe?runId=`` and
   ``--sse-all-subscribers`` on ``GET /runs/subscribe?jobName=bench-sse`` follow one run of
   ``bench-sse``: a ``gate`` step that waits for a file, then ``--steps`` quick steps, each
   followed by ``step.progress``. The gate file is created once every subscriber is connected
   and has seen the run start (``run:leased``, ``run:start`` or ``step:start``, live or in
   ``/subscribe``'s snapshot), so upstream's polling delay is not timed; the clock runs from
   that moment to the last subscriber's ``run:complete``. Counted over all subscribers:
   *step events* (``step:start`` and ``step:complete`` of the ``step-<i>`` steps; each
   subscriber must receive exactly ``2 x steps``; neither server throttles them) and *all
   events* (every ``data:`` frame of the run received after the gate opened: the step
   events, the gate's ``step:complete``, the ``run:progress`` frames, which both servers
   throttle to one per 100 ms per run and stream by default, and the terminal event). The
   headline is step events/s: both servers emit the same step events, unthrottled, and
   progress is throttled alike on both sides.
2. **POST /trigger**, twice: ``--concurrency`` requests in flight, each on a keep-alive
   connection of its own, triggering ``bench-noop`` (one step) for ``--warmup`` seconds (not
   counted), then for ``--duration`` seconds; requests/s = answered requests ÷ elapsed time.
   First with httpx (one ``AsyncClient`` per connection), then with a minimal asyncio HTTP/1.1
   client (one pre-encoded write per request): on this 2-core machine httpx costs the load
   generator several times the server's CPU per request and caps the rate, the raw client
   shows what the server itself sustains. The server's worker runs the triggered runs
   meanwhile, as a server does. The server's and the load generator's CPU (cores busy) are
   reported for each.
3. **Peak RSS**: ``VmHWM`` of the server process from ``/proc/<pid>/status`` after both
   phases (uvicorn and Node are each one process).

Any non-200 answer, malformed SSE frame, missing or extra step event, stream that does not
close after its terminal event, or error in the server's log fails the run loudly. Servers
run in their own process groups, killed at the end even on errors.

Usage::

    .venv/bin/python bench/server_load.py --repeat 5          # ~5 minutes
    .venv/bin/python bench/server_load.py --quick             # < 1 minute, a smoke run

Stdout is the report (Markdown); progress goes to stderr; ``--json`` gets every repetition.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, Protocol

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
UPSTREAM_DIR = BENCH / "upstream_node"
JOBS_TARGET = f"{BENCH / 'systems' / 'server_jobs.py'}:JOBS"
DEFAULT_JSON = BENCH / "results" / "server_load.json"
SYSTEMS = ("durably_web", "upstream")
TITLES = {"durably_web": "durably_web (uvicorn)", "upstream": "upstream 0.15 (node:http)"}
TERMINAL = frozenset({"run:complete", "run:fail", "run:cancel", "run:delete"})
STEP_EVENTS = frozenset({"step:start", "step:complete"})
# Any of these (live, or a /subscribe snapshot) means the run is leased, in its gate step.
STARTED = frozenset({"run:leased", "run:start", "step:start"})
READY_TIMEOUT_S = 30.0
SSE_TIMEOUT_S = 120.0
CLOSE_TIMEOUT_S = 5.0
TIMES = "\u00d7"  # the ratio and "by" sign in tables
DASH = "\u2013"  # min-max ranges in tables


@dataclass(frozen=True, slots=True)
class Metric:
    """One reported number: its key, row label, which way is better, whether it gets a ratio."""

    key: str
    label: str
    higher_is_better: bool
    ratio: bool = True


METRICS = (
    Metric("trigger_raw_rps", "POST /trigger requests/s, raw asyncio client ↑", True),
    Metric("trigger_raw_p50_ms", "  latency p50 (ms) ↓", higher_is_better=False),
    Metric("trigger_raw_p99_ms", "  latency p99 (ms) ↓", higher_is_better=False),
    Metric("trigger_raw_server_cpu", "  server CPU (cores)", False, ratio=False),
    Metric("trigger_raw_client_cpu", "  load generator CPU (cores)", False, ratio=False),
    Metric("trigger_httpx_rps", "POST /trigger requests/s, httpx client ↑", True),
    Metric("trigger_httpx_p50_ms", "  latency p50 (ms) ↓", higher_is_better=False),
    Metric("trigger_httpx_p99_ms", "  latency p99 (ms) ↓", higher_is_better=False),
    Metric("trigger_httpx_server_cpu", "  server CPU (cores)", False, ratio=False),
    Metric("trigger_httpx_client_cpu", "  load generator CPU (cores)", False, ratio=False),
    Metric("sse_step_events_per_s", "SSE step events/s delivered ↑", higher_is_better=True),
    Metric("sse_events_per_s", "SSE all events/s delivered ↑", higher_is_better=True),
    Metric("sse_run_steps_per_s", "  the run's steps/s (gate open → last terminal event) ↑", True),
    Metric("sse_client_cpu", "  load generator CPU (cores)", False, ratio=False),
    Metric("noop_completed_per_s", "runs the worker completed per s during the load ↑", True),
    Metric("noop_completed_share", "  share of the triggered runs", True, False),
    Metric("peak_rss_mib", "server peak RSS, VmHWM (MiB) ↓", higher_is_better=False),
    Metric("idle_rss_mib", "server RSS when ready (MiB) ↓", higher_is_better=False),
)


@dataclass(frozen=True, slots=True)
class Params:
    """The sizes of one run of the benchmark."""

    concurrency: int
    duration_s: float
    warmup_s: float
    steps: int
    run_subscribers: int
    all_subscribers: int


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


def log(message: str) -> None:
    """Write a progress line to stderr."""
    print(message, file=sys.stderr, flush=True)


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


async def check_ok(response: httpx.Response, what: str) -> Any:
    """Return the JSON of a 200 answer; raise with the status and body otherwise."""
    if response.status_code != 200:
        raise RuntimeError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
    return response.json()


# -- SSE ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Subscriber:
    """What one SSE client saw of the benchmark run."""

    path: str
    params: dict[str, str]
    run_id: str | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    opened_at: float | None = None
    step_events: int = 0
    events_after_open: int = 0
    progress_events: int = 0
    terminal_at: float | None = None
    closed_by_server: bool = False
    types: dict[str, int] = field(default_factory=dict)


def parse_frames(lines: list[str]) -> list[dict[str, Any]]:
    """Turn the lines of one SSE message into its event (none for a comment-only message)."""
    data = [line[5:].removeprefix(" ") for line in lines if line.startswith("data:")]
    other = [line for line in lines if not line.startswith(("data:", ":"))]
    if other:
        raise RuntimeError(f"unexpected SSE lines {other!r}")
    if not data:
        return []
    event = json.loads("\n".join(data))
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise RuntimeError(f"SSE data is not an event: {data!r}")
    return [event]


async def follow(
    client: httpx.AsyncClient, sub: Subscriber, steps: int, gate_opened: Callable[[], float | None]
) -> None:
    """Read one subscriber's stream until the benchmark run's terminal event.

    For ``/subscribe`` it then waits for the server to close the stream (upstream's contract).
    Only what arrives after the gate opened is counted.
    """
    timeout = httpx.Timeout(SSE_TIMEOUT_S, connect=10.0)
    async with client.stream("GET", sub.path, params=sub.params, timeout=timeout) as response:
        if response.status_code != 200:
            body = (await response.aread()).decode(errors="replace")
            raise RuntimeError(f"GET {sub.path}: HTTP {response.status_code}: {body[:500]}")
        kind = response.headers.get("content-type", "")
        if not kind.startswith("text/event-stream"):
            raise RuntimeError(f"GET {sub.path}: content-type {kind!r}")
        sub.connected.set()
        pending: list[str] = []
        lines = response.aiter_lines()
        async for line in lines:
            if line:
                pending.append(line)
                continue
            events, pending = parse_frames(pending), []
            for event in events:
                if sub.run_id is not None and event.get("runId") != sub.run_id:
                    continue
                kind = event["type"]
                sub.types[kind] = sub.types.get(kind, 0) + 1
                if gate_opened() is None:
                    if kind in STARTED:
                        sub.started.set()
                    continue
                sub.events_after_open += 1
                if kind in STEP_EVENTS and str(event.get("stepName", "")).startswith("step-"):
                    sub.step_events += 1
                elif kind == "run:progress":
                    sub.progress_events += 1
                if kind in TERMINAL:
                    sub.terminal_at = time.perf_counter()
                    if kind != "run:complete":
                        raise RuntimeError(f"the benchmark run ended with {event!r}")
            if sub.terminal_at is not None:
                break
        if sub.terminal_at is None:
            raise RuntimeError(f"GET {sub.path} ended before the run's terminal event")
        if sub.path == "/subscribe":  # upstream's contract: the stream ends after it
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    async for line in lines:
                        if line.startswith("data:"):
                            raise RuntimeError(f"GET /subscribe sent {line!r} after the end")
                sub.closed_by_server = True
            except TimeoutError:
                raise RuntimeError(
                    f"GET /subscribe stayed open {CLOSE_TIMEOUT_S:.0f} s after run:complete"
                ) from None
    if sub.step_events != 2 * steps:
        raise RuntimeError(
            f"GET {sub.path} delivered {sub.step_events} step events, expected {2 * steps}"
            f" (seen: {sub.types})"
        )


async def sse_phase(client: httpx.AsyncClient, params: Params, workdir: Path) -> dict[str, Any]:
    """Follow one ``bench-sse`` run with every subscriber; return the SSE metrics."""
    gate = workdir / "gate"
    opened: dict[str, float] = {}

    def gate_opened() -> float | None:
        return opened.get("at")

    subs = [
        Subscriber("/runs/subscribe", {"jobName": "bench-sse"})
        for _ in range(params.all_subscribers)
    ]
    tasks = [asyncio.ensure_future(follow(client, s, params.steps, gate_opened)) for s in subs]
    try:
        await wait_all([s.connected for s in subs], tasks)
        answer = await check_ok(
            await client.post(
                "/trigger",
                json={"jobName": "bench-sse", "input": {"steps": params.steps, "gate": str(gate)}},
            ),
            "POST /trigger (bench-sse)",
        )
        run_id = str(answer["runId"])
        for sub in subs:
            sub.run_id = run_id
        run_subs = [
            Subscriber("/subscribe", {"runId": run_id}, run_id=run_id)
            for _ in range(params.run_subscribers)
        ]
        new = [
            asyncio.ensure_future(follow(client, s, params.steps, gate_opened)) for s in run_subs
        ]
        subs += run_subs
        tasks += new
        await wait_all([s.connected for s in run_subs], new)
        # Upstream's worker polls every second and a trigger does not wake it: open the gate
        # only once every subscriber has seen the run start, so no poll wait is timed.
        await wait_all([s.started for s in subs], tasks)
        cpu0 = own_cpu_s()
        opened["at"] = time.perf_counter()
        gate.touch()
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    ended = max(s.terminal_at for s in subs if s.terminal_at is not None)
    elapsed = ended - opened["at"]
    return {
        "sse_step_events_per_s": sum(s.step_events for s in subs) / elapsed,
        "sse_events_per_s": sum(s.events_after_open for s in subs) / elapsed,
        "sse_run_steps_per_s": params.steps / elapsed,
        "sse_seconds": elapsed,
        "sse_client_cpu": (own_cpu_s() - cpu0) / elapsed,
        "sse_progress_events_per_subscriber": statistics.mean(s.progress_events for s in subs),
        "sse_events_per_subscriber": statistics.mean(s.events_after_open for s in subs),
    }


async def wait_all(events: list[asyncio.Event], tasks: Sequence[asyncio.Future[None]]) -> None:
    """Wait until every event is set; surface a subscriber's failure at once."""
    waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            while not all(w.done() for w in waits):
                await asyncio.wait([*waits, *tasks], return_when=asyncio.FIRST_COMPLETED)
                for task in tasks:
                    if task.done():
                        task.result()  # raises the subscriber's error
                        raise RuntimeError("an SSE stream ended before the gate opened")
    finally:
        for w in waits:
            w.cancel()


# -- POST /trigger ----------------------------------------------------------------------------

TRIGGER_BODY = json.dumps({"jobName": "bench-noop", "input": {}}).encode()


class Poster(Protocol):
    """One keep-alive connection that sends ``POST /trigger`` for ``bench-noop``."""

    async def trigger(self) -> Any:
        """Send one trigger; return the JSON answer, raise unless it is a 200."""
        ...

    async def aclose(self) -> None:
        """Close the connection."""
        ...


class HttpxPoster:
    """``POST /trigger`` through an ``httpx.AsyncClient`` of its own (one connection).

    One client per in-flight request: a shared client's pool does work proportional to its
    connections on every request.
    """

    def __init__(self, base_url: str) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=30.0,
            trust_env=False,
        )

    async def trigger(self) -> Any:
        """Send one trigger; return the JSON answer, raise unless it is a 200."""
        response = await self._client.post(
            "/trigger", content=TRIGGER_BODY, headers={"content-type": "application/json"}
        )
        return await check_ok(response, "POST /trigger")

    async def aclose(self) -> None:
        """Close the client."""
        await self._client.aclose()


class RawPoster:
    """``POST /trigger`` as one pre-encoded HTTP/1.1 write on an asyncio stream.

    A minimal keep-alive client (status line, headers, ``Content-Length`` or chunked body)
    that costs the load generator a fraction of httpx's CPU per request, so that the server,
    not the client, limits the request rate.
    """

    def __init__(self, port: int) -> None:
        self._port = port
        self._request = (
            f"POST /trigger HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(TRIGGER_BODY)}\r\n\r\n"
        ).encode() + TRIGGER_BODY
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def trigger(self) -> Any:
        """Send one trigger; return the JSON answer, raise unless it is a 200."""
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self._port)
        reader, writer = self._reader, self._writer
        writer.write(self._request)
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in head[1:]:
            if line:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                parts.append((await reader.readexactly(size + 2))[:-2])
            await reader.readuntil(b"\r\n")  # the empty trailer
            body = b"".join(parts)
        else:
            raise RuntimeError(f"POST /trigger: answer without a length: {head!r}")
        if headers.get("connection", "").lower() == "close":
            await self.aclose()
        if status != 200:
            raise RuntimeError(f"POST /trigger: HTTP {status}: {body[:500]!r}")
        return json.loads(body)

    async def aclose(self) -> None:
        """Close the connection."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None


async def trigger_phase(
    make_poster: Callable[[], Poster], params: Params, pid: int, prefix: str
) -> dict[str, Any]:
    """Keep ``concurrency`` triggers in flight for warm-up + duration; return the metrics.

    Args:
        make_poster: makes one connection; one is made per in-flight request.
        params: the sizes.
        pid: the server's process, whose CPU time is read before and after.
        prefix: the metric keys' prefix (``trigger_httpx`` or ``trigger_raw``).
    """
    latencies: list[float] = []
    clock: dict[str, float] = {}
    posters = [make_poster() for _ in range(params.concurrency)]

    async def worker(poster: Poster, until: float, record: bool) -> None:
        while time.perf_counter() < until:
            started = time.perf_counter()
            answer = await poster.trigger()
            finished = time.perf_counter()
            if not isinstance(answer, dict) or answer.get("disposition") != "created":
                raise RuntimeError(f"POST /trigger answered {answer!r}")
            if record:
                latencies.append(finished - started)
                clock["last"] = max(clock.get("last", 0.0), finished)

    try:
        warm_until = time.perf_counter() + params.warmup_s
        await asyncio.gather(*(worker(p, warm_until, False) for p in posters))
        server_cpu0, client_cpu0 = proc_cpu_s(pid), own_cpu_s()
        started = time.perf_counter()
        until = started + params.duration_s
        await asyncio.gather(*(worker(p, until, True) for p in posters))
        elapsed = clock["last"] - started
        server_cpu = proc_cpu_s(pid) - server_cpu0
        client_cpu = own_cpu_s() - client_cpu0
    finally:
        await asyncio.gather(*(p.aclose() for p in posters), return_exceptions=True)
    ordered = sorted(latencies)
    return {
        f"{prefix}_rps": len(latencies) / elapsed,
        f"{prefix}_requests": len(latencies),
        f"{prefix}_p50_ms": 1000 * ordered[len(ordered) // 2],
        f"{prefix}_p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        f"{prefix}_server_cpu": server_cpu / elapsed,
        f"{prefix}_client_cpu": client_cpu / elapsed,
    }


# -- one repetition -----------------------------------------------------------------------------

_LOG_ERRORS = ("Traceback", "Exception", "Error:", "request failed", "failed")


def check_server_log(server: Server) -> None:
    """Fail if the server logged an error (beyond its start-up lines)."""
    text = server_log(server, limit=1_000_000)
    bad = [line for line in text.splitlines() if any(word in line for word in _LOG_ERRORS)]
    if bad:
        raise RuntimeError(f"{server.system} server logged errors:\n" + server_log(server))


async def measure(server: Server, params: Params, workdir: Path) -> dict[str, Any]:
    """Run both phases against a started server; return every metric of the repetition."""
    limits = httpx.Limits(
        max_connections=params.concurrency + params.run_subscribers + params.all_subscribers + 4,
        max_keepalive_connections=params.concurrency + 4,
    )
    async with httpx.AsyncClient(
        base_url=server.base_url, limits=limits, timeout=30.0, trust_env=False
    ) as client:
        await wait_ready(client, server)
        idle = proc_status_mib(server.process.pid)
        metrics: dict[str, Any] = {"idle_rss_mib": idle["VmRSS"]}
        metrics.update(await sse_phase(client, params, workdir))
        pid = server.process.pid
        load_started = time.perf_counter()
        metrics.update(
            await trigger_phase(lambda: HttpxPoster(server.base_url), params, pid, "trigger_httpx")
        )
        metrics.update(
            await trigger_phase(lambda: RawPoster(server.port), params, pid, "trigger_raw")
        )
        load_s = time.perf_counter() - load_started
    metrics.update(run_counts(workdir / "server.db", load_s))
    status = proc_status_mib(server.process.pid)
    metrics["peak_rss_mib"] = status["VmHWM"]
    metrics["final_rss_mib"] = status["VmRSS"]
    if server.process.poll() is not None:
        raise RuntimeError(f"{server.system} server died:\n{server_log(server)}")
    return metrics


def run_counts(db: Path, load_s: float) -> dict[str, Any]:
    """Count the ``bench-noop`` runs and how many the worker finished during the load.

    Read-only, from the server's database (both engines use upstream's schema), right after
    the last trigger; ``load_s`` is the time since the first (both phases, warm-ups included).
    """
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT status, COUNT(*) FROM durably_runs WHERE job_name = 'bench-noop' "
            "GROUP BY status"
        ).fetchall()
    counts = {str(status): int(n) for status, n in rows}
    if counts.get("failed"):
        raise RuntimeError(f"{counts['failed']} bench-noop runs failed")
    total = sum(counts.values())
    done = counts.get("completed", 0)
    return {
        "noop_runs": total,
        "noop_completed_per_s": done / load_s,
        "noop_completed_share": done / total,
    }


def run_once(system: str, params: Params, tmpdir: str | None) -> dict[str, Any]:
    """Start ``system``'s server on a fresh database, measure it, stop it; return metrics."""
    with tempfile.TemporaryDirectory(prefix=f"server-load-{system}-", dir=tmpdir) as name:
        workdir = Path(name)
        server = start_server(system, workdir)
        try:
            metrics = asyncio.run(measure(server, params, workdir))
            check_server_log(server)
            return metrics
        except BaseException:
            log(f"--- {system} server log ---\n{server_log(server)}")
            raise
        finally:
            stop_server(server)


# -- report -------------------------------------------------------------------------------------


def fmt(value: float | None) -> str:
    """Format a number with as many digits as its size deserves."""
    if value is None:
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def summary(results: list[dict[str, Any]], system: str, key: str) -> tuple[float, float, float]:
    """Return the median, min and max of ``key`` over ``system``'s repetitions."""
    values = [r["metrics"][key] for r in results if r["system"] == system and "metrics" in r]
    return statistics.median(values), min(values), max(values)


def ratio(metric: Metric, mine: float, theirs: float) -> float | None:
    """Return durably_web ÷ upstream oriented so that > 1 means durably_web is better."""
    if mine <= 0 or theirs <= 0:
        return None
    return mine / theirs if metric.higher_is_better else theirs / mine


def markdown(results: list[dict[str, Any]], params: Params, repeat: int) -> str:
    """Build the Markdown table of medians (min-max) and ratios."""
    title = (
        f"**Server mode: median of {repeat} ({'min' + DASH + 'max'}); POST /trigger: "
        f"{params.concurrency} in flight for {params.duration_s:g} s; SSE: one run of "
        f"{params.steps:,} steps followed by {params.run_subscribers} {TIMES} `/subscribe` + "
        f"{params.all_subscribers} {TIMES} `/runs/subscribe`; WAL, synchronous=NORMAL, file "
        "database**"
    )
    head = f"| metric | {TITLES['durably_web']} | {TITLES['upstream']} | durably_web ÷ upstream |"
    lines = [title, "", head, "|---|---:|---:|---:|"]
    for metric in METRICS:
        cells = []
        meds = []
        for system in SYSTEMS:
            med, low, high = summary(results, system, metric.key)
            meds.append(med)
            cells.append(f"{fmt(med)} ({fmt(low)}{DASH}{fmt(high)})")
        shown = ratio(metric, meds[0], meds[1]) if metric.ratio else None
        label = (
            metric.label.replace("  ", "&nbsp;&nbsp;", 1)
            if metric.label[0] == " "
            else (metric.label)
        )
        cell = f"{TIMES}{fmt(shown)}" if shown is not None else ""
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {cell} |")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """Describe the machine and the load on it."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "loadavg": os.getloadavg(),
    }


def versions() -> dict[str, Any]:
    """Return the versions of everything measured."""
    node = shutil.which("node")
    node_version = ""
    if node is not None:
        node_version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    package = UPSTREAM_DIR / "node_modules" / "@coji" / "durably" / "package.json"
    upstream = json.loads(package.read_text())["version"] if package.exists() else None
    return {
        "durably_web": version("durably-web"),
        "uvicorn": version("uvicorn"),
        "httpx": version("httpx"),
        "python": platform.python_version(),
        "node": node_version,
        "@coji/durably": upstream,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 repetition (<1 min)")
    parser.add_argument("--repeat", type=int, help="repetitions per system (default 5; quick 1)")
    parser.add_argument("--concurrency", type=int, default=16, help="triggers in flight")
    parser.add_argument("--duration", type=float, help="seconds of timed triggers (10; quick 2)")
    parser.add_argument("--warmup", type=float, help="seconds of untimed triggers (2; quick 0.5)")
    parser.add_argument("--steps", type=int, help="steps of the SSE run (2000; quick 200)")
    parser.add_argument("--sse-run-subscribers", type=int, default=4, help="on /subscribe")
    parser.add_argument("--sse-all-subscribers", type=int, default=1, help="on /runs/subscribe")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where results go")
    parser.add_argument("--tmpdir", help="where the fresh database directories go")
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run every repetition, alternating systems; print the report; write the JSON."""
    args = parse_args(argv)
    # SIGTERM (and SIGINT, even when inherited as ignored) unwinds like Ctrl-C, so the
    # ``finally`` blocks stop the servers.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    repeat = args.repeat or (1 if args.quick else 5)
    params = Params(
        concurrency=args.concurrency,
        duration_s=args.duration or (2.0 if args.quick else 10.0),
        warmup_s=args.warmup if args.warmup is not None else (0.5 if args.quick else 2.0),
        steps=args.steps or (200 if args.quick else 2000),
        run_subscribers=args.sse_run_subscribers,
        all_subscribers=args.sse_all_subscribers,
    )
    if min(repeat, params.concurrency, params.steps) < 1 or params.duration_s <= 0:
        raise SystemExit("--repeat, --concurrency, --steps and --duration must be positive")
    if params.run_subscribers + params.all_subscribers < 1:
        raise SystemExit("at least one SSE subscriber is needed")
    started = datetime.now(UTC)
    info = {"machine_at_start": machine(), "versions": versions()}
    results: list[dict[str, Any]] = []
    for rep in range(repeat):
        for system in SYSTEMS:
            log(f"[{rep + 1}/{repeat}] {system} ...")
            metrics = run_once(system, params, args.tmpdir)
            results.append({"system": system, "repetition": rep, "metrics": metrics})
            log(
                f"    {metrics['trigger_raw_rps']:,.0f} req/s (raw), "
                f"{metrics['trigger_httpx_rps']:,.0f} req/s (httpx), "
                f"{metrics['sse_step_events_per_s']:,.0f} step events/s, "
                f"peak RSS {metrics['peak_rss_mib']:.1f} MiB"
            )
    report = markdown(results, params, repeat)
    print(report)
    medians = {
        system: {m.key: summary(results, system, m.key)[0] for m in METRICS} for system in SYSTEMS
    }
    document = {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "params": dataclasses.asdict(params),
        "repeat": repeat,
        "info": {**info, "machine_at_end": machine()},
        "results": results,
        "medians": medians,
        "report": report,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2) + "\n")
    log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
