"""The ASGI app: upstream Durably 0.15's HTTP/SSE endpoints over a local engine.

Endpoints (paths below the mount point), bodies and status codes follow upstream's
``createDurablyHandler`` so its React client works unchanged:

| method | path | answer |
|---|---|---|
| POST | /trigger | ``{"runId", "disposition"}`` |
| GET | /runs | ``ClientRun[]`` (``jobName``, ``status``, ``label.<key>``, ``limit``, ``offset``) |
| GET | /run | ``ClientRun`` |
| DELETE | /run | ``{"success": true}`` |
| GET | /steps | ``Step[]`` |
| GET | /subscribe | SSE: the run's state, then its events; closes after a terminal one |
| GET | /runs/subscribe | SSE: trimmed events of matching runs; never closes |
| POST | /retrigger, /cancel, /retry | ``{"success": true[, "runId"]}`` |

Extensions: ``POST /retry`` (in-place retry), ``POST /batch-trigger`` (all or nothing),
``GET /logs``, ``GET /jobs``, JSON errors with a
``code`` everywhere (``{"error", "code"}``; upstream sends 404 as plain text and some
validation errors as 500), 405 for a wrong method, 413 for an oversized body, and jobs found
by registration key as well as by name (upstream's React client sends the key).

Beyond upstream, for safety: every request passes the ``Host``/``Origin``/JSON-body checks of
:mod:`~durably_web.server.guard` first; under auth, idempotency and concurrency keys are
namespaced by the caller's key scope (:func:`~durably_web.server.auth.key_scope_of`); each
event stream buffers a bounded amount for its client (:mod:`~durably_web.server.sse`); and
:meth:`DurablyApp.shutdown` ends the streams when the server stops.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from durably_web.core.durably import Durably
from durably_web.core.trigger import TriggerItem
from durably_web.errors import DurablyError, NotFoundError, ValidationError
from durably_web.models import RUN_STATUSES, Run
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
Handler = Callable[[Request, Receive, Send, Any], Awaitable[None]]


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
        self._routes: dict[str, dict[str, Handler]] = {
            "/trigger": {"POST": self._trigger},
            "/batch-trigger": {"POST": self._batch_trigger},
            "/runs": {"GET": self._runs},
            "/run": {"GET": self._run, "DELETE": self._delete},
            "/steps": {"GET": self._steps},
            "/logs": {"GET": self._logs},
            "/jobs": {"GET": self._jobs},
            "/subscribe": {"GET": self._subscribe},
            "/runs/subscribe": {"GET": self._runs_subscribe},
            "/retrigger": {"POST": self._action("retrigger")},
            "/cancel": {"POST": self._action("cancel")},
            "/retry": {"POST": self._action("retry")},
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
            handler = routes.get(request.method)
            if handler is None:
                allowed = ", ".join(sorted(routes))
                raise HTTPError(
                    405, f"{request.method} is not allowed on {request.path}; use {allowed}"
                )
            await handler(request, receive, tracking_send, context)
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

    # -- helpers ------------------------------------------------------------------------

    async def _access(self, request: Request, context: Any, operation: RunAccess) -> Run:
        run_id = request.param("runId")
        if not run_id:
            raise HTTPError(400, "runId query parameter is required")
        run = await self.durably.get_run(run_id)
        if run is None:
            raise NotFoundError(f"Run not found: {run_id}")
        if self.auth is not None and self.auth.on_run_access is not None:
            await call_hook(self.auth.on_run_access, context, run, operation)
        return run

    async def _key_scope(self, context: Any, bodies: list[Any]) -> str | None:
        """Return the caller's key scope, asked only when a trigger carries a key."""
        keyed = any(
            body.get("idempotencyKey") is not None or body.get("concurrencyKey") is not None
            for body in bodies
        )
        return await key_scope_of(self.auth, context) if keyed else None

    def _labels(self, request: Request) -> dict[str, str]:
        return {key[6:]: value for key, value in request.query if key.startswith("label.")}

    def _job_names(self, request: Request) -> tuple[str, ...]:
        """Return the ``jobName`` filters, a registration key standing for its job's name.

        Upstream's React client sends the key (``durably.importCsv.useJob()`` asks for
        ``jobName=importCsv``), so a filter resolves like ``POST /trigger`` does: a job's
        name first, then a key; anything else is kept as given (a job registered elsewhere).
        """
        names: list[str] = []
        for value in request.params("jobName"):
            try:
                name = self.durably.job_by_name(value).name
            except NotFoundError:
                name = value
            if name not in names:
                names.append(name)
        return tuple(names)

    # -- endpoints ----------------------------------------------------------------------

    async def _trigger(self, request: Request, receive: Receive, send: Send, context: Any) -> None:
        body = await read_json(receive, request, self.max_body)
        if not isinstance(body, dict):
            raise HTTPError(400, "request body must be a JSON object")
        job_name = body.get("jobName")
        if not isinstance(job_name, str) or not job_name:
            raise HTTPError(400, "jobName is required")
        handle = self.durably.job_by_name(job_name)
        if self.auth is not None and self.auth.on_trigger is not None:
            await call_hook(self.auth.on_trigger, context, body)
        run = await handle.trigger(
            body.get("input"),
            idempotency_key=body.get("idempotencyKey"),
            concurrency_key=body.get("concurrencyKey"),
            labels=body.get("labels"),
            coalesce=body.get("coalesce"),
            key_scope=await self._key_scope(context, [body]),
        )
        await send_json(send, 200, {"runId": run.id, "disposition": run.disposition})

    async def _batch_trigger(
        self, request: Request, receive: Receive, send: Send, context: Any
    ) -> None:
        body = await read_json(receive, request, self.max_body)
        if not isinstance(body, dict):
            raise HTTPError(400, "request body must be a JSON object")
        job_name = body.get("jobName")
        if not isinstance(job_name, str) or not job_name:
            raise HTTPError(400, "jobName is required")
        items = body.get("items")
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise HTTPError(400, "items must be a list of trigger objects ({input, ...})")
        handle = self.durably.job_by_name(job_name)
        if self.auth is not None and self.auth.on_trigger is not None:
            for item in items:
                await call_hook(self.auth.on_trigger, context, {**item, "jobName": job_name})
        key_scope = await self._key_scope(context, items)
        runs = await handle.batch_trigger(
            [
                TriggerItem(
                    item.get("input"),
                    idempotency_key=item.get("idempotencyKey"),
                    concurrency_key=item.get("concurrencyKey"),
                    labels=item.get("labels"),
                    coalesce=item.get("coalesce"),
                    key_scope=key_scope,
                )
                for item in items
            ]
        )
        await send_json(send, 200, [{"runId": r.id, "disposition": r.disposition} for r in runs])

    async def _runs(self, request: Request, receive: Receive, send: Send, context: Any) -> None:
        statuses = request.params("status")
        for status in statuses:
            if status not in RUN_STATUSES:
                shown = status if status else "empty value"
                raise HTTPError(
                    400, f"Invalid status: {shown}. Must be one of: {', '.join(RUN_STATUSES)}"
                )
        query = RunsFilter(
            job_name=self._job_names(request),
            status=tuple(statuses),
            labels=self._labels(request),
            limit=_non_negative(request.param("limit"), "limit"),
            offset=_non_negative(request.param("offset"), "offset") or 0,
        )
        if self.auth is not None and self.auth.scope_runs is not None:
            query = await call_hook(self.auth.scope_runs, context, query)
        runs = await self.durably.get_runs(
            status=list(query.status),
            job_name=list(query.job_name),
            labels=dict(query.labels),
            limit=query.limit,
            offset=query.offset,
        )
        await send_json(send, 200, [run.to_client_wire() for run in runs])

    async def _run(self, request: Request, receive: Receive, send: Send, context: Any) -> None:
        run = await self._access(request, context, "read")
        await send_json(send, 200, run.to_client_wire())

    async def _steps(self, request: Request, receive: Receive, send: Send, context: Any) -> None:
        run = await self._access(request, context, "steps")
        await send_json(
            send, 200, [step.to_wire() for step in await self.durably.get_steps(run.id)]
        )

    async def _logs(self, request: Request, receive: Receive, send: Send, context: Any) -> None:
        run = await self._access(request, context, "read")
        await send_json(send, 200, [log.to_wire() for log in await self.durably.get_logs(run.id)])

    async def _jobs(self, request: Request, receive: Receive, send: Send, context: Any) -> None:
        jobs = [{"key": key, "name": handle.name} for key, handle in self.durably.jobs.items()]
        await send_json(send, 200, jobs)

    async def _delete(self, request: Request, receive: Receive, send: Send, context: Any) -> None:
        run = await self._access(request, context, "delete")
        await self.durably.delete_run(run.id)
        await send_json(send, 200, {"success": True})

    def _action(self, operation: RunAccess) -> Handler:
        async def handle(request: Request, receive: Receive, send: Send, context: Any) -> None:
            run = await self._access(request, context, operation)
            if operation == "cancel":
                await self.durably.cancel(run.id)
                await send_json(send, 200, {"success": True})
                return
            method = self.durably.retrigger if operation == "retrigger" else self.durably.retry
            result = await method(run.id)
            await send_json(send, 200, {"success": True, "runId": result.id})

        return handle

    async def _subscribe(
        self, request: Request, receive: Receive, send: Send, context: Any
    ) -> None:
        run = await self._access(request, context, "subscribe")
        stream = self._new_stream()
        await self._stream(send, receive, stream, run_events(self.durably.subscribe(run.id)))

    async def _runs_subscribe(
        self, request: Request, receive: Receive, send: Send, context: Any
    ) -> None:
        query = SubscribeFilter(job_name=self._job_names(request), labels=self._labels(request))
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
        stream = self._new_stream()
        # Listen now, before the response starts, so no event in between is missed.
        listener = trimmed_listener(query, stream.push, guarded=self.auth is not None)
        unsubscribe = self.durably.on("*", listener)
        try:
            await self._stream(send, receive, stream)
        finally:
            unsubscribe()


_MAX_INT = 2**31 - 1


def _non_negative(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or int(value) > _MAX_INT:
        raise HTTPError(400, f"Invalid {name}: must be a non-negative integer up to {_MAX_INT}")
    return int(value)
