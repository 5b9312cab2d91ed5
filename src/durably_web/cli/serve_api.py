"""The ``serve-api`` command: serve a durably_web engine over HTTP/SSE with uvicorn.

::

    durably-web serve-api MODULE[:ATTR] [--db PATH|URL] [--host 127.0.0.1] [--port 8000]
                          [--base-path /api/durably] [--static DIR] [--no-worker]
                          [--allowed-host NAME]... [--allowed-origin ORIGIN]...

``ATTR`` may be a :class:`~durably_web.Durably` instance, an app from
:func:`~durably_web.server.create_app`, a job definition, or a dict of jobs; without it, every
job the module defines is served. For jobs, the engine is created on ``--db`` (a SQLite
file, or a ``postgresql://`` URL). The engine's worker runs in the server's process (started
and stopped with the server), unless ``--no-worker``: the server then only triggers and
follows runs that ``durably-web worker`` processes execute (on PostgreSQL it sees their
progress through NOTIFY). Without auth hooks the server listens on loopback only unless
``--host`` says otherwise, and says so.

Requests must name this server in ``Host`` (an IP literal, ``localhost``, ``--host`` or an
``--allowed-host``) and writes must come from its own origin or an ``--allowed-origin``
(:mod:`durably_web.server.guard`).

One SIGINT or SIGTERM stops it: the open event streams end at once, the worker gets the app's
``shutdown_timeout`` (3 s) to finish its runs and then releases them (back to pending, for
the next start), and the process exits 0, within about 6 s whatever the clients do. Further
signals change nothing. When the database breaks under the worker (disk full, corrupt,
read-only: ``worker:error`` with context ``worker-stopped``), the server stops the same way
and exits 1 with a message saying so: a server whose worker is gone would otherwise accept
triggers nobody runs.

``--static DIR`` also serves the files of ``DIR`` (a site ``durably-web build`` wrote) at
``/`` on the same origin, the API then at ``--base-path`` (default ``/api/durably``):
``durably-web serve-api .build/site/jobs.py --static .build/site`` serves the browser demo
in server mode at ``/?server=/api/durably`` (:mod:`durably_web.sitebuild.asgi`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import ipaddress
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from durably_web.cli.common import DB_HELP, DEFAULT_DB, UsageError, database_url
from durably_web.cli.loading import jobs_of, load_attribute
from durably_web.core.durably import Durably
from durably_web.errors import StorageError, ValidationError
from durably_web.events import WorkerError

if TYPE_CHECKING:
    from durably_web.server import DurablyApp

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
    parser.add_argument("--db", default=DEFAULT_DB, metavar="PATH|URL", help=DB_HELP)
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="run no worker here: serve triggers and runs that `durably-web worker` "
        "processes execute",
    )
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
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="accept this Host name too (repeatable; .example.com for subdomains too, * for "
        "any); IP literals, localhost and --host are always accepted",
    )
    parser.add_argument(
        "--allowed-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let pages of this origin (https://app.example.com) send writes (repeatable; * "
        "for any); the server's own origin always may",
    )


def _app(value: Any, db: str) -> DurablyApp:
    from durably_web.core.factory import create_durably
    from durably_web.server import DurablyApp, create_app

    if isinstance(value, DurablyApp):
        return value
    if isinstance(value, Durably):
        return create_app(value)
    jobs = jobs_of(value)
    if jobs is None:
        raise UsageError(
            f"cannot serve {type(value).__name__}: give a Durably, a create_app() app, a job "
            "or a dict of jobs"
        )
    return create_app(create_durably(database_url(db, must_exist=False), jobs=jobs))


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
    """Run the server until SIGINT or SIGTERM; return the exit status."""
    try:
        import uvicorn  # noqa: F401 - checked here for a one-line error
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
    hosts = [*args.allowed_host, *_bound_names(args.host)]
    _check_guard_options(hosts, args.allowed_origin)
    _, _, value = load_attribute(args.target)
    _check_port(args.host, args.port)
    app = _app(value, args.db)
    if args.no_worker:
        app.manage_engine = False  # _serve migrates and closes the engine, never starts it
    if base_path:
        app.base_path = base_path
    app.guard = app.guard.extended(hosts, args.allowed_origin)
    if app.auth is None:
        where = "loopback only" if _is_loopback(args.host) else f"{args.host}, WITHOUT auth hooks"
        print(f"durably-web: no auth configured: listening on {where}", file=sys.stderr)
    origin = f"http://{args.host}:{args.port}"
    served: Any = app
    if static is not None:
        from durably_web.sitebuild.asgi import site_app
        from durably_web.sitebuild.layout import VENDOR

        served = site_app(app, static, base_path)
        print(f"Serving {static} at {origin}/", file=sys.stderr)
        if (static / "demo.py").is_file() and (static / "index.html").is_file():
            print(f"The demo in server mode: {origin}/?server={base_path}", file=sys.stderr)
        if not (static / VENDOR).is_dir():
            print(
                f"durably-web: warning: {static / VENDOR} is missing (run `durably-web build`)",
                file=sys.stderr,
            )
    print(f"Serving Durably API at {origin}{base_path}/", file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C before the server's own handlers
        failure = asyncio.run(_serve(app, served, args.host, args.port, worker=not args.no_worker))
        if failure is not None:
            print(
                f"durably-web: the worker stopped: the database failed ({failure}). The server "
                "stopped with it; runs in flight were handed back, not failed. Once the "
                "database is healthy again (free disk space, or restore the file), start "
                "serve-api again and they resume.",
                file=sys.stderr,
            )
            return 1
    return 0


def _check_guard_options(hosts: list[str], origins: list[str]) -> None:
    """Refuse malformed ``--allowed-host``/``--allowed-origin`` values before anything starts."""
    from durably_web.server.guard import RequestGuard

    try:
        RequestGuard.build(hosts, origins)
    except ValidationError as exc:
        message = str(exc).replace("allowed_hosts:", "--allowed-host:")
        raise UsageError(message.replace("allowed_origins:", "--allowed-origin:")) from None


def _bound_names(host: str) -> list[str]:
    """Return ``--host`` as an allowed ``Host`` name when it is a name (not an address)."""
    if host in ("", "0.0.0.0", "::") or _is_ip(host):
        return []
    return [host]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_CONNECTIONS_GRACE = 3  # seconds uvicorn waits for connections after the streams ended


async def _serve(
    app: DurablyApp, served: Any, host: str, port: int, *, worker: bool = True
) -> StorageError | None:
    """Serve until a signal or a broken database, then stop; return the database's error.

    Streams end, runs are released, the engine closes. When the worker stops because the
    database failed under it (``worker:error`` with context ``worker-stopped``), the server
    stops as on a signal and the error is returned (the command then exits 1). Without
    ``worker`` the engine is migrated here and never started (``app.manage_engine`` is off).
    """
    import uvicorn

    config = uvicorn.Config(
        served,
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=_CONNECTIONS_GRACE,
    )
    server = _server(config, app)
    failure: list[StorageError] = []

    def on_worker_error(event: WorkerError) -> None:
        if event.context == "worker-stopped" and not failure:
            stopped = app.durably.worker.failure
            failure.append(stopped if stopped is not None else StorageError(event.error))
            server.stop()

    unsubscribe = app.durably.on("worker:error", on_worker_error)
    try:
        if not worker:
            await app.durably.migrate()
        await server.serve()
    finally:
        unsubscribe()
        if app.manage_engine or not worker:
            # The lifespan shutdown did this (a no-op then) unless uvicorn failed before it.
            await app.durably.close(timeout=0)
    return failure[0] if failure else None


def _server(config: Any, app: DurablyApp) -> Any:
    """Return a uvicorn server that stops on the first SIGINT or SIGTERM.

    uvicorn alone waits for every open response before it shuts down, and an event stream
    never ends by itself: with one ``EventSource`` connected, Ctrl-C did nothing, and a
    second one skipped the lifespan shutdown (runs stayed leased). Here the first signal also
    ends the app's streams (:meth:`DurablyApp.shutdown`); uvicorn then waits at most
    ``_CONNECTIONS_GRACE`` for connections (a client that reads nothing keeps its socket
    open) and the lifespan shutdown at most the app's ``shutdown_timeout`` for the runs, so
    the stop is bounded and later signals are not needed: they change nothing, and never
    skip the release of the runs.
    """
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            loop = asyncio.get_running_loop()
            for sig in _SIGNALS:
                loop.add_signal_handler(sig, self.stop)
            try:
                yield
            finally:
                for sig in _SIGNALS:
                    loop.remove_signal_handler(sig)

        def stop(self) -> None:
            """Begin the shutdown; later signals change nothing (it is bounded already)."""
            self.should_exit = True
            app.shutdown()

    return Server(config)
