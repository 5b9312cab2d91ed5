"""The SSE load: subscribers that follow one ``bench-sse`` run and count its events."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from server.params import Params
from server.processes import READY_TIMEOUT_S, own_cpu_s
from server.trigger import check_ok

TERMINAL = frozenset({"run:complete", "run:fail", "run:cancel", "run:delete"})
STEP_EVENTS = frozenset({"step:start", "step:complete"})
# Any of these (live, or a /subscribe snapshot) means the run is leased, in its gate step.
STARTED = frozenset({"run:leased", "run:start", "step:start"})
SSE_TIMEOUT_S = 120.0
CLOSE_TIMEOUT_S = 5.0


@dataclass(slots=True)
class Subscriber:
    """What one SSE client saw of the benchmark run."""

    path: str
    params: dict[str, str]
    run_id: str | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    opened_at: float | None = None
    step_events: int = 0
    events_after_open: int = 0
    progress_events: int = 0
    terminal_at: float | None = None
    closed_by_server: bool = False
    types: dict[str, int] = field(default_factory=dict)


def parse_frames(lines: list[str]) -> list[dict[str, Any]]:
    """Turn the lines of one SSE message into its event (none for a comment-only message)."""
    data = [line[5:].removeprefix(" ") for line in lines if line.startswith("data:")]
    other = [line for line in lines if not line.startswith(("data:", ":"))]
    if other:
        raise RuntimeError(f"unexpected SSE lines {other!r}")
    if not data:
        return []
    event = json.loads("\n".join(data))
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise RuntimeError(f"SSE data is not an event: {data!r}")
    return [event]


async def follow(
    client: httpx.AsyncClient, sub: Subscriber, steps: int, gate_opened: Callable[[], float | None]
) -> None:
    """Read one subscriber's stream until the benchmark run's terminal event.

    For ``/subscribe`` it then waits for the server to close the stream (upstream's contract).
    Only what arrives after the gate opened is counted.
    """
    timeout = httpx.Timeout(SSE_TIMEOUT_S, connect=10.0)
    async with client.stream("GET", sub.path, params=sub.params, timeout=timeout) as response:
        if response.status_code != 200:
            body = (await response.aread()).decode(errors="replace")
            raise RuntimeError(f"GET {sub.path}: HTTP {response.status_code}: {body[:500]}")
        kind = response.headers.get("content-type", "")
        if not kind.startswith("text/event-stream"):
            raise RuntimeError(f"GET {sub.path}: content-type {kind!r}")
        sub.connected.set()
        pending: list[str] = []
        lines = response.aiter_lines()
        async for line in lines:
            if line:
                pending.append(line)
                continue
            events, pending = parse_frames(pending), []
            for event in events:
                if sub.run_id is not None and event.get("runId") != sub.run_id:
                    continue
                kind = event["type"]
                sub.types[kind] = sub.types.get(kind, 0) + 1
                if gate_opened() is None:
                    if kind in STARTED:
                        sub.started.set()
                    continue
                sub.events_after_open += 1
                if kind in STEP_EVENTS and str(event.get("stepName", "")).startswith("step-"):
                    sub.step_events += 1
                elif kind == "run:progress":
                    sub.progress_events += 1
                if kind in TERMINAL:
                    sub.terminal_at = time.perf_counter()
                    if kind != "run:complete":
                        raise RuntimeError(f"the benchmark run ended with {event!r}")
            if sub.terminal_at is not None:
                break
        if sub.terminal_at is None:
            raise RuntimeError(f"GET {sub.path} ended before the run's terminal event")
        if sub.path == "/subscribe":  # upstream's contract: the stream ends after it
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    async for line in lines:
                        if line.startswith("data:"):
                            raise RuntimeError(f"GET /subscribe sent {line!r} after the end")
                sub.closed_by_server = True
            except TimeoutError:
                raise RuntimeError(
                    f"GET /subscribe stayed open {CLOSE_TIMEOUT_S:.0f} s after run:complete"
                ) from None
    if sub.step_events != 2 * steps:
        raise RuntimeError(
            f"GET {sub.path} delivered {sub.step_events} step events, expected {2 * steps}"
            f" (seen: {sub.types})"
        )


async def sse_phase(client: httpx.AsyncClient, params: Params, workdir: Path) -> dict[str, Any]:
    """Follow one ``bench-sse`` run with every subscriber; return the SSE metrics."""
    gate = workdir / "gate"
    opened: dict[str, float] = {}

    def gate_opened() -> float | None:
        return opened.get("at")

    subs = [
        Subscriber("/runs/subscribe", {"jobName": "bench-sse"})
        for _ in range(params.all_subscribers)
    ]
    tasks = [asyncio.ensure_future(follow(client, s, params.steps, gate_opened)) for s in subs]
    try:
        await wait_all([s.connected for s in subs], tasks)
        answer = await check_ok(
            await client.post(
                "/trigger",
                json={"jobName": "bench-sse", "input": {"steps": params.steps, "gate": str(gate)}},
            ),
            "POST /trigger (bench-sse)",
        )
        run_id = str(answer["runId"])
        for sub in subs:
            sub.run_id = run_id
        run_subs = [
            Subscriber("/subscribe", {"runId": run_id}, run_id=run_id)
            for _ in range(params.run_subscribers)
        ]
        new = [
            asyncio.ensure_future(follow(client, s, params.steps, gate_opened)) for s in run_subs
        ]
        subs += run_subs
        tasks += new
        await wait_all([s.connected for s in run_subs], new)
        # Upstream's worker polls every second and a trigger does not wake it: open the gate
        # only once every subscriber has seen the run start, so no poll wait is timed.
        await wait_all([s.started for s in subs], tasks)
        cpu0 = own_cpu_s()
        opened["at"] = time.perf_counter()
        gate.touch()
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    ended = max(s.terminal_at for s in subs if s.terminal_at is not None)
    elapsed = ended - opened["at"]
    return {
        "sse_step_events_per_s": sum(s.step_events for s in subs) / elapsed,
        "sse_events_per_s": sum(s.events_after_open for s in subs) / elapsed,
        "sse_run_steps_per_s": params.steps / elapsed,
        "sse_seconds": elapsed,
        "sse_client_cpu": (own_cpu_s() - cpu0) / elapsed,
        "sse_progress_events_per_subscriber": statistics.mean(s.progress_events for s in subs),
        "sse_events_per_subscriber": statistics.mean(s.events_after_open for s in subs),
    }


async def wait_all(events: list[asyncio.Event], tasks: Sequence[asyncio.Future[None]]) -> None:
    """Wait until every event is set; surface a subscriber's failure at once."""
    waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            while not all(w.done() for w in waits):
                await asyncio.wait([*waits, *tasks], return_when=asyncio.FIRST_COMPLETED)
                for task in tasks:
                    if task.done():
                        task.result()  # raises the subscriber's error
                        raise RuntimeError("an SSE stream ended before the gate opened")
    finally:
        for w in waits:
            w.cancel()
