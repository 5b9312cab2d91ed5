"""The ASGI app: upstream Durably 0.15's HTTP/SSE endpoints over a local engine.

A router over :data:`durably_web.protocol.operations.OPERATIONS`: every operation with an
:class:`~durably_web.protocol.operations.HttpRoute` is served at its path and method, its
arguments read where upstream puts them (:mod:`durably_web.protocol.http`) and its answer in
upstream's shape (``POST /trigger`` → ``{"runId", "disposition"}``, ``GET /runs`` →
``ClientRun[]``, ``GET /subscribe`` and ``GET /runs/subscribe`` as SSE streams, ...;
docs/server.md lists them), so upstream's React client works unchanged.

Extensions: ``POST /retry`` (in-place retry), ``POST /batch-trigger`` (all or nothing),
``GET /logs``, ``GET /jobs``, JSON errors with a ``code`` everywhere (``{"error", "code"}``,
the one error shape; upstream sends 404 as plain text and some validation errors as 500), 405
for a wrong method, 413 for an oversized body, and jobs found by registration key as well as
by name (upstream's React client sends the key). Error texts upstream's clients read are
upstream's (``Run not found``, ``runId query parameter is required``, ``jobName is required``).

Beyond upstream, for safety: every request passes the ``Host``/``Origin``/JSON-body checks of
:mod:`~durably_web.server.guard` first; under auth, idempotency and concurrency keys are
namespaced by the caller's key scope (:func:`~durably_web.server.auth.key_scope_of`); each
event stream buffers a bounded amount for its client (:mod:`~durably_web.server.sse`); and
:meth:`DurablyApp.shutdown` ends the streams when the server stops.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, get_args

from durably_web.core.durably import Durably
from durably_web.errors import DurablyError, NotFoundError, ValidationError
from durably_web.protocol.http import args_from_request
from durably_web.protocol.operations import OPERATIONS, Args, Operation, job_names
from durably_web.server.auth import (
    Auth,
    RunAccess,
    RunsFilter,
    SubscribeFilter,
    call_hook,
    key_scope_of,
)
from durably_web.server.feeds import run_events, trimmed_listener
from durably_web.server.guard import RequestGuard
from durably_web.server.http import (
    HTTPError,
    Receive,
    Request,
    Scope,
    Send,
    read_json,
    send_error,
    send_json,
)
from durably_web.server.sse import EventStream

__all__ = ["DurablyApp", "create_app"]

_log = logging.getLogger("durably_web.server")
_MiB = 1024 * 1024
_RUN_ACCESS = frozenset(get_args(RunAccess))
Stream = Callable[[Args, Receive, Send], Awaitable[None]]


def create_app(
    durably: Durably,
    *,
    auth: Auth[Any] | None = None,
    sse_throttle: float = 0.1,
    max_body: int = _MiB,
    base_path: str = "",
    keepalive: float = 15.0,
    manage_engine: bool = True,
    allowed_hosts: Iterable[str] = (),
    allowed_origins: Iterable[str] = (),
    sse_buffer: int = _MiB,
    shutdown_timeout: float = 3.0,
) -> DurablyApp:
    """Build the ASGI app serving ``durably`` over HTTP and SSE.

    Args:
        durably: the engine; its jobs are what ``POST /trigger`` can start.
        auth: authentication and access hooks (see :class:`Auth`); None allows everyone.
        sse_throttle: seconds between two progress events of one run on a stream (0: all).
        max_body: largest request body accepted, in bytes (larger: 413).
        base_path: a prefix to strip from paths, for mounting without ``root_path``.
        keepalive: seconds of silence after which a stream sends a comment line.
        manage_engine: on ASGI lifespan startup ``init()`` the engine, on shutdown stop it.
        allowed_hosts: ``Host`` names accepted besides IP literals, ``localhost`` and the
            name the server is bound to: ``"example.com"``, ``".example.com"`` (with its
            subdomains) or ``"*"`` (any); others get 400 (:mod:`durably_web.server.guard`).
        allowed_origins: origins (``"https://app.example.com"``) whose pages may send
            writes besides the server's own origin, or ``"*"``; others get 403.
        sse_buffer: most bytes of events that may wait for one slow SSE client; past it
            its stream is cut off (it reconnects from the current state).
        shutdown_timeout: seconds the worker's running runs get to finish on lifespan
            shutdown before they are interrupted and released (back to pending).

    Raises:
        ValidationError: an option is out of range, a host or origin is malformed.

    """
    if sse_throttle < 0 or keepalive <= 0 or max_body <= 0 or sse_buffer <= 0:
        raise ValidationError("sse_throttle must be >= 0, keepalive, max_body and sse_buffer > 0")
    if not 0 <= shutdown_timeout <= 3600:
        raise ValidationError(f"shutdown_timeout must be 0-3600 seconds, got {shutdown_timeout}")
    return DurablyApp(
        durably,
        auth,
        sse_throttle,
        max_body,
        base_path.rstrip("/"),
        keepalive,
        manage_engine,
        guard=RequestGuard.build(allowed_hosts, allowed_origins),
        sse_buffer=sse_buffer,
        shutdown_timeout=shutdown_timeout,
    )


class DurablyApp:
    """The ASGI callable returned by :func:`create_app` (its arguments are its attributes).

    ``serve-api`` adjusts ``base_path`` and ``guard`` of an app it is given.
    """

    def __init__(
        self,
        durably: Durably,
        auth: Auth[Any] | None,
        sse_throttle: float,
        max_body: int,
        base_path: str,
        keepalive: float,
        manage_engine: bool,
        *,
        guard: RequestGuard | None = None,
        sse_buffer: int = _MiB,
        shutdown_timeout: float = 3.0,
    ) -> None:
        self.durably = durably
        self.auth = auth
        self.sse_throttle = sse_throttle
        self.max_body = max_body
        self.base_path = base_path
        self.keepalive = keepalive
        self.manage_engine = manage_engine
        self.guard = guard or RequestGuard()
        self.sse_buffer = sse_buffer
        self.shutdown_timeout = shutdown_timeout
        self._streams: set[EventStream] = set()
        self._shutting_down = False
        self._routes: dict[str, dict[str, Operation]] = {}
        for op in OPERATIONS:
            if op.http is not None:
                self._routes.setdefault(op.http.path, {})[op.http.method] = op
        self._stream_handlers: dict[str, Stream] = {
            "subscribe": self._subscribe,
            "runsSubscribe": self._runs_subscribe,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection (``http`` or ``lifespan``)."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        request = Request.from_scope(scope, self.base_path)
        try:
            self.guard.check(request)
            routes = self._routes.get(request.path)
            context = await call_hook(self.auth.authenticate, request) if self.auth else None
            if routes is None:
                raise HTTPError(404, f"no endpoint at {request.path}")
            op = routes.get(request.method)
            if op is None:
                allowed = ", ".join(sorted(routes))
                raise HTTPError(
                    405, f"{request.method} is not allowed on {request.path}; use {allowed}"
                )
            await self._serve(op, request, receive, tracking_send, context)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a JSON error
            if not isinstance(exc, (HTTPError, DurablyError)):
                _log.exception("durably_web server: %s %s failed", request.method, request.path)
            if not started:
                await send_error(send, exc)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.manage_engine:
                        await self.durably.init()
                except Exception as exc:  # noqa: BLE001 - reported to the server
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.shutdown()
                if self.manage_engine:
                    await self.durably.close(timeout=self.shutdown_timeout)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def shutdown(self) -> None:
        """End every open event stream, and refuse new ones (503): the server is stopping.

        ASGI servers wait for open responses before they send lifespan shutdown, and an
        event stream never ends by itself, so whoever stops the server calls this first
        (``serve-api`` does on SIGINT/SIGTERM; see docs/server.md for plain uvicorn).
        """
        self._shutting_down = True
        for stream in list(self._streams):
            stream.close()

    async def _stream(
        self,
        send: Send,
        receive: Receive,
        stream: EventStream,
        source: AsyncIterator[dict[str, Any]] | None = None,
    ) -> None:
        """Serve one event stream, known to :meth:`shutdown` while it is open."""
        self._streams.add(stream)
        try:
            await stream.serve(send, receive, keepalive=self.keepalive, source=source)
        finally:
            self._streams.discard(stream)

    def _new_stream(self) -> EventStream:
        if self._shutting_down:
            raise HTTPError(503, "the server is shutting down", "shutting_down")
        return EventStream(self.sse_throttle, self.sse_buffer)

    # -- the router -------------------------------------------------------------------

    async def _serve(
        self, op: Operation, request: Request, receive: Receive, send: Send, context: Any
    ) -> None:
        """Serve one operation: read its arguments, pass its auth step, call, answer."""
        assert op.http is not None
        body: dict[str, Any] | None = None
        if any(param.http == "body" for param in op.params):
            body = await read_json(receive, request, self.max_body)
            if not isinstance(body, dict):
                raise HTTPError(400, "request body must be a JSON object")
        args = args_from_request(op, request.query, body)
        await self._authorize(op.http.guard, args, body, context)
        if op.kind == "stream":
            await self._stream_handlers[op.name](args, receive, send)
            return
        assert op.call is not None
        value = await op.call(self.durably, args)
        await send_json(send, 200, op.http.result(value))

    async def _authorize(
        self, guard: str | None, args: Args, body: dict[str, Any] | None, context: Any
    ) -> None:
        """Run the operation's auth step (see ``Guard`` in :mod:`durably_web.protocol`)."""
        if guard in _RUN_ACCESS:
            run = await self.durably.get_run(args["run_id"])
            if run is None:
                raise NotFoundError("Run not found")
            if self.auth is not None and self.auth.on_run_access is not None:
                await call_hook(self.auth.on_run_access, context, run, guard)
        elif guard == "trigger":
            await self._authorize_trigger(args, body or {}, context)
        elif guard == "runs":
            await self._scope_runs(args, context)
        elif guard == "runs-subscribe":
            await self._scope_runs_subscribe(args, context)

    async def _authorize_trigger(self, args: Args, body: dict[str, Any], context: Any) -> None:
        """``on_trigger`` for each trigger (a batch: each item), then the caller's key scope."""
        items = args.get("items")
        triggers = (
            [{**item, "jobName": args["job_name"]} for item in items if isinstance(item, dict)]
            if isinstance(items, list)
            else [body]
        )
        if self.auth is not None and self.auth.on_trigger is not None:
            for trigger in triggers:
                await call_hook(self.auth.on_trigger, context, trigger)
        keyed = any(
            trigger.get("idempotencyKey") is not None or trigger.get("concurrencyKey") is not None
            for trigger in triggers
        )
        if keyed:  # asked only when a trigger carries a key
            args["key_scope"] = await key_scope_of(self.auth, context)

    async def _scope_runs(self, args: Args, context: Any) -> None:
        """Narrow a ``GET /runs`` query with ``scope_runs``."""
        if self.auth is None or self.auth.scope_runs is None:
            return
        query = RunsFilter(
            job_name=tuple(job_names(self.durably, args.get("job_name") or [])),
            status=tuple(args.get("status") or ()),
            labels=args.get("labels") or {},
            limit=args.get("limit"),
            offset=args.get("offset") or 0,
        )
        query = await call_hook(self.auth.scope_runs, context, query)
        args.update(
            job_name=list(query.job_name),
            status=list(query.status),
            labels=dict(query.labels),
            limit=query.limit,
            offset=query.offset,
        )

    async def _scope_runs_subscribe(self, args: Args, context: Any) -> None:
        """Narrow a ``GET /runs/subscribe`` query (``scope_runs`` if it has no hook of its own)."""
        query = SubscribeFilter(
            job_name=tuple(job_names(self.durably, args.get("job_name") or [])),
            labels=args.get("labels") or {},
        )
        if self.auth is not None:
            if self.auth.scope_runs_subscribe is not None:
                query = await call_hook(self.auth.scope_runs_subscribe, context, query)
            elif self.auth.scope_runs is not None:
                scoped = await call_hook(
                    self.auth.scope_runs,
                    context,
                    RunsFilter(job_name=query.job_name, labels=query.labels),
                )
                query = SubscribeFilter(job_name=scoped.job_name, labels=scoped.labels)
        args["filter"] = query

    # -- event streams ------------------------------------------------------------------

    async def _subscribe(self, args: Args, receive: Receive, send: Send) -> None:
        stream = self._new_stream()
        events = run_events(self.durably.subscribe(args["run_id"]))
        await self._stream(send, receive, stream, events)

    async def _runs_subscribe(self, args: Args, receive: Receive, send: Send) -> None:
        stream = self._new_stream()
        # Listen now, before the response starts, so no event in between is missed. Remote:
        # runs that workers in other processes execute too (PostgreSQL), so a server with no
        # worker of its own still shows them.
        listener = trimmed_listener(args["filter"], stream.push, guarded=self.auth is not None)
        unsubscribe = self.durably.on("*", listener, remote=True)
        try:
            await self._stream(send, receive, stream)
        finally:
            unsubscribe()
