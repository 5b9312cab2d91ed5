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
import signal
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from server.params import Params
from server.processes import (
    BENCH,
    Server,
    check_server_log,
    proc_status_mib,
    server_log,
    start_server,
    stop_server,
    wait_ready,
)
from server.report import METRICS, SYSTEMS, machine, markdown, summary, versions
from server.sse import sse_phase
from server.trigger import HttpxPoster, RawPoster, trigger_phase

DEFAULT_JSON = BENCH / "results" / "server_load.json"


def log(message: str) -> None:
    """Write a progress line to stderr."""
    print(message, file=sys.stderr, flush=True)


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
