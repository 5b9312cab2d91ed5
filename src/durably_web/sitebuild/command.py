"""The ``new``, ``build`` and ``serve`` commands of ``durably-web`` (registered by the CLI).

::

    durably-web new DIR
    durably-web build [DIR] [--out OUT] [--force]
    durably-web serve [DIR] [--out OUT] [--port N] [--host ADDR] [--jobs PATH] [--isolated]
                      [--no-build] [--verbose]

``new`` writes the starter app into ``DIR`` (:mod:`.starter`). ``build DIR`` writes the static
site of the app in ``DIR`` into ``DIR/.build/site`` (or ``OUT``), keeping its build state in
``DIR/.build``; ``serve DIR`` serves that site, building it first when it is missing or out of
date. Without ``DIR`` both work on the demo (``durably_web/web/demo``) in the work directory:
the nearest directory from the current one up whose ``.build/`` holds a build, else the
current directory (:func:`~durably_web.sitebuild.layout.find_root`). Exit status: 0 success,
1 a failed build or a server that cannot start (one ``durably-web: error:`` line), 2 a bad
command line. ``serve`` runs until Ctrl-C, then exits 0.

This module only imports the standard library's ``argparse`` at import time, so registering
the commands costs ``durably-web run`` nothing; the build and the server load when used.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from durably_web.sitebuild.layout import WebError

__all__ = ["WEB_COMMANDS", "add_web_commands", "run_web_command"]

WEB_COMMANDS = frozenset({"new", "build", "serve"})
"""The command names this module handles."""

_PROG = "durably-web"

_Parser = TypeVar("_Parser", bound=argparse.ArgumentParser)


class _UsageError(Exception):
    """A bad argument, reported like argparse's errors (exit status 2)."""


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return value


def add_web_commands(commands: argparse._SubParsersAction[_Parser]) -> None:
    """Add ``new``, ``build`` and ``serve`` to the ``durably-web`` command parsers.

    Args:
        commands: the object ``ArgumentParser.add_subparsers()`` returned.

    """
    new = commands.add_parser(
        "new",
        help="write a starter browser app into DIR",
        description="Write a starter app into DIR (which must not exist or be empty): "
        "index.html, app.py (a PyScript page that triggers a job and shows its progress), "
        "jobs.py (one durable job), style.css and a README. Then: durably-web serve DIR.",
    )
    new.add_argument("directory", type=Path, metavar="DIR")
    app_help = "the app's directory (default: the demo, in the work directory)"
    out_help = "where the site goes (default: .build/site of DIR or of the work directory)"
    build = commands.add_parser(
        "build",
        help="build an app's static site (default: the demo's), offline after one visit",
        description="Build the static site of the app in DIR (default: the demo) into "
        "DIR/.build/site or OUT: its pages, the engine worker, the service worker, the JS "
        "client, and everything they load (Pyodide, sqlite-wasm, PyScript, MicroPython, "
        "hash-pinned wheels and a wheel of durably_web, precompiled to .pyc). Any static "
        "host can serve it. Needs Python and the npm registry (no Node, no npm). A no-op "
        "when nothing changed.",
    )
    build.add_argument("directory", type=Path, nargs="?", metavar="DIR", help=app_help)
    build.add_argument("--out", type=Path, metavar="OUT", help=out_help)
    build.add_argument(
        "--force",
        action="store_true",
        help="fetch the npm packages again and recompile what the install does not ship",
    )
    serve = commands.add_parser(
        "serve",
        help="serve an app's site (default: the demo's), building it first if needed",
        description="Serve the site of the app in DIR (default: the demo) on this machine, "
        "with correct MIME types, revalidation and gzip. Builds it first when it is missing "
        "or out of date. Stop with Ctrl-C.",
    )
    serve.add_argument("directory", type=Path, nargs="?", metavar="DIR", help=app_help)
    serve.add_argument("--out", type=Path, metavar="OUT", help=out_help)
    serve.add_argument("--port", type=_port, default=8000, metavar="N", help="default 8000")
    serve.add_argument(
        "--host", default="127.0.0.1", metavar="ADDR", help="bind address (default 127.0.0.1)"
    )
    serve.add_argument(
        "--jobs", type=Path, metavar="PATH", help="a Python file to serve as /jobs.py"
    )
    serve.add_argument(
        "--isolated",
        action="store_true",
        help="send COOP/COEP/CORP headers (cross-origin isolation, SharedArrayBuffer)",
    )
    serve.add_argument(
        "--no-build", action="store_true", help="never build; fail if the site is missing"
    )
    serve.add_argument("--verbose", action="store_true", help="log every request")


