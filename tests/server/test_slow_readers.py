"""Back-pressure: an SSE client that stops reading is cut off; the server's buffer stays bounded.

Issue 14, item 3: five subscribers that never read took the server from 41 to 274 MB while
runs logged. ``bench/server_slow_readers.py`` measures that load; these tests pin the rule.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from durably_web import create_durably
from durably_web.http_client import connect_http
from durably_web.server import create_app
from durably_web.server.sse import EventStream
from tests.server.conftest import Served, serve, sse_events
from tests.server.server_jobs import flood_job

LINE = 64 * 1024
LINES = 100  # 6.4 MB per subscriber: more than the kernel's socket buffers absorb


async def test_a_stream_nobody_reads_is_cut_off_and_stays_bounded() -> None:
    stream = EventStream(throttle=0, max_buffer=10_000)
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)
        if message.get("more_body"):
            await asyncio.Event().wait()  # a full socket: the client never reads

    async def receive() -> Any:
        await asyncio.Event().wait()  # the client never leaves either

    serving = asyncio.create_task(stream.serve(send, receive, keepalive=60))
    await asyncio.sleep(0)
    highest = 0
    for _ in range(1000):
        stream.push({"type": "log:write", "runId": "r", "message": "x" * 500})
        highest = max(highest, stream.buffered)
        await asyncio.sleep(0)
    assert stream.ending == "overflow"
    assert highest <= 10_000 and stream.buffered == 0
    await asyncio.wait_for(serving, 5)  # the writer stuck in send() did not keep it open
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert len(sent) <= 3  # the start, the one stuck write, the end


async def test_shutdown_ends_a_stream_whose_client_reads_nothing() -> None:
    stream = EventStream(throttle=0, max_buffer=1 << 20)

    async def send(message: Any) -> None:
        if message["type"] == "http.response.body":
            await asyncio.Event().wait()  # a full socket, for the frames and for the end

    async def receive() -> Any:
        await asyncio.Event().wait()

    serving = asyncio.create_task(stream.serve(send, receive, keepalive=60))
    stream.push({"type": "log:write", "runId": "r", "message": "x"})
    await asyncio.sleep(0.05)
    stream.close()  # what DurablyApp.shutdown() does on SIGINT
    await asyncio.wait_for(serving, 3)  # one second of grace for the end, then it returns
    assert stream.ending == "close" and stream.buffered == 0


async def test_a_slow_reader_gets_what_fits_then_the_end(caplog: pytest.LogCaptureFixture) -> None:
    stream = EventStream(throttle=0, max_buffer=3_000)
    released = asyncio.Event()
    bodies: list[bytes] = []

    async def send(message: Any) -> None:
        if message["type"] == "http.response.body":
            await released.wait()  # the client reads only once everything was pushed
            bodies.append(message["body"])

    async def receive() -> Any:
        await asyncio.Event().wait()

    serving = asyncio.create_task(stream.serve(send, receive, keepalive=60))
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, "durably_web.server"):
        for i in range(10):
            stream.push({"type": "log:write", "runId": "r", "message": f"{i}" * 1000})
    released.set()
    await asyncio.wait_for(serving, 5)
    assert bodies[-1] == b"" and len(bodies) <= 3
    assert "fell more than 3000 bytes behind" in caplog.text


@pytest.fixture
async def flood_server(tmp_path: Path) -> AsyncIterator[Served]:
    durably = create_durably(f"sqlite:///{tmp_path / 'flood.db'}", jobs={"flood": flood_job})
    app = create_app(durably, sse_buffer=256 * 1024, keepalive=5)
    async with serve(app, durably) as running:
        yield running
    await durably.close()


async def open_non_reader(url: str, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Send ``GET path`` from a socket with a small receive buffer; read nothing yet."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


async def test_a_subscriber_that_stops_reading_is_cut_off_others_are_not(
    flood_server: Served,
) -> None:
    served = flood_server
    stuck, connection = await open_non_reader(served.url, "/runs/subscribe")
    reading = asyncio.create_task(
        # run:trigger, run:leased, step:start/step:complete/log:write per step, run:complete
        sse_events(served.http, "/runs/subscribe", limit=3 * LINES + 3, timeout=60)
    )
    while len(served.app._streams) < 2:
        await asyncio.sleep(0.01)
    streams = list(served.app._streams)
    highest = 0

    async def watch() -> None:
        nonlocal highest
        while True:
            highest = max(highest, *(stream.buffered for stream in streams))
            await asyncio.sleep(0.001)

    watcher = asyncio.create_task(watch())
    run_id = (
        await served.http.post(
            "/trigger", json={"jobName": "log-flood", "input": {"n": LINES, "size": LINE}}
        )
    ).json()["runId"]
    await served.durably.wait_for_run(run_id, timeout=60)
    events = [e for e in await reading if not isinstance(e, str)]
    watcher.cancel()
    assert [e["type"] for e in events].count("log:write") == LINES  # the reader got them all
    assert events[-1]["type"] == "run:complete"
    assert sorted(stream.ending or "open" for stream in streams) == ["open", "overflow"]
    assert highest <= 256 * 1024
    # The cut-off client, reading at last, finds what its socket held, then the end.
    received = b""
    while not received.endswith(b"0\r\n\r\n"):
        chunk = await asyncio.wait_for(stuck.read(1 << 20), 10)
        assert chunk, "the connection closed without ending the response"
        received += chunk
    assert received.startswith(b"HTTP/1.1 200")
    assert received.count(b'"type":"log:write"') < LINES
    connection.close()


async def test_the_python_client_reconnects_after_being_cut_off(
    flood_server: Served, caplog: pytest.LogCaptureFixture
) -> None:
    client = await connect_http(flood_server.url)
    run = await client.jobs.flood.trigger({"n": LINES, "size": LINE})
    seen: list[Any] = []

    async def slow(log: Any) -> None:  # a consumer slower than the run's logging
        if not seen:  # however loaded the machine, the whole run is logged before it reads on
            await flood_server.durably.wait_for_run(run.id, timeout=60)
        seen.append(log)
        await asyncio.sleep(0.02)

    with caplog.at_level(logging.WARNING, "durably_web.server"):
        done = await client.wait_for_run(run.id, timeout=60, on_log=slow)
    await client.close()
    assert done.status == "completed" and done.output == {"n": LINES}
    assert "fell more than" in caplog.text  # it was cut off, reconnected, saw the outcome
    assert len(seen) < LINES
