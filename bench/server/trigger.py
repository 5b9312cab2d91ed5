"""The ``POST /trigger`` load: an httpx client and a raw asyncio HTTP/1.1 client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any, Protocol

import httpx

from server.params import Params
from server.processes import own_cpu_s, proc_cpu_s

TRIGGER_BODY = json.dumps({"jobName": "bench-noop", "input": {}}).encode()


async def check_ok(response: httpx.Response, what: str) -> Any:
    """Return the JSON of a 200 answer; raise with the status and body otherwise."""
    if response.status_code != 200:
        raise RuntimeError(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
    return response.json()


class Poster(Protocol):
    """One keep-alive connection that sends ``POST /trigger`` for ``bench-noop``."""

    async def trigger(self) -> Any:
        """Send one trigger; return the JSON answer, raise unless it is a 200."""
        ...

    async def aclose(self) -> None:
        """Close the connection."""
        ...


class HttpxPoster:
    """``POST /trigger`` through an ``httpx.AsyncClient`` of its own (one connection).

    One client per in-flight request: a shared client's pool does work proportional to its
    connections on every request.
    """

    def __init__(self, base_url: str) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=30.0,
            trust_env=False,
        )

    async def trigger(self) -> Any:
        """Send one trigger; return the JSON answer, raise unless it is a 200."""
        response = await self._client.post(
            "/trigger", content=TRIGGER_BODY, headers={"content-type": "application/json"}
        )
        return await check_ok(response, "POST /trigger")

    async def aclose(self) -> None:
        """Close the client."""
        await self._client.aclose()


class RawPoster:
    """``POST /trigger`` as one pre-encoded HTTP/1.1 write on an asyncio stream.

    A minimal keep-alive client (status line, headers, ``Content-Length`` or chunked body)
    that costs the load generator a fraction of httpx's CPU per request, so that the server,
    not the client, limits the request rate.
    """

    def __init__(self, port: int) -> None:
        self._port = port
        self._request = (
            f"POST /trigger HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(TRIGGER_BODY)}\r\n\r\n"
        ).encode() + TRIGGER_BODY
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def trigger(self) -> Any:
        """Send one trigger; return the JSON answer, raise unless it is a 200."""
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self._port)
        reader, writer = self._reader, self._writer
        writer.write(self._request)
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in head[1:]:
            if line:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                parts.append((await reader.readexactly(size + 2))[:-2])
            await reader.readuntil(b"\r\n")  # the empty trailer
            body = b"".join(parts)
        else:
            raise RuntimeError(f"POST /trigger: answer without a length: {head!r}")
        if headers.get("connection", "").lower() == "close":
            await self.aclose()
        if status != 200:
            raise RuntimeError(f"POST /trigger: HTTP {status}: {body[:500]!r}")
        return json.loads(body)

    async def aclose(self) -> None:
        """Close the connection."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None


async def trigger_phase(
    make_poster: Callable[[], Poster], params: Params, pid: int, prefix: str
) -> dict[str, Any]:
    """Keep ``concurrency`` triggers in flight for warm-up + duration; return the metrics.

    Args:
        make_poster: makes one connection; one is made per in-flight request.
        params: the sizes.
        pid: the server's process, whose CPU time is read before and after.
        prefix: the metric keys' prefix (``trigger_httpx`` or ``trigger_raw``).
    """
    latencies: list[float] = []
    clock: dict[str, float] = {}
    posters = [make_poster() for _ in range(params.concurrency)]

    async def worker(poster: Poster, until: float, record: bool) -> None:
        while time.perf_counter() < until:
            started = time.perf_counter()
            answer = await poster.trigger()
            finished = time.perf_counter()
            if not isinstance(answer, dict) or answer.get("disposition") != "created":
                raise RuntimeError(f"POST /trigger answered {answer!r}")
            if record:
                latencies.append(finished - started)
                clock["last"] = max(clock.get("last", 0.0), finished)

    try:
        warm_until = time.perf_counter() + params.warmup_s
        await asyncio.gather(*(worker(p, warm_until, False) for p in posters))
        server_cpu0, client_cpu0 = proc_cpu_s(pid), own_cpu_s()
        started = time.perf_counter()
        until = started + params.duration_s
        await asyncio.gather(*(worker(p, until, True) for p in posters))
        elapsed = clock["last"] - started
        server_cpu = proc_cpu_s(pid) - server_cpu0
        client_cpu = own_cpu_s() - client_cpu0
    finally:
        await asyncio.gather(*(p.aclose() for p in posters), return_exceptions=True)
    ordered = sorted(latencies)
    return {
        f"{prefix}_rps": len(latencies) / elapsed,
        f"{prefix}_requests": len(latencies),
        f"{prefix}_p50_ms": 1000 * ordered[len(ordered) // 2],
        f"{prefix}_p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        f"{prefix}_server_cpu": server_cpu / elapsed,
        f"{prefix}_client_cpu": client_cpu / elapsed,
    }