def run_web_command(args: argparse.Namespace) -> int:
    """Run ``new``, ``build`` or ``serve`` with parsed arguments.

    Args:
        args: what the ``durably-web`` parser returned for one of :data:`WEB_COMMANDS`.

    Returns:
        The exit status (0, 1 or 2); errors are printed as one line on stderr.

    """
    from durably_web.sitebuild.layout import WebError

    try:
        if args.command == "new":
            return _new(args)
        if args.command == "build":
            return _build(args)
        return _serve(args)
    except _UsageError as exc:
        _error(exc)
        return 2
    except WebError as exc:
        _error(exc)
        return 1


def _error(exc: WebError | _UsageError) -> None:
    print(f"{_PROG}: error: {' '.join(str(exc).split())}", file=sys.stderr)


def _progress(line: str) -> None:
    print(f"{_PROG} build: {line}", file=sys.stderr, flush=True)


def _new(args: argparse.Namespace) -> int:
    from durably_web.sitebuild.starter import new_app

    directory: Path = args.directory
    files = new_app(directory)
    print(f"wrote {len(files)} files into {directory}:")
    for path in files:
        print(f"  {path.relative_to(directory).as_posix()}")
    print(f"next: durably-web serve {directory}")
    return 0


def _target(args: argparse.Namespace) -> tuple[Path, Path | None, Path | None]:
    """Return the work directory, the app (None: the demo) and ``--out`` of a command."""
    from durably_web.sitebuild.layout import find_root

    app: Path | None = args.directory
    out: Path | None = args.out
    return (app if app is not None else find_root()), app, out


def _build(args: argparse.Namespace) -> int:
    from durably_web.sitebuild.build import build

    root, app, out = _target(args)
    result = build(root, force=args.force, log=_progress, app=app, out=out)
    size = f"{result.files} files, {result.total_bytes / 1e6:.1f} MB"
    if not result.rebuilt:
        print(f"{result.site} is up to date ({size}, build {result.build_id[:12]})")
    else:
        print(f"built {result.site} ({size}, build {result.build_id[:12]})")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from durably_web.sitebuild.build import build, is_stale
    from durably_web.sitebuild.layout import Layout, ServeError
    from durably_web.sitebuild.mirror import MANIFEST
    from durably_web.sitebuild.server import is_loopback, make_server

    root, app, out = _target(args)
    site = Layout(root, app_dir=app, out=out).site.resolve()
    jobs: Path | None = args.jobs
    if jobs is not None and not jobs.is_file():
        raise _UsageError(f"--jobs {str(jobs)!r}: no such file")
    mounts = {"/jobs.py": jobs} if jobs is not None else {}
    try:
        server = make_server(
            site, args.host, args.port, mounts=mounts, isolated=args.isolated, verbose=args.verbose
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(f"port {args.port} is in use; pass --port N") from exc
        raise ServeError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
        ) from exc
    with server:
        if args.no_build:
            if not (site / MANIFEST).is_file():
                raise ServeError(f"{site} is missing; run `durably-web build` first")
            if is_stale(root, app=app, out=out):
                print(f"{_PROG}: warning: {site} is out of date (--no-build)", file=sys.stderr)
        elif is_stale(root, app=app, out=out):
            build(root, log=_progress, app=app, out=out)
        if not is_loopback(args.host):
            print(
                f"{_PROG}: warning: listening on {args.host}, not loopback: "
                f"anyone who can reach this machine can read {site}",
                file=sys.stderr,
            )
        what = f"the app in {app}" if app is not None else "the durably_web demo"
        print(f"Serving {what} at {server.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how serving ends
            server.serve_forever()
    return 0
