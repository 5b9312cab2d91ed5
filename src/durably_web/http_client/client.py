"""A CPython client for a durably_web (or upstream Durably) server, over httpx and SSE.

    from durably_web.http_client.client import connect_http
    durably = await connect_http("http://127.0.0.1:8000/api/durably")
    run = await durably.jobs.import_csv.trigger({"filename": "data.csv"})
    async for event in durably.subscribe(run.id):
        ...

Same interface as a local :class:`~durably_web.Durably` (``jobs.<key>.trigger``,
``trigger_and_wait``, ``get_run(s)``, ``get_steps``, ``get_logs``, ``cancel``, ``retry``,
``retrigger``, ``delete_run``, ``subscribe``, ``wait_for_run``, ``on``), returning the same
records (:class:`~durably_web.Run`, ``Step``, ``Log``, events). Errors come back as the same
classes, rebuilt from ``{"error", "code"}`` (or from the status code for an upstream server).
Needs ``httpx`` (``pip install durably-web[http]``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Any

import httpx

from durably_web.errors import (
    NotFoundError,
    RunCancelled,
    RunFailed,
    ValidationError,
    error_from_wire,
)
from durably_web.events import TERMINAL_EVENT_TYPES, Event, LogWrite, RunProgress, event_from_wire
from durably_web.models import Log, Run, Step

__all__ = ["HttpDurably", "HttpJobHandle", "HttpJobs", "connect_http"]

_RECONNECT_DELAY = 0.5  # seconds before a stream the server ended is reopened


async def connect_http(
    url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 30.0
) -> HttpDurably:
    """Connect to a server's Durably endpoints at ``url``; learn its jobs.

    Args:
        url: the base URL the app is mounted at (``http://host:port/api/durably``).
        headers: sent with every request (e.g. ``Authorization``).
        timeout: seconds for each plain request (streams have no read timeout).
    """
    client = HttpDurably(url, headers=headers, timeout=timeout)
    await client.refresh_jobs()
    return client


class HttpJobHandle:
    """Trigger one job on the server (``jobs.<key>``)."""

    def __init__(self, durably: HttpDurably, key: str, name: str) -> None:
        self._durably = durably
        self.key = key
        self.name = name

    async def trigger(
        self,
        input: Any,
        *,
        idempotency_key: str | None = None,
        concurrency_key: str | None = None,
        labels: Mapping[str, str] | None = None,
        coalesce: str | None = None,
    ) -> Run:
        """Trigger a run; return it with its ``disposition`` (see ``JobHandle.trigger``)."""
        body = _trigger_body(input, idempotency_key, concurrency_key, labels, coalesce)
        body["jobName"] = self.name
        answer = await self._durably._request("POST", "/trigger", json_body=body)
        run = await self._durably.get_run(answer["runId"])
        if run is None:
            raise NotFoundError(f"Run not found: {answer['runId']}")
        return run.with_disposition(answer.get("disposition", "created"))

    async def trigger_and_wait(
        self,
        input: Any,
        *,
        timeout: float | None = None,
        on_progress: Callable[[Any], Any] | None = None,
        on_log: Callable[[Any], Any] | None = None,
        **options: Any,
    ) -> Run:
        """Trigger, then wait for completion; return the completed run (``run.output``)."""
        run = await self.trigger(input, **options)
        done = await self._durably.wait_for_run(
            run.id, timeout=timeout, on_progress=on_progress, on_log=on_log
        )
        return done.with_disposition(run.disposition or "created")

    async def batch_trigger(self, items: Sequence[Any]) -> list[Run]:
        """Trigger several runs in one request, all or nothing (``POST /batch-trigger``)."""
        body = {"jobName": self.name, "items": [_batch_item(item) for item in items]}
        answer = await self._durably._request("POST", "/batch-trigger", json_body=body)
        runs = []
        for entry in answer:
            run = await self._durably.get_run(entry["runId"])
            if run is None:
                raise NotFoundError(f"Run not found: {entry['runId']}")
            runs.append(run.with_disposition(entry["disposition"]))
        return runs

    async def get_runs(self, **filters: Any) -> list[Run]:
        """``get_runs`` restricted to this job."""
        return await self._durably.get_runs(job_name=self.name, **filters)


class HttpJobs:
    """The server's jobs by registration key: ``jobs.import_csv`` or ``jobs["import_csv"]``."""

    def __init__(self) -> None:
        self._handles: dict[str, HttpJobHandle] = {}

    def __getattr__(self, key: str) -> HttpJobHandle:
        handles = self.__dict__.get("_handles", {})
        if key in handles:
            return handles[key]  # type: ignore[no-any-return]
        raise AttributeError(f"the server has no job under {key!r}; it has: {sorted(handles)}")

    def __getitem__(self, key: str) -> HttpJobHandle:
        return self.__getattr__(key)

    def __iter__(self) -> Any:
        return iter(self._handles)


class HttpDurably:
    """A remote engine behind durably_web's (or upstream Durably's) HTTP handler."""

    def __init__(
        self, url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 30.0
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(headers=dict(headers or {}), timeout=timeout)
        self.jobs = HttpJobs()
        self._listeners: dict[str, list[Callable[[Any], Any]]] = {}
        self._stream: asyncio.Task[None] | None = None

    async def __aenter__(self) -> HttpDurably:
        await self.refresh_jobs()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the event stream and close the HTTP connection pool."""
        if self._stream is not None:
            self._stream.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stream
            self._stream = None
        await self._http.aclose()

    async def refresh_jobs(self) -> None:
        """Learn the server's jobs (``GET /jobs``; an upstream server has none to list)."""
        try:
            jobs = await self._request("GET", "/jobs")
        except NotFoundError:
            return
        for job in jobs:
            self.jobs._handles[job["key"]] = HttpJobHandle(self, job["key"], job["name"])
            self.jobs._handles.setdefault(job["name"], self.jobs._handles[job["key"]])

    def job(self, name: str) -> HttpJobHandle:
        """Return a handle for any job name, listed or not (for upstream servers)."""
        return self.jobs._handles.get(name) or HttpJobHandle(self, name, name)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json_body: Any = None,
    ) -> Any:
        response = await self._http.request(method, self.url + path, params=params, json=json_body)
        if response.status_code >= 400:
            try:
                payload = response.json()
            except ValueError:
                payload = {"error": response.text or response.reason_phrase}
            if not isinstance(payload, dict):
                payload = {"error": str(payload)}
            raise error_from_wire(payload, response.status_code)
        return response.json()

    # -- runs ---------------------------------------------------------------------------

    async def get_run(self, run_id: str) -> Run | None:
        """Return the run, or None."""
        try:
            return Run.from_wire(await self._request("GET", "/run", params={"runId": run_id}))
        except NotFoundError:
            return None

    async def get_runs(
        self,
        *,
        status: str | Sequence[str] | None = None,
        job_name: str | Sequence[str] | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Run]:
        """List runs, newest first (see ``Durably.get_runs``)."""
        params: list[tuple[str, str]] = []
        for value in [status] if isinstance(status, str) else status or []:
            params.append(("status", value))
        for value in [job_name] if isinstance(job_name, str) else job_name or []:
            params.append(("jobName", value))
        for key, value in (labels or {}).items():
            params.append((f"label.{key}", value))
        if limit is not None:
            params.append(("limit", str(limit)))
        if offset:
            params.append(("offset", str(offset)))
        return [Run.from_wire(data) for data in await self._request("GET", "/runs", params=params)]

    async def get_steps(self, run_id: str) -> list[Step]:
        """Return the run's steps."""
        return [
            Step.from_wire(d)
            for d in await self._request("GET", "/steps", params={"runId": run_id})
        ]

    async def get_logs(self, run_id: str) -> list[Log]:
        """Return the run's persisted logs (``GET /logs``, a durably_web extension)."""
        return [
            Log.from_wire(d) for d in await self._request("GET", "/logs", params={"runId": run_id})
        ]

    async def cancel(self, run_id: str) -> Run:
        """Cancel a run; return it."""
        await self._request("POST", "/cancel", params={"runId": run_id})
        return await self._require(run_id)

    async def retry(self, run_id: str) -> Run:
        """Retry a failed or cancelled run in place; return it."""
        await self._request("POST", "/retry", params={"runId": run_id})
        return await self._require(run_id)

    async def retrigger(self, run_id: str) -> Run:
        """Start a new run with the same input; return the new run."""
        answer = await self._request("POST", "/retrigger", params={"runId": run_id})
        return await self._require(answer["runId"])

    async def delete_run(self, run_id: str) -> Run:
        """Delete a finished run; return what it was."""
        run = await self._require(run_id)
        await self._request("DELETE", "/run", params={"runId": run_id})
        return run

    async def _require(self, run_id: str) -> Run:
        run = await self.get_run(run_id)
        if run is None:
            raise NotFoundError(f"Run not found: {run_id}")
        return run

    # -- streams ------------------------------------------------------------------------

    async def _sse(self, path: str, params: Any) -> AsyncGenerator[dict[str, Any], None]:
        async with self._http.stream(
            "GET", self.url + path, params=params, timeout=httpx.Timeout(None, connect=10)
        ) as response:
            if response.status_code >= 400:
                await response.aread()
                raise error_from_wire(response.json(), response.status_code)
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    yield json.loads(line[5:].strip())

    async def subscribe(self, run_id: str) -> AsyncGenerator[Event, None]:
        """Iterate over a run's events (``GET /subscribe``): its state first, then live.

        A stream the server ends before the run's terminal event (it cuts off a reader that
        falls behind, or it restarted) is reopened, as an ``EventSource`` would: the run's
        current state comes first again.
        """
        while True:
            async for data in self._sse("/subscribe", {"runId": run_id}):
                event = event_from_wire(data)
                yield event
                if event.type in TERMINAL_EVENT_TYPES:
                    return
            await asyncio.sleep(_RECONNECT_DELAY)

    async def wait_for_run(
        self,
        run_id: str,
        *,
        timeout: float | None = None,
        on_progress: Callable[[Any], Any] | None = None,
        on_log: Callable[[Any], Any] | None = None,
    ) -> Run:
        """Wait until the run completes; raise ``RunFailed``/``RunCancelled``/``TimeoutError``."""
        if timeout is not None and timeout <= 0:
            raise ValidationError(f"timeout must be a positive number of seconds, got {timeout!r}")
        return await asyncio.wait_for(self._wait(run_id, on_progress, on_log), timeout)

    async def _wait(
        self,
        run_id: str,
        on_progress: Callable[[Any], Any] | None,
        on_log: Callable[[Any], Any] | None,
    ) -> Run:
        async for event in self.subscribe(run_id):
            if isinstance(event, RunProgress) and on_progress is not None:
                await _call(on_progress, event.progress)
            elif isinstance(event, LogWrite) and on_log is not None:
                await _call(on_log, event)
            elif event.type == "run:complete":
                return await self._require(run_id)
            elif event.type == "run:fail":
                raise RunFailed(getattr(event, "error", "") or "Run failed")
            elif event.type == "run:cancel":
                raise RunCancelled(f"Run was cancelled: {run_id}")
            elif event.type == "run:delete":
                raise NotFoundError(f"Run was deleted: {run_id}")
        raise NotFoundError(f"Run not found: {run_id}")

    def on(self, event_type: str, handler: Callable[[Any], Any]) -> Callable[[], None]:
        """Call ``handler`` for events of every run (``GET /runs/subscribe``, trimmed form).

        Returns a function that unsubscribes. The stream starts with the first handler.
        """
        name = "run:start" if event_type == "run:leased" else event_type
        self._listeners.setdefault(name, []).append(handler)
        if self._stream is None or self._stream.done():
            self._stream = asyncio.ensure_future(self._pump())

        def unsubscribe() -> None:
            handlers = self._listeners.get(name, [])
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    async def _pump(self) -> None:
        while True:  # reopened when the server ends it (see ``subscribe``), until closed
            async for data in self._sse("/runs/subscribe", None):
                event = event_from_wire(data)
                handlers = (*self._listeners.get(event.type, ()), *self._listeners.get("*", ()))
                for handler in handlers:
                    with contextlib.suppress(Exception):
                        await _call(handler, event)
            await asyncio.sleep(_RECONNECT_DELAY)


async def _call(handler: Callable[[Any], Any], value: Any) -> None:
    result = handler(value)
    if inspect.isawaitable(result):
        await result


def _trigger_body(
    input: Any,
    idempotency_key: str | None,
    concurrency_key: str | None,
    labels: Mapping[str, str] | None,
    coalesce: str | None,
) -> dict[str, Any]:
    if hasattr(input, "model_dump"):
        input = input.model_dump(mode="json")
    body: dict[str, Any] = {"input": input}
    for key, value in (
        ("idempotencyKey", idempotency_key),
        ("concurrencyKey", concurrency_key),
        ("labels", None if labels is None else dict(labels)),
        ("coalesce", coalesce),
    ):
        if value is not None:
            body[key] = value
    return body


def _batch_item(item: Any) -> dict[str, Any]:
    from durably_web.core.trigger import TriggerItem

    if isinstance(item, TriggerItem):
        return _trigger_body(
            item.input, item.idempotency_key, item.concurrency_key, item.labels, item.coalesce
        )
    return _trigger_body(item, None, None, None, None)
