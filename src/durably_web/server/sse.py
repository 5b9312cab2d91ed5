r"""Server-sent events: upstream Durably's framing, throttling, keep-alive, and bounded buffers.

Each message is ``data: <json>\\n\\n``, with no ``event:`` line: upstream's React client only
listens to unnamed messages. Progress events are throttled per run (the first goes out at
once, then at most one per ``throttle`` seconds, the latest winning, sent on the trailing
edge) and a pending one is flushed before the run's terminal event. A comment line
(``: keep-alive``) goes out when nothing else did for ``keepalive`` seconds, so proxies keep
the stream open.

Every stream owns one buffer of at most ``max_buffer`` bytes of frames waiting for its client;
nothing between the engine's events and the socket holds more (bus listeners push straight
into it, and a run's watcher hands each event on as it comes). A client that falls
further behind, because it stopped reading or reads slower than the runs log, is cut off: its
waiting frames are dropped and the response ends as soon as the connection takes it (the
socket's own buffers are all that is left for it). Its ``EventSource`` reconnects and starts
from the current state (``GET /subscribe`` sends the run's state first), so the server's
memory stays flat whatever its readers do. The stream also ends when the client disconnects
and when the server shuts down (:meth:`EventStream.close`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from durably_web.server.http import Receive, Send

__all__ = ["SSE_HEADERS", "EventStream", "ProgressThrottle", "frame"]

SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
]
_TERMINAL = {"run:complete", "run:fail", "run:cancel", "run:delete"}
_WRITE_CHUNK = 64 * 1024  # frames joined into one write, at most (unless one is bigger)
_END_GRACE = 1.0  # seconds the end of a cut-off response may wait for the connection
_log = logging.getLogger("durably_web.server")

Ending = Literal["end", "overflow", "close"]


def frame(event: dict[str, Any]) -> bytes:
    """Encode one event as an SSE ``data:`` frame."""
    return (
        b"data: " + json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"
    )


class ProgressThrottle:
    """Rate-limit ``run:progress`` per run; everything else passes through in order.

    Args:
        throttle: seconds between two progress events of one run (0 disables throttling).
        out: called with each frame, in order.
    """

    def __init__(self, throttle: float, out: Callable[[bytes], None]) -> None:
        self._throttle = throttle
        self._out = out
        self._loop = asyncio.get_running_loop()
        self._last_sent: dict[str, float] = {}
        self._pending: dict[str, dict[str, Any]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def push(self, event: dict[str, Any]) -> None:
        """Pass ``event`` on, holding back progress that comes too soon after the last."""
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
        self._out(frame(event))

    def _send_progress(self, run_id: str, event: dict[str, Any]) -> None:
        self._last_sent[run_id] = self._loop.time()
        self._out(frame(event))

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
            self._out(frame(event))

    def flush_all(self) -> None:
        """Send every held-back progress event now (the source ended)."""
        for run_id in list(self._pending):
            self._flush(run_id)

    def discard(self) -> None:
        """Drop held-back events and timers (the stream is over)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._pending.clear()
        self._last_sent.clear()


