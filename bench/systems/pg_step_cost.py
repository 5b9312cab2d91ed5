r"""What one PostgreSQL worker spends per step: CPU time, and statements by name.

Runs the engine and its store in this one process on a fresh database of an existing server
(dropped after): ``runs`` runs of the suite's ``bench`` job are triggered first, then the
worker (``max_concurrent_runs`` = ``--concurrency``) drains them. Prints one JSON line: steps/s
of the drain, this process's CPU microseconds per step (``time.process_time``: the engine,
psycopg and the event loop; the server's CPU is not in it), and how many statements of each
name of the store's query set were sent per 1,000 steps::

    .venv/bin/python bench/systems/pg_step_cost.py --url "$URL"          # 30 runs x 100 steps
    .venv/bin/python bench/systems/pg_step_cost.py --url "$URL" \
        --runs 32 --steps 40 --sleep-ms 10 --concurrency 8                  # the pg_io shape

``--loop`` as ``durably-web worker``'s (default auto: uvloop when installed).

Not a comparison between systems (``pg_suite.py`` is): a way to see where a change to the
step path moves the cost, less disturbed by a loaded machine than a rate is.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from durably_pg_agent import bench_steps

from durably_web import create_durably
from durably_web.cli import eventloop
from durably_web.storage.postgres import database
from durably_web.storage.postgres.store import PostgresStore


def _count_statements(names: dict[str, str]) -> collections.Counter[str]:
    """Count every statement sent through a ``Session`` from now on, by query name."""
    counts: collections.Counter[str] = collections.Counter()
    fetch, execute = database.Session.fetch, database.Session.execute

    async def counted_fetch(
        self: database.Session, sql: str, params: database.Params | None = None
    ) -> list[dict[str, Any]]:
        counts[names.get(sql, "other")] += 1
        return await fetch(self, sql, params)

    async def counted_execute(
        self: database.Session, sql: str, params: database.Params | None = None
    ) -> int:
        counts[names.get(sql, "other")] += 1
        return await execute(self, sql, params)

    database.Session.fetch = counted_fetch  # type: ignore[method-assign]
    database.Session.execute = counted_execute  # type: ignore[method-assign]
    return counts


async def measure(
    url: str, runs: int, steps: int, sleep_ms: float, concurrency: int
) -> dict[str, Any]:
    """Trigger the runs, drain them with one worker, return the measurements."""
    durably = create_durably(url, jobs={"bench": bench_steps}, max_concurrent_runs=concurrency)
    await durably.migrate()
    for _ in range(runs):
        await durably.jobs.bench.trigger({"steps": steps, "sleep_ms": sleep_ms})
    store = durably.store
    assert isinstance(store, PostgresStore)
    counts = _count_statements({sql: name for name, sql in store._q.items()})
    done = asyncio.Event()
    completed = 0

    def on_complete(_: Any) -> None:
        nonlocal completed
        completed += 1
        if completed == runs:
            done.set()

    durably.on("run:complete", on_complete)
    wall, cpu = time.perf_counter(), time.process_time()
    durably.start()
    await done.wait()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await durably.close()
    total = runs * steps
    return {
        "steps_per_s": round(total / wall, 1),
        "cpu_us_per_step": round(cpu / total * 1e6, 1),
        "statements_per_1000_steps": {
            name: round(n * 1000 / total, 1) for name, n in counts.most_common()
        },
    }


def main() -> None:
    """Parse the arguments, measure on a fresh database, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="postgresql:// URL of an existing server")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--sleep-ms", type=float, default=0.0)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--loop", default="auto", choices=eventloop.LOOPS)
    args = parser.parse_args()
    name = f"step_cost_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        url = urlunsplit(urlsplit(args.url)._replace(path=f"/{name}"))
        result = eventloop.run(
            measure(url, args.runs, args.steps, args.sleep_ms, args.concurrency), args.loop
        )
    finally:
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    loop = eventloop.loop_name(args.loop)
    print(
        json.dumps({"benchmark": "pg_step_cost", **vars(args), "url": None, "loop": loop, **result})
    )


if __name__ == "__main__":
    main()
