"""The ``worker`` command: a worker process that runs a module's jobs and fires its schedules.

::

    durably-web worker DATABASE --jobs MODULE[:ATTR] [--concurrency N]
                       [--lease-duration SECONDS] [--polling-interval SECONDS]
                       [--shutdown-timeout SECONDS] [--loop auto|asyncio|uvloop]
    durably-web worker MODULE[:ATTR] [--db DATABASE] [...]   (the same; API.md's spelling)

``DATABASE`` is a ``postgresql://`` URL (workers on several machines share it), a SQLite file
or a ``sqlite:///`` URL (processes of one machine; default ``durably.db``). The jobs are named
as ``serve-api`` names them: a module's jobs, a dict of jobs, one job, or a
:class:`~durably_web.Durably` (which keeps its own database and options). If the module
defines ``async def on_start(durably)``, it is awaited once the database is migrated, before
the worker starts: declare the schedules there (``await durably.schedule(...)``; declaring an
unchanged schedule again keeps its next tick, so ticks missed while no worker ran are caught
up as its ``catch_up`` says). A schedule's tick makes one run whichever worker sees it
first. Start as many
worker processes as you like: each migrates (once, whoever comes first) and claims runs of its
jobs; on PostgreSQL an idle worker wakes on a trigger's NOTIFY. Runs of jobs a worker does not
register are left alone (another worker may serve them).

Each run's outcome is printed on stdout as it ends (``<time> <run id> <job> completed``);
``worker:error`` events on stderr. One SIGINT or SIGTERM stops the worker: the runs in flight
get ``--shutdown-timeout`` seconds (default 3) to finish, then are interrupted and handed back
(pending again, checkpoints kept, for another worker at once), and the process exits 0. When
the database fails under the worker (a full disk, a corrupt SQLite file: ``worker:error``
with context ``worker-stopped``) it exits 1 with the error. A PostgreSQL restart or outage is
not a failure: the worker waits and reconnects. ``--loop`` picks the event loop
(:mod:`durably_web.cli.eventloop`: uvloop when it is installed, unless ``--loop asyncio``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import signal
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TextIO

from durably_web.cli import eventloop
from durably_web.cli.common import DB_HELP, DEFAULT_DB, UsageError, redacted
from durably_web.cli.loading import engine_of, jobs_of, load_attribute
from durably_web.cli.render import format_local
from durably_web.core.durably import Durably
from durably_web.errors import StorageError, ValidationError
from durably_web.events import Event, RunCancel, RunComplete, RunFail, WorkerError
from durably_web.options import MAX_WAIT, check_seconds

__all__ = ["add_worker", "run_worker"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def add_worker(commands: Any) -> None:
    """Register ``worker`` on the ``durably-web`` command parsers."""
    parser = commands.add_parser(
        "worker",
        help="run a worker process for a module's jobs (one of many on one database)",
        description="Claim and execute runs of a module's jobs until SIGINT or SIGTERM. Start "
        "several, on one PostgreSQL database from several machines, or on one SQLite file.",
    )
    parser.add_argument(
        "target",
        metavar="DATABASE|MODULE",
        help="the database when --jobs names the jobs; else the jobs' MODULE[:ATTR], with --db",
    )
    parser.add_argument(
        "--jobs",
        metavar="MODULE[:ATTR]",
        help="a module or .py file (every job it defines), or a job or dict of jobs in it",
    )
    parser.add_argument("--db", metavar="DATABASE", help=DB_HELP)
    parser.add_argument(
        "--concurrency", type=int, default=1, metavar="N", help="runs executed at once, 1-1000"
    )
    parser.add_argument(
        "--lease-duration",
        type=float,
        metavar="SECONDS",
        help="how long a killed worker's runs stay leased before another worker resumes them "
        "(default 30)",
    )
    parser.add_argument(
        "--polling-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often an idle worker looks for runs no notification announced (default 1)",
    )
    parser.add_argument(
        "--shutdown-timeout",
        "--stop-timeout",
        dest="shutdown_timeout",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="on SIGINT/SIGTERM, how long runs in flight may finish before they are handed "
        "back (default 3)",
    )
    parser.add_argument("--loop", default="auto", choices=eventloop.LOOPS, help=eventloop.LOOP_HELP)


def run_worker(args: argparse.Namespace) -> int:
    """Run the worker until SIGINT or SIGTERM; return the exit status (see the module)."""
    if not 1 <= args.concurrency <= 1000:
        raise UsageError(f"--concurrency must be 1-1000, got {args.concurrency}")
    try:
        check_seconds(
            args.shutdown_timeout, "--shutdown-timeout", maximum=MAX_WAIT, allow_zero=True
        )
    except ValidationError as exc:
        raise UsageError(exc.message) from None
    if args.jobs is not None and args.db is not None:
        raise UsageError(
            "give the database once: `worker DATABASE --jobs MODULE` or "
            "`worker MODULE --db DATABASE`"
        )
    if args.jobs is not None:
        database, target = args.target, args.jobs
    else:
        database, target = args.db or DEFAULT_DB, args.target
    loop = eventloop.loop_name(args.loop)  # a missing uvloop is refused before connecting
    module, _, value = load_attribute(target)
    if not isinstance(value, Durably) and jobs_of(value) is None:
        raise UsageError(
            f"{target!r} is {type(value).__name__}: give a module, a job, a dict of jobs or a "
            "Durably"
        )
    options: dict[str, Any] = {}
    if args.lease_duration is not None:
        options["lease_duration"] = args.lease_duration
    durably = engine_of(
        value,
        database,
        "run",
        max_concurrent_runs=args.concurrency,
        polling_interval=args.polling_interval,
        unknown_job_grace=None,
        **options,
    )
    on_start = getattr(module, "on_start", None)
    if on_start is not None and not inspect.iscoroutinefunction(on_start):
        raise UsageError(f"on_start in {target!r} must be an async function")
    print(
        f"durably-web worker {durably.worker_id}: jobs {', '.join(sorted(durably.worker.jobs))}"
        f" on {redacted(database)}, {durably.options.max_concurrent_runs} at a time,"
        f" {loop} event loop",
        file=sys.stderr,
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C before the handlers are in place
        failure = eventloop.run(
            _work(durably, on_start, args.shutdown_timeout, sys.stdout, sys.stderr), args.loop
        )
        if failure is not None:
            print(
                f"durably-web: the worker stopped: the database failed ({failure}). Its runs "
                "were handed back, not failed; start the worker again once the database is "
                "healthy and they resume.",
                file=sys.stderr,
            )
            return 1
    return 0


async def _work(
    durably: Durably, on_start: Any, shutdown_timeout: float, out: TextIO, err: TextIO
) -> StorageError | None:
    """Start the worker; on a signal or a failed database stop it; return the failure."""
    stopping = asyncio.Event()
    failure: list[StorageError] = []

    def on_event(event: Event) -> None:
        if isinstance(event, (RunComplete, RunFail, RunCancel)):
            print(_outcome(event), file=out, flush=True)
        elif isinstance(event, WorkerError):
            print(f"[worker:error] {event.context}: {event.error}", file=err, flush=True)
            if event.context == "worker-stopped" and not failure:
                stopped = durably.worker.failure
                failure.append(stopped if stopped is not None else StorageError(event.error))
                stopping.set()

    unsubscribe = durably.on("*", on_event)
    try:
        with _signals_set(stopping):
            # A signal stops the worker while it still waits for its database, too.
            starting = asyncio.create_task(_start(durably, on_start, err))
            signalled = asyncio.create_task(stopping.wait())
            try:
                await asyncio.wait((starting, signalled), return_when=asyncio.FIRST_COMPLETED)
                if starting.done():
                    starting.result()  # init's error, if any
                    await signalled
                else:
                    starting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await starting
            finally:
                signalled.cancel()
    finally:
        try:  # runs that end while the worker stops are printed too
            await durably.close(timeout=shutdown_timeout)
        finally:
            unsubscribe()
    return failure[0] if failure else None


async def _start(durably: Durably, on_start: Any, err: TextIO) -> None:
    """Migrate, await the module's ``on_start``, start the worker, print the schedules."""
    await durably.migrate()
    if on_start is not None:
        await on_start(durably)
    await durably.init()
    for schedule in await durably.get_schedules():
        if schedule.job_name in durably.worker.jobs:
            print(
                f"  schedule {schedule.name}: {schedule.cron} ({schedule.timezone}), "
                f"next {format_local(schedule.next_tick)}",
                file=err,
                flush=True,
            )


def _outcome(event: RunComplete | RunFail | RunCancel) -> str:
    when = datetime.now().astimezone().strftime("%H:%M:%S")
    head = f"{when} {event.run_id} {event.job_name}"
    if isinstance(event, RunComplete):
        return f"{head} completed"
    if isinstance(event, RunFail):
        return f"{head} failed: {' '.join(event.error.split())}"
    return f"{head} cancelled"


@contextlib.contextmanager
def _signals_set(stopping: asyncio.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stopping`` (once is enough: later ones change nothing)."""
    loop = asyncio.get_running_loop()
    for sig in _SIGNALS:
        loop.add_signal_handler(sig, stopping.set)
    try:
        yield
    finally:
        for sig in _SIGNALS:
            loop.remove_signal_handler(sig)
