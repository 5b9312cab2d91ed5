"""Waiting runs and signals over HTTP: ``waiting`` on the wire, ``POST /signal``, the client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from durably_web import ConflictError, NotFoundError, create_durably
from durably_web.http_client import connect_http
from durably_web.server import create_app
from tests.integration.test_waits import JOBS
from tests.server.conftest import Served, serve


@pytest.fixture
async def waits_served(tmp_path: Path) -> AsyncIterator[Served]:
    durably = create_durably(f"sqlite:///{tmp_path / 'w.db'}", jobs=JOBS, polling_interval=60)
    app = create_app(durably)
    async with serve(app, durably) as running:
        yield running


async def until_waiting(served: Served, run_id: str) -> dict[str, Any]:
    for _ in range(500):
        answer = (await served.http.get("/run", params={"runId": run_id})).json()
        if answer["status"] == "waiting":
            return dict(answer)
        await asyncio.sleep(0.01)
    raise AssertionError(f"run {run_id} never waited")


async def test_a_waiting_run_on_the_wire_and_a_signal_that_resumes_it(
    waits_served: Served,
) -> None:
    http = waits_served.http
    run_id = (await http.post("/trigger", json={"jobName": "approval", "input": {}})).json()[
        "runId"
    ]
    run = await until_waiting(waits_served, run_id)
    assert run["waiting"] == {"kind": "signal", "name": "approval", "until": None}
    listed = (await http.get("/runs", params={"status": "waiting"})).json()
    assert [r["id"] for r in listed] == [run_id]

    sent = await http.post(
        "/signal", json={"runId": run_id, "name": "approval", "payload": {"ok": 1}}
    )
    assert (sent.status_code, sent.json()) == (200, {"success": True})
    done = await waits_served.durably.wait_for_run(run_id, timeout=10)
    assert done.output == {"decision": {"ok": 1}}
    again = await http.post("/signal", json={"runId": run_id, "name": "approval"})
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"
    missing = await http.post("/signal", json={"runId": "nope", "name": "approval"})
    assert missing.status_code == 404
    bad = await http.post("/signal", json={"runId": run_id})
    assert bad.status_code == 400


async def test_the_http_client_signals_and_sees_waiting(waits_served: Served) -> None:
    client = await connect_http(waits_served.url)
    try:
        run = await client.jobs.napper.trigger({"nap": 3600})
        await until_waiting(waits_served, run.id)
        napping = await client.get_run(run.id)
        assert napping is not None and napping.waiting is not None
        assert napping.waiting.kind == "sleep"
        assert napping.waiting == (await waits_served.durably.get_run(run.id)).waiting  # type: ignore[union-attr]
        waiting = await client.jobs.approval.trigger({})
        await until_waiting(waits_served, waiting.id)
        answered = await client.signal(waiting.id, "approval", "yes")
        assert answered.id == waiting.id
        done = await client.wait_for_run(waiting.id, timeout=10)
        assert done.output == {"decision": "yes"}
        with pytest.raises(ConflictError):
            await client.signal(waiting.id, "approval")
        with pytest.raises(NotFoundError):
            await client.signal("01JZZZZZZZZZZZZZZZZZZZZZZZ", "approval")
    finally:
        await client.close()
