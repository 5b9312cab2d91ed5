"""Trigger -> start latency across processes on PostgreSQL (NOTIFY wakes the idle worker).

One worker process (polling once a minute, so only NOTIFY can start a run quickly) and this
process, which triggers runs one at a time and waits for each to complete. A run's start is
the moment its job function begins in the worker (it returns ``time.time()`` of that moment);
both processes read the same clock. Prints one JSON line: p50 / p95 / max in milliseconds.

    .venv/bin/python bench/systems/pg_trigger_latency.py --runs 200              # own cluster
    .venv/bin/python bench/systems/pg_trigger_latency.py --url postgresql://...  # existing db

Without ``--url`` it starts a throwaway cluster with ``scripts/postgres`` and stops it after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_workloads import percentiles

from durably_web import StepContext, create_durably, define_job

ROOT = Path(__file__).resolve().parents[2]
POLLING_INTERVAL = 60.0
SETTLE = 0.02  # seconds between runs, so the worker is idle (waiting) when the next one comes


@define_job(name="latency-probe", input=dict)
async def probe(step: StepContext, payload: dict[str, Any]) -> dict[str, float]:
    """Return when the job function began, in the worker's (= this machine's) clock."""
    return {"started": time.time()}


async def work(url: str) -> None:
    """Be the worker process: execute runs until stdin closes."""
    durably = create_durably(url, jobs={"probe": probe}, polling_interval=POLLING_INTERVAL)
    await durably.init()
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await durably.close()


async def measure(url: str, runs: int) -> dict[str, Any]:
    """Trigger ``runs`` runs one by one from this process; return the latency summary."""
    worker = subprocess.Popen(
        [sys.executable, __file__, "--worker", "--url", url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert worker.stdin is not None
    assert worker.stdout is not None
    try:
        if worker.stdout.readline().strip() != "ready":
            raise RuntimeError("the worker process did not start")
        client = create_durably(url, jobs={"probe": probe})
        await client.migrate()
        samples: list[float] = []
        for _ in range(runs + 5):  # the first 5 warm connections and plans up
            await asyncio.sleep(SETTLE)
            triggered = time.time()
            run = await client.jobs.probe.trigger({})
            done = await client.wait_for_run(run.id, timeout=30)
            samples.append((done.output["started"] - triggered) * 1000)
        await client.close()
    finally:
        worker.stdin.close()
        worker.wait(30)
    measured = samples[5:]
    p50, p95 = percentiles(measured)
    return {
        "benchmark": "pg_trigger_to_start",
        "runs": runs,
        "p50_ms": round(p50, 2),
        "p95_ms": round(p95, 2),
        "max_ms": round(max(measured), 2),
        "worker_polling_interval_s": POLLING_INTERVAL,
    }


def main() -> None:
    """Parse the command line; measure (or be the worker)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a postgresql:// URL (default: a throwaway cluster)")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(work(args.url))
        return
    cluster: dict[str, str] | None = None
    url = args.url
    if url is None:
        out = subprocess.run(
            [str(ROOT / "scripts" / "postgres"), "start"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        cluster = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        url = cluster["URL"]
    try:
        print(json.dumps(asyncio.run(measure(url, args.runs))))
    finally:
        if cluster is not None:
            subprocess.run([str(ROOT / "scripts" / "postgres"), "stop", cluster["DIR"]], check=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
