r"""Server-sent events: upstream Durably's framing, progress throttling, keep-alive, disconnects.

Each message is ``data: <json>\\n\\n``, with no ``event:`` line: upstream's React client only
listens to unnamed messages. Progress events are throttled per run (the first goes out at
once, then at most one per ``throttle`` seconds, the latest winning, sent on the trailing
edge) and a pending one is flushed before the run's terminal event. A comment line
(``: keep-alive``) goes out when nothing else did for ``keepalive`` seconds, so proxies keep
the stream open. The stream stops as soon as the client disconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from durably_web.server.http import Receive, Send

__all__ = ["SSE_HEADERS", "ProgressThrottle", "stream_events"]

SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
]
_TERMINAL = {"run:complete", "run:fail", "run:cancel", "run:delete"}


def frame(event: dict[str, Any]) -> bytes:
    """Encode one event as an SSE ``data:`` frame."""
    return (
        b"data: " + json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"
    )


class ProgressThrottle:
    """Rate-limit ``run:progress`` per run; everything else passes through in order.

    Args:
        throttle: seconds between two progress events of one run (0 disables throttling).
        out: where frames go, in order.
    """

    def __init__(self, throttle: float, out: asyncio.Queue[bytes | None]) -> None:
        self._throttle = throttle
        self._out = out
        self._loop = asyncio.get_running_loop()
        self._last_sent: dict[str, float] = {}
        self._pending: dict[str, dict[str, Any]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def push(self, event: dict[str, Any]) -> None:
        """Queue ``event``, holding back progress that comes too soon after the last."""
        run_id = event.get("runId")
        kind = event.get("type")
        if kind == "run:progress" and run_id and self._throttle > 0:
            now = self._loop.time()
            last = self._last_sent.get(run_id)
            if last is None or now - last >= self._throttle:
                self._send_progress(run_id, event)
            else:
                self._pending[run_id] = event
                if run_id not in self._timers:
                    delay = last + self._throttle - now
                    self._timers[run_id] = self._loop.call_later(delay, self._trailing, run_id)
            return
        if kind in _TERMINAL and run_id:
            self._flush(run_id)
            self._last_sent.pop(run_id, None)
        self._out.put_nowait(frame(event))

    def _send_progress(self, run_id: str, event: dict[str, Any]) -> None:
        self._last_sent[run_id] = self._loop.time()
        self._out.put_nowait(frame(event))

    def _trailing(self, run_id: str) -> None:
        self._timers.pop(run_id, None)
        event = self._pending.pop(run_id, None)
        if event is not None:
            self._send_progress(run_id, event)

    def _flush(self, run_id: str) -> None:
        timer = self._timers.pop(run_id, None)
        if timer is not None:
            timer.cancel()
        event = self._pending.pop(run_id, None)
        if event is not None:
            self._out.put_nowait(frame(event))

    def flush_all(self) -> None:
        """Send every held-back progress event now (the source ended)."""
        for run_id in list(self._pending):
            self._flush(run_id)

    def discard(self) -> None:
        """Drop held-back events and timers (the client went away)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._pending.clear()


async def stream_events(
    send: Send,
    receive: Receive,
    events: AsyncIterator[dict[str, Any]],
    *,
    throttle: float,
    keepalive: float,
) -> None:
    """Send ``events`` as an SSE response until they end or the client disconnects."""
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    out: asyncio.Queue[bytes | None] = asyncio.Queue()
    throttler = ProgressThrottle(throttle, out)
    disconnected = asyncio.Event()

    async def watch_disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnected.set()
        out.put_nowait(None)

    async def produce() -> None:
        try:
            async for event in events:
                throttler.push(event)
            throttler.flush_all()
        finally:
            out.put_nowait(None)

    watcher = asyncio.ensure_future(watch_disconnect())
    producer = asyncio.ensure_future(produce())
    try:
        while not disconnected.is_set():
            try:
                chunk = await asyncio.wait_for(out.get(), timeout=keepalive)
            except TimeoutError:
                chunk = b": keep-alive\n\n"
            if chunk is None:
                break
            chunks = [chunk]
            ended = False
            while not out.empty():  # send everything already queued in one write
                more = out.get_nowait()
                if more is None:
                    ended = True
                    break
                chunks.append(more)
            await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": True})
            if ended:
                break
        if not disconnected.is_set():
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError:
        pass  # the connection broke while sending: same as a disconnect
    finally:
        throttler.discard()
        for task in (producer, watcher):
            task.cancel()
        for task in (producer, watcher):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
