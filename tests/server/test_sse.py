"""Server-sent events: order, content, throttling, keep-alive, disconnects."""

from __future__ import annotations

import asyncio

from durably_web import create_durably
from durably_web.server import create_app
from durably_web.testing import settle
from tests.jobs import Recorder, echo_job
from tests.server.conftest import Served, serve, sse_events


async def test_subscribe_streams_state_then_events_and_closes(
    served: Served, recorder: Recorder
) -> None:
    run_id = (
        await served.http.post(
            "/trigger", json={"jobName": "steps", "input": {"n": 3, "gate_at": 1}}
        )
    ).json()["runId"]
    await asyncio.wait_for(recorder.entered["default"].wait(), 10)
    reader = asyncio.create_task(sse_events(served.http, f"/subscribe?runId={run_id}"))
    await asyncio.sleep(0.3)
    recorder.gates["default"].set()
    events = [e for e in await reader if not isinstance(e, str)]
    types = [e["type"] for e in events]
    assert types[0] == "run:leased" and events[0]["sequence"] == 0  # the snapshot
    assert types[1] == "run:progress" and events[1]["progress"] == {
        "current": 1,
        "total": 3,
        "message": "step 1",
    }
    assert types[-1] == "run:complete" and events[-1]["output"] == {"total": 3}
    assert "step:complete" in types and "log:write" in types
    assert all(e["runId"] == run_id for e in events)
    # throttled progress may trail later events (as upstream); everything else is in order
    live = [e["sequence"] for e in events if e["sequence"] and e["type"] != "run:progress"]
    assert live == sorted(live)
    assert set(events[-1]) >= {
        "type",
        "runId",
        "jobName",
        "labels",
        "timestamp",
        "sequence",
        "duration",
    }


async def test_subscribe_to_finished_run_sends_outcome_and_closes(served: Served) -> None:
    run_id = (
        await served.http.post("/trigger", json={"jobName": "echo", "input": {"x": 1}})
    ).json()["runId"]
    await served.durably.wait_for_run(run_id, timeout=10)
    events = await sse_events(served.http, f"/subscribe?runId={run_id}")
    data = [e for e in events if not isinstance(e, str)]
    assert [(e["type"], e["output"], e["sequence"]) for e in data] == [
        ("run:complete", {"x": 1}, 0)
    ]


async def test_progress_is_throttled_and_flushed_before_terminal(
    served: Served, recorder: Recorder
) -> None:
    body = {"jobName": "progress-burst", "input": {"n": 200, "wait": 1}}
    run_id = (await served.http.post("/trigger", json=body)).json()["runId"]
    reader = asyncio.create_task(sse_events(served.http, f"/subscribe?runId={run_id}"))
    await asyncio.sleep(0.3)
    recorder.gates["burst"].set()
    events = [e for e in await reader if not isinstance(e, str)]
    progress = [e["progress"]["current"] for e in events if e["type"] == "run:progress"]
    assert 1 <= len(progress) < 20, progress  # 200 calls within one step, 100 ms apart at most
    assert progress[-1] == 200  # the trailing value arrives, before the outcome
    assert events[-1]["type"] == "run:complete"


async def test_keepalive_comments_while_idle(served: Served) -> None:
    run_id = (
        await served.http.post(
            "/trigger", json={"jobName": "steps", "input": {"n": 2, "gate_at": 0}}
        )
    ).json()["runId"]
    comments: list[str] = []

    async def read() -> None:
        async with served.http.stream("GET", f"/subscribe?runId={run_id}") as response:
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    comments.append(line)
                    if len(comments) == 2:
                        return

    await asyncio.wait_for(read(), 5)
    assert comments == [": keep-alive", ": keep-alive"]


async def test_disconnect_stops_the_stream(served: Served) -> None:
    run_id = (
        await served.http.post(
            "/trigger", json={"jobName": "steps", "input": {"n": 2, "gate_at": 0}}
        )
    ).json()["runId"]
    bus = served.durably._bus
    before = len(bus._handlers.get("*", []))
    await sse_events(served.http, f"/subscribe?runId={run_id}", limit=1)
    for _ in range(50):
        await settle()
        if len(bus._handlers.get("*", [])) == before:
            break
        await asyncio.sleep(0.02)
    assert len(bus._handlers.get("*", [])) == before  # the server let go of the subscription


async def test_runs_subscribe_sends_trimmed_filtered_events(served: Served) -> None:
    reader = asyncio.create_task(
        sse_events(served.http, "/runs/subscribe?jobName=echo&label.org=a", limit=3)
    )
    await asyncio.sleep(0.2)
    await served.http.post(
        "/trigger", json={"jobName": "echo", "input": {}, "labels": {"org": "b"}}
    )
    await served.http.post(
        "/trigger", json={"jobName": "steps", "input": {"n": 1}, "labels": {"org": "a"}}
    )
    mine = (
        await served.http.post(
            "/trigger", json={"jobName": "echo", "input": {"q": 1}, "labels": {"org": "a"}}
        )
    ).json()["runId"]
    events = [e for e in await reader if not isinstance(e, str)]
    assert [e["type"] for e in events] == ["run:trigger", "run:leased", "step:start"]
    assert all(e["runId"] == mine for e in events)
    assert events[0] == {
        "type": "run:trigger",
        "runId": mine,
        "jobName": "echo",
        "labels": {"org": "a"},
    }
    assert "timestamp" not in events[1] and "input" not in events[1]
    assert events[2]["stepName"] == "echo" and events[2]["stepIndex"] == 0


async def test_runs_subscribe_shows_runs_a_worker_elsewhere_executes(postgres_url: str) -> None:
    """A server with no worker of its own: the runs it triggers run in another process (a
    second engine, its own pool), and the dashboard's stream still follows them (NOTIFY)."""
    server_engine = create_durably(postgres_url, jobs={"echo": echo_job}, polling_interval=3600)
    await server_engine.migrate()  # manage_engine=False: no worker here
    app = create_app(server_engine, manage_engine=False, keepalive=0.3)
    worker = create_durably(postgres_url, jobs={"echo": echo_job}, polling_interval=3600)
    await worker.init()
    try:
        async with serve(app, server_engine) as served:
            reader = asyncio.create_task(
                sse_events(served.http, "/runs/subscribe?jobName=echo", limit=3)
            )
            await asyncio.sleep(0.2)
            answer = await served.http.post("/trigger", json={"jobName": "echo", "input": {"x": 1}})
            run_id = answer.json()["runId"]
            events = [e for e in await reader if not isinstance(e, str)]
            assert [e["type"] for e in events] == ["run:trigger", "run:leased", "run:complete"]
            assert all(e["runId"] == run_id and e["jobName"] == "echo" for e in events)
            done = await served.http.get(f"/run?runId={run_id}")
            assert done.json()["status"] == "completed"
        assert not server_engine.worker.running
    finally:
        await worker.close()
        await server_engine.close()
