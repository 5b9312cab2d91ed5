"""A real uvicorn server on 127.0.0.1, in the test's event loop, driven by httpx."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from durably_web import Durably, create_durably
from durably_web.server import DurablyApp, create_app
from tests import jobs
from tests.jobs import echo_job, steps_job
from tests.server.server_jobs import burst_job


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    durably: Durably
    app: DurablyApp
    url: str
    http: httpx.AsyncClient


@asynccontextmanager
async def serve(app: Any, durably: Durably) -> AsyncIterator[Served]:
    """Run ``app`` under uvicorn on a free loopback port until the block ends."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        try:
            yield Served(durably, app, url, http)
        finally:
            if isinstance(app, DurablyApp):
                app.shutdown()  # end open event streams, as serve-api does on Ctrl-C
            server.should_exit = True
            await asyncio.wait_for(task, 10)


MakeServer = Callable[..., Any]


@pytest.fixture(autouse=True)
def recorder() -> jobs.Recorder:
    jobs.recorder = jobs.Recorder()
    return jobs.recorder


@pytest.fixture(params=["sqlite", "postgres"])
def server_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The served engine's database URL: a SQLite file, or PostgreSQL (a schema of its own)."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'server.db'}"


@pytest.fixture
async def served(server_database: str) -> AsyncIterator[Served]:
    """The engine (steps, echo and burst jobs) behind a default app, on each store."""
    durably = create_durably(
        server_database,
        jobs={"steps": steps_job, "echo": echo_job, "burst": burst_job},
        preserve_steps=True,
    )
    app = create_app(durably, sse_throttle=0.1, keepalive=0.3)
    async with serve(app, durably) as running:
        try:
            yield running
        finally:
            for gate in jobs.recorder.gates.values():
                gate.set()  # let jobs a test left waiting finish, so shutdown is quick
    await durably.close()


async def sse_events(
    http: httpx.AsyncClient, path: str, *, limit: int | None = None, timeout: float = 10
) -> list[Any]:
    """Read an SSE stream until it closes (or ``limit`` events); return the decoded events.

    Comment lines (keep-alives) are returned as the string ``": <text>"``.
    """
    events: list[Any] = []

    async def read() -> None:
        async with http.stream("GET", path, timeout=timeout) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"] == "text/event-stream"
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                elif line.startswith(":"):
                    events.append(line)
                if (
                    limit is not None
                    and len([e for e in events if not isinstance(e, str)]) >= limit
                ):
                    return

    await asyncio.wait_for(read(), timeout)
    return events
