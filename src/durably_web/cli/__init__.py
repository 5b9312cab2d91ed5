"""The ``durably-web`` command line: run a job with live progress, list runs, inspect one.

::

    durably-web run MODULE:JOB [--input JSON] [--db DB] [--idempotency-key K]
                               [--lease-duration SECONDS] [--preserve-steps]
    durably-web runs [--db DB] [--status S] [--job NAME] [--limit N]
    durably-web run-info RUN_ID [--db DB]
    durably-web worker DB --jobs MODULE[:ATTR] [--concurrency N] [...]
    durably-web new DIR
    durably-web build [DIR] [--out OUT] [--force]
    durably-web serve [DIR] [--out OUT] [--port N] [--host ADDR] [--jobs PATH] [--isolated]
                      [--no-build]
    durably-web serve-api MODULE[:ATTR] [--db DB] [--host ADDR] [--port N] [--base-path P]

``DB`` is a SQLite file (default ``durably.db``), a ``sqlite:///`` URL or a
``postgresql://user:password@host:5432/db`` URL.

Also ``python -m durably_web``. Exit status: 0 done, 1 the run failed or was cancelled (or the
engine failed), 2 a bad command line or input the engine refuses with ``ValidationError``
(nothing is written then), 130 Ctrl-C, 143 SIGTERM.
The engine never imports this package: it is one client of the public API among others.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import NoReturn

from durably_web import __version__
from durably_web.cli.common import (
    DB_HELP,
    DEFAULT_DB,
    UsageError,
    check_database,
    database_url,
    parse_json,
)
from durably_web.cli.loading import load_job, validate_input
from durably_web.cli.run import run_job
from durably_web.cli.serve_api import add_serve_api, run_serve_api
from durably_web.cli.show import list_runs, show_run
from durably_web.cli.worker import add_worker, run_worker
from durably_web.errors import DurablyError, ValidationError
from durably_web.models import RUN_STATUSES
from durably_web.options import MAX_LEASE_DURATION, check_seconds
from durably_web.sitebuild.command import WEB_COMMANDS, add_web_commands, run_web_command

__all__ = ["build_parser", "main"]

PROG = "durably-web"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``main`` prints them), not usage text."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _lease_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    try:
        return check_seconds(value, "the lease duration", maximum=MAX_LEASE_DURATION)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``durably-web`` and its three commands.

    Returns:
        The parser; its ``error()`` raises :class:`~durably_web.cli.common.UsageError`.

    """
    parser = _Parser(
        prog=PROG,
        description="Run durably_web jobs with live progress and resume them after Ctrl-C.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run a job here, or resume its interrupted run",
        description="Run a job in this process with live progress. Rerunning an interrupted "
        "command resumes its run: completed steps are not executed again.",
    )
    run.add_argument("job", metavar="MODULE:JOB", help="a module name or .py file, and a job in it")
    run.add_argument("--input", default="{}", metavar="JSON", help="the job input (default {})")
    run.add_argument("--db", default=DEFAULT_DB, metavar="DB", help=DB_HELP)
    run.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="trigger with this key; a run that already has it is followed instead",
    )
    run.add_argument(
        "--lease-duration",
        type=_lease_seconds,
        metavar="SECONDS",
        help="how long a killed process's run stays leased before it can resume (default 30, "
        "at most 604800); raise it above the longest a step blocks",
    )
    run.add_argument(
        "--preserve-steps",
        action="store_true",
        help="keep the run's steps and logs after it completes (for run-info)",
    )

    runs = commands.add_parser("runs", help="list runs, newest first")
    runs.add_argument("--db", default=DEFAULT_DB, metavar="DB", help=DB_HELP)
    runs.add_argument(
        "--status", action="append", choices=RUN_STATUSES, help="only this status (repeatable)"
    )
    runs.add_argument("--job", metavar="NAME", help="only runs of this job name")
    runs.add_argument("--limit", type=_positive_int, default=20, metavar="N", help="default 20")

    info = commands.add_parser("run-info", help="show a run with its steps and logs")
    info.add_argument("run_id", metavar="RUN_ID")
    info.add_argument("--db", default=DEFAULT_DB, metavar="DB", help=DB_HELP)
    add_web_commands(commands)
    add_serve_api(commands)
    add_worker(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``durably-web`` command line.

    Args:
        argv: the arguments after the program name (default ``sys.argv[1:]``).

    Returns:
        The exit status: 0 success, 1 the run failed or the engine failed, 2 a bad command
        line or refused input (``ValidationError``: nothing was written), 130 interrupted by
        Ctrl-C, 143 terminated by SIGTERM.

    """
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exit_:  # --help and --version
            return exit_.code if isinstance(exit_.code, int) else 0
        return _dispatch(args)
    except (UsageError, ValidationError) as exc:
        print(f"{PROG}: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except DurablyError as exc:
        print(f"{PROG}: error: {_one_line(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except asyncio.CancelledError:  # SIGTERM cancelled the command (Ctrl-C raises the above)
        return 143


def _dispatch(args: argparse.Namespace) -> int:
    if args.command in WEB_COMMANDS:
        return run_web_command(args)
    if args.command == "serve-api":
        return run_serve_api(args)
    if args.command == "worker":
        return run_worker(args)
    if args.command == "runs":
        url = check_database(args.db)
        return asyncio.run(
            list_runs(url, statuses=args.status, job_name=args.job, limit=args.limit)
        )
    if args.command == "run-info":
        return asyncio.run(show_run(check_database(args.db), args.run_id))
    value = parse_json(args.input, "--input")
    url = database_url(args.db, must_exist=False)
    key, job = load_job(args.job)
    data = validate_input(job, value, args.idempotency_key)
    return asyncio.run(
        run_job(
            key=key,
            job=job,
            input=data,
            database=url,
            idempotency_key=args.idempotency_key,
            lease_duration=args.lease_duration,
            preserve_steps=args.preserve_steps,
        )
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())
