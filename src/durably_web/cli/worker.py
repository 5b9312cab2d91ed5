"""The ``worker`` command: a long-lived worker process that runs jobs and fires schedules.

::

    durably-web worker MODULE[:ATTR] [--db PATH]

``MODULE[:ATTR]`` names the engine as for ``serve-api``: a :class:`~durably_web.Durably`, a
job, a dict of jobs, or every job of the module (the engine is then made on ``--db``). If the
module defines ``async def on_start(durably)``, it is awaited once the database is migrated,
before the worker starts: declare the schedules there (``await durably.schedule(...)``;
declaring an unchanged schedule again keeps its next tick, so ticks missed while no worker
ran are caught up as its ``catch_up`` says).

Run one or several (on one database, on one machine or several with PostgreSQL): each claims
runs, and a schedule's tick makes one run whichever worker sees it first. SIGINT or SIGTERM
stops it: runs in flight get ``--stop-timeout`` seconds to finish, then go back to pending
for the next worker; exit 0. A database that fails under the worker stops it with exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import signal
import sys
from typing import Any

from durably_web.cli.common import DEFAULT_DB, UsageError
from durably_web.cli.loading import engine_of, load_attribute
from durably_web.cli.render import format_local
from durably_web.core.durably import Durably
from durably_web.events import WorkerError

__all__ = ["add_worker", "run_worker"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def add_worker(commands: Any) -> None:
    """Register ``worker`` on the ``durably-web`` command parsers."""
    parser = commands.add_parser(
        "worker",
        help="run a long-lived worker: its jobs' runs and its schedules",
        description="Run a worker until SIGINT/SIGTERM: it claims runs of the module's jobs "
        "and fires their schedules. MODULE may define async on_start(durably) to declare "
        "schedules.",
    )
    parser.add_argument("target", metavar="MODULE[:ATTR]", help="a module or .py file")
    parser.add_argument("--db", default=DEFAULT_DB, metavar="PATH", help="SQLite file for jobs")
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="on SIGINT/SIGTERM, wait this long for runs in flight (default 10)",
    )


def run_worker(args: argparse.Namespace) -> int:
    """Run the worker until a signal (exit 0) or a broken database (exit 1)."""
    if not 0 <= args.stop_timeout <= 3600:
        raise UsageError(f"--stop-timeout must be 0-3600 seconds, got {args.stop_timeout}")
    module, _, value = load_attribute(args.target)
    durably = engine_of(value, args.db, "run")
    on_start = getattr(module, "on_start", None)
    if on_start is not None and not inspect.iscoroutinefunction(on_start):
        raise UsageError(f"on_start in {args.target!r} must be an async function")
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_work(durably, on_start, args.stop_timeout))
    return 0


async def _work(durably: Durably, on_start: Any, stop_timeout: float) -> int:
    stop = asyncio.Event()
    failed: list[str] = []

    def on_error(event: WorkerError) -> None:
        if event.context == "worker-stopped":
            failed.append(event.error)
            stop.set()
        else:
            print(f"[worker:error] {event.context}: {event.error}", file=sys.stderr)

    loop = asyncio.get_running_loop()
    for sig in _SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    durably.on("worker:error", on_error)
    try:
        await durably.migrate()
        if on_start is not None:
            await on_start(durably)
        durably.start()
        _announce(durably, await durably.get_schedules())
        await stop.wait()
    finally:
        for sig in _SIGNALS:
            loop.remove_signal_handler(sig)
        await durably.close(timeout=stop_timeout)
    if failed:
        print(
            f"durably-web: the worker stopped: the database failed ({failed[0]})", file=sys.stderr
        )
        return 1
    return 0


def _announce(durably: Durably, schedules: list[Any]) -> None:
    jobs = ", ".join(sorted(durably.worker.jobs)) or "none"
    print(f"durably-web worker {durably.worker_id}: jobs {jobs}", file=sys.stderr)
    for schedule in schedules:
        if schedule.job_name in durably.worker.jobs:
            print(
                f"  schedule {schedule.name}: {schedule.cron} ({schedule.timezone}), "
                f"next {format_local(schedule.next_tick)}",
                file=sys.stderr,
            )
    sys.stderr.flush()
