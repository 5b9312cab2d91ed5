"""A CPython client for a durably_web (or upstream Durably) server, over httpx and SSE.

    from durably_web.http_client import connect_http
    durably = await connect_http("http://127.0.0.1:8000/api/durably")
    run = await durably.jobs.import_csv.trigger({"filename": "data.csv"})
    async for event in durably.subscribe(run.id):
        ...

Same interface as a local :class:`~durably_web.Durably` (``jobs.<key>.trigger``,
``trigger_and_wait``, ``batch_trigger``, ``get_run(s)``, ``get_steps``, ``get_logs``,
``cancel``, ``retry``, ``retrigger``, ``delete_run``, ``subscribe``, ``wait_for_run``,
``on``), returning the same records (:class:`~durably_web.Run`, ``Step``, ``Log``, events,
:class:`~durably_web.JobResult`). Every request is built from the operation table
(:func:`durably_web.protocol.http.request_for`), and the job handles share their logic with a
local engine's (:class:`~durably_web.core.handles.BaseJobHandle`). Errors come back as the
same classes, rebuilt from ``{"error", "code"}`` (or from the status code for an upstream
server). Needs ``httpx`` (``pip install durably-web[http]``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Any

import httpx

from durably_web.core.handles import BaseJobHandle, Jobs
from durably_web.core.trigger import TriggerItem
from durably_web.core.watch import wait_for
from durably_web.errors import NotFoundError, ValidationError, error_from_wire
from durably_web.events import TERMINAL_EVENT_TYPES, Event, event_from_wire
from durably_web.models import Log, Run, Step
from durably_web.protocol.http import request_for
from durably_web.protocol.operations import BY_NAME
from durably_web.protocol.wire import TRIGGER_OPTIONS, trigger_to_wire

__all__ = ["HttpClient", "HttpJobHandle", "connect_http"]

_RECONNECT_DELAY = 0.5  # seconds before a stream the server ended is reopened


async def connect_http(
    url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 30.0
) -> HttpClient:
    """Connect to a server's Durably endpoints at ``url``; learn its jobs.

    Args:
        url: the base URL the app is mounted at (``http://host:port/api/durably``).
        headers: sent with every request (e.g. ``Authorization``).
        timeout: seconds for each plain request (streams have no read timeout).
    """
    client = HttpClient(url, headers=headers, timeout=timeout)
    await client.refresh_jobs()
    return client


class HttpJobHandle(BaseJobHandle[Any, Any]):
    """Trigger one job on the server (``jobs.<key>``); see :class:`BaseJobHandle`."""

    def __init__(self, client: HttpClient, key: str, name: str) -> None:
        self._client = client
        self._engine = client
        self.key = key
        self.name = name

    async def _enqueue(self, items: list[TriggerItem], *, batch: bool) -> list[Run]:
        for item in items:
            if item.key_scope is not None:
                raise ValidationError(
                    "key_scope is decided by the server (its auth hooks), not by a client"
                )
        if batch:
            wire = [trigger_to_wire(_json(item.input), _options(item)) for item in items]
            answers = await self._client._call("batchTrigger", job_name=self.name, items=wire)
        else:
            [item] = items
            options = _options(item)
            answer = await self._client._call(
                "trigger", job_name=self.name, input=_json(item.input), **options
            )
            answers = [answer]
        runs = []
        for answer in answers:  # upstream answers with ids only: read each run back
            run = await self._client._require(answer["runId"])
            runs.append(run.with_disposition(answer.get("disposition") or "created"))
        return runs


class HttpClient:
    """A remote engine behind durably_web's (or upstream Durably's) HTTP handler."""

    def __init__(
        self, url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 30.0
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(headers=dict(headers or {}), timeout=timeout)
        self.jobs: Jobs[HttpJobHandle] = Jobs()
        self._listeners: dict[str, list[Callable[[Any], Any]]] = {}
        self._stream: asyncio.Task[None] | None = None

    async def __aenter__(self) -> HttpClient:
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
            jobs = await self._call("getJobs")
        except NotFoundError:
            return
        for job in jobs:
            handle = HttpJobHandle(self, job["key"], job["name"])
            self.jobs._add(job["key"], handle)
            if job["name"] not in self.jobs:
                self.jobs._add(job["name"], handle)

    def job(self, name: str) -> HttpJobHandle:
        """Return a handle for any job name, listed or not (for upstream servers)."""
        return self.jobs.get(name) or HttpJobHandle(self, name, name)

    async def _call(self, name: str, **args: Any) -> Any:
        """Make the operation ``name`` with ``args`` (by Python name); return its JSON answer.

        Raises:
            DurablyError: the server's error, as the same class.

        """
        request = request_for(BY_NAME[name], args)
        response = await self._http.request(
            request.method,
            self.url + request.path,
            params=tuple(request.query),
            json=request.body,
        )
        if response.status_code >= 400:
            try:
                payload = response.json()
            except ValueError:
                payload = {"error": response.text or response.reason_phrase}
            raise error_from_wire(payload, response.status_code)
        return response.json()

    # -- runs ---------------------------------------------------------------------------

    async def get_run(self, run_id: str) -> Run | None:
        """Return the run, or None."""
        try:
            return Run.from_wire(await self._call("getRun", run_id=run_id))
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
        answer = await self._call(
            "getRuns",
            status=status,
            job_name=job_name,
            labels=labels,
            limit=limit,
            offset=offset or None,
        )
        return [Run.from_wire(data) for data in answer]

    async def get_steps(self, run_id: str) -> list[Step]:
        """Return the run's steps."""
        return [Step.from_wire(d) for d in await self._call("getSteps", run_id=run_id)]

    async def get_logs(self, run_id: str) -> list[Log]:
        """Return the run's persisted logs (``GET /logs``, a durably_web extension)."""
        return [Log.from_wire(d) for d in await self._call("getLogs", run_id=run_id)]

    async def cancel(self, run_id: str) -> Run:
        """Cancel a run; return it."""
        await self._call("cancel", run_id=run_id)
        return await self._require(run_id)

    async def retry(self, run_id: str) -> Run:
        """Retry a failed or cancelled run in place; return it."""
        await self._call("retry", run_id=run_id)
        return await self._require(run_id)

    async def retrigger(self, run_id: str) -> Run:
        """Start a new run with the same input; return the new run."""
        answer = await self._call("retrigger", run_id=run_id)
        return await self._require(answer["runId"])

    async def delete_run(self, run_id: str) -> Run:
        """Delete a finished run; return what it was."""
        run = await self._require(run_id)
        await self._call("deleteRun", run_id=run_id)
        return run

    async def _require(self, run_id: str) -> Run:
        run = await self.get_run(run_id)
        if run is None:
            raise NotFoundError(f"Run not found: {run_id}")
        return run

    # -- streams ------------------------------------------------------------------------

    async def _sse(self, name: str, **args: Any) -> AsyncGenerator[dict[str, Any], None]:
        request = request_for(BY_NAME[name], args)
        async with self._http.stream(
            request.method,
            self.url + request.path,
            params=tuple(request.query),
            timeout=httpx.Timeout(None, connect=10),
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
            async for data in self._sse("subscribe", run_id=run_id):
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
        events = self.subscribe(run_id)
        try:
            return await asyncio.wait_for(
                wait_for(events, run_id, self.get_run, on_progress, on_log), timeout
            )
        finally:
            await events.aclose()

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
            async for data in self._sse("runsSubscribe"):
                event = event_from_wire(data)
                handlers = (*self._listeners.get(event.type, ()), *self._listeners.get("*", ()))
                for handler in handlers:
                    with contextlib.suppress(Exception):
                        result = handler(event)
                        if inspect.isawaitable(result):
                            await result
            await asyncio.sleep(_RECONNECT_DELAY)


def _json(value: Any) -> Any:
    """Return an input as JSON data (a pydantic model dumped)."""
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def _options(item: TriggerItem) -> dict[str, Any]:
    """Return a trigger's options by Python name (labels as a plain dict)."""
    options = {name: getattr(item, name) for name, _ in TRIGGER_OPTIONS}
    if options["labels"] is not None:
        options["labels"] = dict(options["labels"])
    return options