class EventStream:
    """The frames owed to one SSE client: throttled, bounded, cut off when the client lags.

    Events go in with :meth:`push` (from a bus listener or a source iterator); :meth:`serve`
    writes them to the client. Create it, start listening, then ``await serve(...)``.

    Args:
        throttle: seconds between two progress events of one run (0: all of them).
        max_buffer: most bytes of frames that may wait for the client; a frame that does not
            fit (when others wait) cuts the stream off. One frame always fits.
    """

    def __init__(self, throttle: float, max_buffer: int) -> None:
        self.max_buffer = max_buffer
        self.ending: Ending | None = None
        self._frames: deque[bytes] = deque()
        self._size = 0
        self._changed = asyncio.Event()
        self._cut = asyncio.Event()
        self._closing = asyncio.Event()
        self._throttle = ProgressThrottle(throttle, self._put)

    @property
    def buffered(self) -> int:
        """Bytes of frames waiting for the client now."""
        return self._size

    def push(self, event: dict[str, Any]) -> None:
        """Queue one event for the client (ignored once the stream is ending)."""
        if self.ending is None:
            self._throttle.push(event)

    def end(self) -> None:
        """End after sending what is held back and waiting (the source is done)."""
        if self.ending is None:
            self._throttle.flush_all()
            self._finish("end")

    def close(self) -> None:
        """End the stream now, dropping what waits (the server is shutting down)."""
        self._closing.set()
        self._finish("close")

    def _put(self, data: bytes) -> None:
        if self.ending is not None:
            return
        if self._frames and self._size + len(data) > self.max_buffer:
            _log.warning(
                "durably_web server: an event-stream client fell more than %d bytes behind; "
                "its stream was ended (it reconnects and starts from the current state)",
                self.max_buffer,
            )
            self._finish("overflow")
            return
        self._frames.append(data)
        self._size += len(data)
        self._changed.set()

    def _finish(self, why: Ending) -> None:
        if self.ending is not None:
            return
        self.ending = why
        if why != "end":
            self._frames.clear()
            self._size = 0
            self._cut.set()
        self._throttle.discard()
        self._changed.set()

    def _take(self) -> bytes:
        chunks = [self._frames.popleft()]
        size = len(chunks[0])
        while self._frames and size + len(self._frames[0]) <= _WRITE_CHUNK:
            chunks.append(self._frames.popleft())
            size += len(chunks[-1])
        self._size -= size
        return b"".join(chunks)

    async def serve(
        self,
        send: Send,
        receive: Receive,
        *,
        keepalive: float,
        source: AsyncIterator[dict[str, Any]] | None = None,
    ) -> None:
        """Send the response: the frames as they come, until the stream ends or the client goes.

        Args:
            send: the ASGI send of this request.
            receive: its receive (watched for the client's disconnect).
            keepalive: seconds of silence after which a comment line goes out.
            source: events to push, read here; the stream ends after the last.

        """
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        disconnect = asyncio.ensure_future(_disconnected(receive))
        writer = asyncio.ensure_future(self._write(send, keepalive))
        cut = asyncio.ensure_future(self._cut.wait())
        tasks = [disconnect, writer, cut]
        if source is not None:
            tasks.append(asyncio.ensure_future(self._pump(source)))
        try:
            done, _ = await asyncio.wait(
                (disconnect, writer, cut), return_when=asyncio.FIRST_COMPLETED
            )
            if disconnect in done:
                return
            if writer in done and writer.exception() is not None:
                return  # the connection broke while sending: same as a disconnect
            if self.ending in ("overflow", "close"):
                await self._end_cut_off(send, writer, disconnect)
        finally:
            self._finish("close")
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _end_cut_off(
        self, send: Send, writer: asyncio.Future[None], disconnect: asyncio.Future[None]
    ) -> None:
        """End the response of a cut-off stream; the writer may be stuck in ``send``.

        A lagging client gets the end of the response once it reads what the connection
        already holds (bounded: the frames waiting here were dropped), or leaves. Once the
        server shuts down, the end waits at most a second more; then the app returns and
        the server closes the connection.
        """
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        end = asyncio.ensure_future(
            send({"type": "http.response.body", "body": b"", "more_body": False})
        )
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait((end, disconnect, closing), return_when=asyncio.FIRST_COMPLETED)
            if not end.done() and not disconnect.done():
                await asyncio.wait((end, disconnect), timeout=_END_GRACE)
        finally:
            for task in (end, closing):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task

    async def _pump(self, source: AsyncIterator[dict[str, Any]]) -> None:
        try:
            async for event in source:
                self.push(event)
                if self.ending is not None:
                    return
        except Exception as exc:  # noqa: BLE001 - the stream ends either way
            _log.warning("durably_web server: an event stream's source failed: %r", exc)
        finally:
            self.end()
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    async def _write(self, send: Send, keepalive: float) -> None:
        """Write frames until the stream ends normally (then end the response)."""
        while True:
            if self._frames:
                body = self._take()
            elif self.ending == "end":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            elif self.ending is not None:
                return  # cut off: serve() ends the response
            else:
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), keepalive)
                    continue
                except TimeoutError:
                    body = b": keep-alive\n\n"
            await send({"type": "http.response.body", "body": body, "more_body": True})


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
