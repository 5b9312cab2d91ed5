"""The ``serve-api`` command: serve a durably_web engine over HTTP/SSE with uvicorn.

::

    durably-web serve-api MODULE[:ATTR] [--db PATH] [--host 127.0.0.1] [--port 8000]
                          [--base-path /api/durably] [--static DIR]

``ATTR`` may be a :class:`~durably_web.Durably` instance, an app from
:func:`~durably_web.server.create_app`, a job definition, or a dict of jobs; without it, every
job the module defines is served. For jobs, the engine is created on ``--db``. The engine's
worker runs in the server's process (started and stopped with the server). Without auth
hooks the server listens on loopback only unless ``--host`` says otherwise, and says so.

``--static DIR`` also serves the files of ``DIR`` at ``/`` on the same origin, the API then
at ``--base-path`` (default ``/api/durably``): ``durably-web serve-api web/jobs.py --static
web`` serves the browser demo in server mode at ``/?server=/api/durably``
(:mod:`durably_web.webbuild.asgi`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import ipaddress
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from durably_web.cli.common import DEFAULT_DB, UsageError, database_url
from durably_web.cli.loading import load_attribute
from durably_web.durably import Durably
from durably_web.errors import ValidationError
from durably_web.job import JobDefinition, jobs_in_module

__all__ = ["add_serve_api", "run_serve_api"]


def add_serve_api(commands: Any) -> None:
    """Register ``serve-api`` on the ``durably-web`` command parsers."""
    parser = commands.add_parser(
        "serve-api",
        help="serve jobs over HTTP/SSE (upstream Durably's protocol) with uvicorn",
        description="Serve a Durably engine over HTTP and server-sent events, wire-compatible "
        "with upstream Durably's handler and React client. The engine's worker runs here.",
    )
    parser.add_argument(
        "target", metavar="MODULE[:ATTR]", help="a module or .py file, and what to serve"
    )
    parser.add_argument("--db", default=DEFAULT_DB, metavar="PATH", help="SQLite file for jobs")
    parser.add_argument("--host", default="127.0.0.1", metavar="ADDR", help="default 127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, metavar="N", help="default 8000")
    parser.add_argument(
        "--base-path", default="", metavar="PATH", help="serve under this prefix, e.g. /api/durably"
    )
    parser.add_argument(
        "--static",
        type=Path,
        metavar="DIR",
        help="also serve DIR's files at / (the API then at --base-path, default /api/durably)",
    )


def _app(value: Any, db: str) -> Any:
    from durably_web.factory import create_durably
    from durably_web.server import DurablyApp, create_app

    if isinstance(value, DurablyApp):
        return value
    if isinstance(value, Durably):
        return create_app(value)
    if isinstance(value, JobDefinition):
        jobs: Mapping[str, JobDefinition[Any, Any]] = {value.name.replace("-", "_"): value}
    elif (
        isinstance(value, Mapping)
        and value
        and all(isinstance(v, JobDefinition) for v in value.values())
    ):
        jobs = value
    elif isinstance(value, ModuleType):
        try:
            jobs = jobs_in_module(value)
        except ValidationError as exc:
            raise UsageError(str(exc)) from None
    else:
        raise UsageError(
            f"cannot serve {type(value).__name__}: give a Durably, a create_app() app, a job "
            "or a dict of jobs"
        )
    return create_app(create_durably(database_url(db, must_exist=False), jobs=dict(jobs)))


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(f"port {port} is in use on {host}; pass --port N") from None
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_serve_api(args: argparse.Namespace) -> int:
    """Run the server until Ctrl-C; return the exit status."""
    try:
        import uvicorn
    except ImportError:
        raise UsageError("serve-api needs uvicorn: pip install 'durably-web[server]'") from None
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be 1-65535, got {args.port}")
    static: Path | None = args.static
    if static is not None and not static.is_dir():
        raise UsageError(f"--static {str(static)!r}: no such directory")
    base_path = args.base_path.rstrip("/")
    if static is not None and not base_path:
        base_path = "/api/durably"
    _, _, value = load_attribute(args.target)
    _check_port(args.host, args.port)
    app = _app(value, args.db)
    if base_path:
        app.base_path = base_path
    if app.auth is None:
        where = "loopback only" if _is_loopback(args.host) else f"{args.host}, WITHOUT auth hooks"
        print(f"durably-web: no auth configured: listening on {where}", file=sys.stderr)
    origin = f"http://{args.host}:{args.port}"
    served: Any = app
    if static is not None:
        from durably_web.webbuild.asgi import site_app

        served = site_app(app, static, base_path)
        print(f"Serving {static} at {origin}/", file=sys.stderr)
        if (static / "demo.py").is_file() and (static / "index.html").is_file():
            print(f"The demo in server mode: {origin}/?server={base_path}", file=sys.stderr)
        if not (static / "vendor").is_dir():
            print(
                f"durably-web: warning: {static / 'vendor'} is missing (run `durably-web build`)",
                file=sys.stderr,
            )
    print(f"Serving Durably API at {origin}{base_path}/", file=sys.stderr)
    config = uvicorn.Config(
        served, host=args.host, port=args.port, log_level="warning", lifespan="on"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(uvicorn.Server(config).serve())
    return 0
