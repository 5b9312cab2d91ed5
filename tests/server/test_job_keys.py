"""``jobName`` filters accept a registration key, as ``POST /trigger`` does.

Upstream's React client sends the key it was accessed by (``durably.burst.useJob()`` asks
``GET /runs?jobName=burst`` for autoResume and ``/runs/subscribe?jobName=burst`` for
followLatest), so the filters resolve a key to its job's name. The ``served`` engine
registers ``progress-burst`` under the key ``burst``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from durably_web import create_durably
from durably_web.server import Auth, Request, RunsFilter, SubscribeFilter, create_app
from tests.jobs import echo_job
from tests.server.conftest import Served, serve, sse_events
from tests.server.server_jobs import burst_job


async def test_runs_filter_by_key_or_name(served: Served) -> None:
    burst = await served.http.post("/trigger", json={"jobName": "burst", "input": {"n": 1}})
    echo = await served.http.post("/trigger", json={"jobName": "echo", "input": {}})
    burst_id, echo_id = burst.json()["runId"], echo.json()["runId"]
    await served.durably.wait_for_run(burst_id, timeout=10)
    await served.durably.wait_for_run(echo_id, timeout=10)

    async def ids(query: str) -> list[str]:
        response = await served.http.get(f"/runs?{query}")
        assert response.status_code == 200, response.text
        return [run["id"] for run in response.json()]

    assert await ids("jobName=burst") == [burst_id]
    assert await ids("jobName=progress-burst") == [burst_id]
    assert await ids("jobName=burst&jobName=progress-burst") == [burst_id]
    assert sorted(await ids("jobName=burst&jobName=echo")) == sorted([burst_id, echo_id])
    assert await ids("jobName=burst&status=completed&limit=1") == [burst_id]
    assert await ids("jobName=nope") == []
    (run,) = (await served.http.get("/runs?jobName=burst")).json()
    assert run["jobName"] == "progress-burst"  # runs still carry the job's name


async def test_runs_subscribe_filter_by_key(served: Served) -> None:
    reader = asyncio.ensure_future(
        sse_events(served.http, "/runs/subscribe?jobName=burst", limit=2)
    )
    await asyncio.sleep(0.2)
    await served.http.post("/trigger", json={"jobName": "echo", "input": {}})
    run_id = (
        await served.http.post("/trigger", json={"jobName": "progress-burst", "input": {"n": 1}})
    ).json()["runId"]
    events = [e for e in await reader if not isinstance(e, str)]
    assert [(e["type"], e["runId"], e["jobName"]) for e in events] == [
        ("run:trigger", run_id, "progress-burst"),
        ("run:leased", run_id, "progress-burst"),
    ]


async def test_scope_hooks_see_job_names_not_keys(tmp_path: Path) -> None:
    durably = create_durably(
        f"sqlite:///{tmp_path / 'keys.db'}", jobs={"burst": burst_job, "echo": echo_job}
    )
    seen: list[tuple[str, ...]] = []

    def scope_runs(context: None, query: RunsFilter) -> RunsFilter:
        seen.append(query.job_name)
        return query

    def scope_subscribe(context: None, query: SubscribeFilter) -> SubscribeFilter:
        seen.append(query.job_name)
        return query

    def anyone(request: Request) -> None:
        return None

    auth = Auth(authenticate=anyone, scope_runs=scope_runs, scope_runs_subscribe=scope_subscribe)
    async with serve(create_app(durably, auth=auth, keepalive=0.3), durably) as served:
        assert (await served.http.get("/runs?jobName=burst&jobName=other")).status_code == 200
        reader = asyncio.ensure_future(
            sse_events(served.http, "/runs/subscribe?jobName=burst", limit=1)
        )
        await asyncio.sleep(0.2)
        await served.http.post("/trigger", json={"jobName": "burst", "input": {"n": 1}})
        await reader
    await durably.close()
    assert seen == [("progress-burst", "other"), ("progress-burst",)]
