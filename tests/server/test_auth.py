"""Auth hooks and multi-tenant label scoping: tenant A never sees tenant B's runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from durably_web import Run, create_durably
from durably_web.server import Auth, HTTPError, Request, RunsFilter, SubscribeFilter, create_app
from tests.jobs import echo_job, steps_job
from tests.server.conftest import Served, serve, sse_events


def tenant_of(request: Request) -> str:
    tenant = request.headers.get("x-tenant")
    if not tenant:
        raise HTTPError(401, "missing x-tenant header")
    return tenant


async def check_trigger(tenant: str, body: Any) -> None:
    labels = body.get("labels") or {}
    if labels.get("tenant") != tenant:
        raise HTTPError(403, "runs must be labelled with your tenant")


def check_access(tenant: str, run: Run, operation: str) -> None:
    if run.labels.get("tenant") != tenant:
        raise HTTPError(404, f"Run not found: {run.id}")  # do not reveal other tenants' runs


def scope(tenant: str, query: RunsFilter) -> RunsFilter:
    return query.with_labels(tenant=tenant)


def scope_subscribe(tenant: str, query: SubscribeFilter) -> SubscribeFilter:
    return query.with_labels(tenant=tenant)


@pytest.fixture
async def tenants(
    tmp_path: Path,
) -> AsyncIterator[tuple[Served, httpx.AsyncClient, httpx.AsyncClient]]:
    durably = create_durably(
        f"sqlite:///{tmp_path / 'auth.db'}", jobs={"echo": echo_job, "steps": steps_job}
    )
    auth = Auth(
        authenticate=tenant_of,
        on_trigger=check_trigger,
        on_run_access=check_access,
        scope_runs=scope,
        scope_runs_subscribe=scope_subscribe,
    )
    async with (
        serve(create_app(durably, auth=auth, keepalive=0.3), durably) as served,
        httpx.AsyncClient(base_url=served.url, headers={"x-tenant": "a"}) as a,
        httpx.AsyncClient(base_url=served.url, headers={"x-tenant": "b"}) as b,
    ):
        yield served, a, b
    await durably.close()


async def test_authenticate_rejects_before_anything(tenants: Any) -> None:
    served, _, _ = tenants
    for method, path in (("GET", "/runs"), ("POST", "/trigger"), ("GET", "/nope")):
        response = await served.http.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.json() == {"error": "missing x-tenant header", "code": "unauthorized"}


async def test_trigger_hook_enforces_labels(tenants: Any) -> None:
    served, a, _ = tenants
    refused = await a.post(
        "/trigger", json={"jobName": "echo", "input": {}, "labels": {"tenant": "b"}}
    )
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert await served.durably.get_runs() == []
    accepted = await a.post(
        "/trigger", json={"jobName": "echo", "input": {}, "labels": {"tenant": "a"}}
    )
    assert accepted.status_code == 200


async def test_tenant_never_sees_another_tenants_runs(tenants: Any) -> None:
    served, a, b = tenants
    run_a = (
        await a.post("/trigger", json={"jobName": "echo", "input": {}, "labels": {"tenant": "a"}})
    ).json()["runId"]
    run_b = (
        await b.post("/trigger", json={"jobName": "echo", "input": {}, "labels": {"tenant": "b"}})
    ).json()["runId"]
    await served.durably.wait_for_run(run_a, timeout=10)
    await served.durably.wait_for_run(run_b, timeout=10)
    assert [r["id"] for r in (await a.get("/runs")).json()] == [run_a]
    assert [r["id"] for r in (await b.get("/runs")).json()] == [run_b]
    sneaky = (await a.get("/runs", params={"label.tenant": "b"})).json()
    assert [r["id"] for r in sneaky] == [run_a]  # the scope overrides the caller's label filter
    for method, path in (
        ("GET", "/run"),
        ("GET", "/steps"),
        ("GET", "/logs"),
        ("GET", "/subscribe"),
        ("POST", "/cancel"),
        ("POST", "/retrigger"),
        ("POST", "/retry"),
        ("DELETE", "/run"),
    ):
        response = await a.request(method, path, params={"runId": run_b})
        assert response.status_code == 404, (method, path, response.text)
    assert (await served.durably.get_run(run_b)) is not None  # untouched


async def test_runs_subscribe_is_scoped(tenants: Any) -> None:
    _, a, b = tenants
    reader = asyncio.create_task(sse_events(a, "/runs/subscribe", limit=1))
    await asyncio.sleep(0.2)
    await b.post("/trigger", json={"jobName": "echo", "input": {}, "labels": {"tenant": "b"}})
    mine = (
        await a.post("/trigger", json={"jobName": "echo", "input": {}, "labels": {"tenant": "a"}})
    ).json()["runId"]
    [event] = [e for e in await reader if not isinstance(e, str)]
    assert event["runId"] == mine and event["labels"] == {"tenant": "a"}
