"""Auth hooks and multi-tenant label scoping: tenant A never sees tenant B's runs."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from durably_web import Run, create_durably
from durably_web.server import Auth, HTTPError, Request, RunsFilter, SubscribeFilter, create_app
from tests.jobs import Recorder, echo_job, steps_job
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


async def collect(http: httpx.AsyncClient, path: str, until: asyncio.Event) -> list[Any]:
    """Read an SSE stream's events until ``until`` is set (then a little longer)."""
    events: list[Any] = []

    async def read() -> None:
        async with http.stream("GET", path, timeout=30) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))

    reader = asyncio.create_task(read())
    await until.wait()
    await asyncio.sleep(0.3)
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    return events


async def test_keys_are_scoped_by_tenant(tenants: Any, recorder: Recorder) -> None:
    """Issue 14, item 1: B used A's keys and got A's run ids; its own work never ran."""
    served, a, b = tenants
    done = asyncio.Event()
    a_sees = asyncio.create_task(collect(a, "/runs/subscribe", done))
    b_sees = asyncio.create_task(collect(b, "/runs/subscribe", done))
    await asyncio.sleep(0.2)

    async def trigger(client: httpx.AsyncClient, tenant: str, **body: Any) -> tuple[str, str]:
        body = {"jobName": "echo", "input": {"who": tenant}, "labels": {"tenant": tenant}, **body}
        answer = (await client.post("/trigger", json=body)).json()
        return answer["runId"], answer["disposition"]

    # The worker's one slot is held, so runs with a concurrency key stay pending.
    holder = await trigger(a, "a", jobName="steps", input={"n": 1, "gate_at": 0})
    await asyncio.wait_for(recorder.entered["default"].wait(), 10)
    a_keyed, created = await trigger(a, "a", idempotencyKey="nightly")
    b_keyed, b_created = await trigger(b, "b", idempotencyKey="nightly")
    assert (created, b_created) == ("created", "created") and b_keyed != a_keyed
    assert await trigger(b, "b", idempotencyKey="nightly") == (b_keyed, "idempotent")
    a_pending, _ = await trigger(a, "a", concurrencyKey="sync")
    b_pending, b_disposition = await trigger(b, "b", concurrencyKey="sync", coalesce="skip")
    assert b_disposition == "created" and b_pending != a_pending
    assert await trigger(b, "b", concurrencyKey="sync", coalesce="skip") == (
        b_pending,
        "coalesced",
    )
    batch = await b.post(
        "/batch-trigger",
        json={
            "jobName": "echo",
            "items": [
                {"input": {}, "labels": {"tenant": "b"}, "idempotencyKey": "nightly"},
                {
                    "input": {},
                    "labels": {"tenant": "b"},
                    "concurrencyKey": "sync",
                    "coalesce": "skip",
                },
                {"input": {}, "labels": {"tenant": "b"}, "idempotencyKey": "weekly"},
            ],
        },
    )
    assert [(r["runId"], r["disposition"]) for r in batch.json()][:2] == [
        (b_keyed, "idempotent"),
        (b_pending, "coalesced"),
    ]
    a_weekly, a_disposition = await trigger(a, "a", idempotencyKey="weekly")
    assert a_disposition == "created" and a_weekly != batch.json()[2]["runId"]

    recorder.gates["default"].set()  # every run, A's and B's, now runs to completion
    for run_id in (holder[0], a_keyed, b_keyed, a_pending, b_pending, a_weekly):
        await served.durably.wait_for_run(run_id, timeout=10)
    done.set()
    for seen, tenant in ((await a_sees, "a"), (await b_sees, "b")):
        assert all(event["labels"] == {"tenant": tenant} for event in seen), seen
        coalesced = [event for event in seen if event["type"] == "run:coalesced"]
        assert len(coalesced) == (2 if tenant == "b" else 0), coalesced
        for event in coalesced:
            assert event["skippedLabels"] == {"tenant": tenant}
            assert event["skippedInput"] in ({}, {"who": tenant})
    stored = {run.id: run.idempotency_key for run in await served.durably.get_runs()}
    assert stored[a_keyed] != stored[b_keyed] and stored[a_keyed].endswith(":nightly")


async def test_key_scope_hook_and_its_misconfiguration(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="key_scope"):
        Auth(authenticate=tenant_of, on_run_access=check_access)  # keys would leak run ids
    durably = create_durably(f"sqlite:///{tmp_path / 'hook.db'}", jobs={"echo": echo_job})
    auth = Auth(
        authenticate=tenant_of,
        on_run_access=check_access,
        key_scope=lambda tenant: tenant.split("-")[0],  # users "acme-1" and "acme-2": one org
    )
    async with serve(create_app(durably, auth=auth), durably) as served:

        async def trigger(user: str) -> Any:
            body = {"jobName": "echo", "input": {}, "idempotencyKey": "k"}
            return (
                await served.http.post("/trigger", json=body, headers={"x-tenant": user})
            ).json()

        first = await trigger("acme-1")
        assert (await trigger("acme-2"))["runId"] == first["runId"]
        assert (await trigger("other-1"))["runId"] != first["runId"]
    await durably.close()


async def test_a_coalesced_event_never_carries_another_scopes_trigger(tmp_path: Path) -> None:
    """Keys shared on purpose (key_scope None): B may coalesce onto A's run, but A's stream
    must not receive B's input and labels in ``run:coalesced``."""
    durably = create_durably(f"sqlite:///{tmp_path / 'shared.db'}", jobs={"echo": echo_job})
    auth = Auth(
        authenticate=tenant_of,
        scope_runs_subscribe=scope_subscribe,
        key_scope=lambda tenant: None,
    )
    async with (
        serve(create_app(durably, auth=auth, manage_engine=False), durably) as served,
        httpx.AsyncClient(base_url=served.url, headers={"x-tenant": "a"}) as a,
        httpx.AsyncClient(base_url=served.url, headers={"x-tenant": "b"}) as b,
    ):
        done = asyncio.Event()
        a_sees = asyncio.create_task(collect(a, "/runs/subscribe", done))
        await asyncio.sleep(0.2)
        body = {"jobName": "echo", "concurrencyKey": "k", "coalesce": "skip"}
        mine = await a.post("/trigger", json={**body, "input": {"x": 1}, "labels": {"tenant": "a"}})
        again = await a.post(
            "/trigger", json={**body, "input": {"x": 2}, "labels": {"tenant": "a"}}
        )
        theirs = await b.post(
            "/trigger", json={**body, "input": {"secret": 1}, "labels": {"tenant": "b"}}
        )
        assert again.json()["disposition"] == theirs.json()["disposition"] == "coalesced"
        done.set()
        seen = await a_sees
    await durably.close()
    coalesced = [event for event in seen if event["type"] == "run:coalesced"]
    assert [event["skippedInput"] for event in coalesced] == [{"x": 2}]
    assert all(event["runId"] == mine.json()["runId"] for event in seen)
