"""Where requests may come from: Host allow-list, same-origin writes, JSON bodies (issue 14, 2).

A page the user visits could ``POST`` a form to a server on loopback (``text/plain`` needs no
CORS preflight), and DNS rebinding let a page on another name read ``/runs``. Each refusal is
``{error, code}`` and changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from durably_web import ValidationError, create_durably
from durably_web.server import create_app
from tests.jobs import echo_job, steps_job
from tests.server.conftest import Served, serve

TRIGGER = {"jobName": "echo", "input": {"x": 1}}


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Served]:
    durably = create_durably(
        f"sqlite:///{tmp_path / 'guard.db'}", jobs={"echo": echo_job, "steps": steps_job}
    )
    app = create_app(
        durably,
        allowed_hosts=["example.com", ".corp.test"],
        allowed_origins=["https://app.example.com"],
        manage_engine=False,  # runs stay pending: a refused request must leave them as they are
    )
    async with serve(app, durably) as running:
        yield running
    await durably.close()


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    payload = response.json()
    assert set(payload) == {"error", "code"} and payload["code"] == code, payload


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "127.0.0.1:8000",
        "10.1.2.3",
        "[::1]:8000",
        "localhost:8000",
        "app.localhost",
        "example.com",
        "EXAMPLE.com.:443",
        "corp.test",
        "api.corp.test",
    ],
)
async def test_allowed_hosts_are_answered(guarded: Served, host: str) -> None:
    assert (await guarded.http.get("/runs", headers={"host": host})).status_code == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "example.com.evil.test", "localhost.evil.test", "corp.test.x", "a b"]
)
async def test_other_hosts_are_400_dns_rebinding_reads_nothing(guarded: Served, host: str) -> None:
    await guarded.durably.jobs.echo.trigger({"secret": 1})
    response = await guarded.http.get("/runs", headers={"host": host})
    refused(response, 400, "invalid_host")
    assert "secret" not in response.text and "allowed_hosts" in response.text


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x", "json"],
)
async def test_writes_need_a_json_body(guarded: Served, content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await guarded.http.post(
        "/trigger", content=b'{"jobName": "echo", "input": {}}', headers=headers
    )
    refused(response, 415, "unsupported_media_type")
    assert await guarded.durably.get_runs() == []


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/x+json"]
)
async def test_json_bodies_are_accepted(guarded: Served, content_type: str) -> None:
    response = await guarded.http.post(
        "/trigger",
        content=b'{"jobName": "echo", "input": {}}',
        headers={"content-type": content_type},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"origin": "http://127.0.0.1:1"},  # another port is another origin
        {"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
    ],
)
async def test_cross_origin_writes_are_403_and_change_nothing(
    guarded: Served, headers: dict[str, str]
) -> None:
    pending = await guarded.durably.jobs.steps.trigger({"n": 1})
    refused(await guarded.http.post("/trigger", json=TRIGGER, headers=headers), 403, "cross_origin")
    for method, path in (("POST", "/cancel"), ("POST", "/retrigger"), ("DELETE", "/run")):
        response = await guarded.http.request(
            method, path, params={"runId": pending.id}, headers=headers
        )
        refused(response, 403, "cross_origin")
    assert [run.id for run in await guarded.durably.get_runs()] == [pending.id]
    assert (await guarded.durably.get_run(pending.id)).status == "pending"  # type: ignore[union-attr]
    # Reads are not writes: the browser keeps their answers from the other origin (no CORS).
    assert (await guarded.http.get("/runs", headers=headers)).status_code == 200


async def test_same_origin_and_allowed_origins_may_write(guarded: Served) -> None:
    own = guarded.url  # http://127.0.0.1:PORT, the Host the client sends
    for headers in (
        {"origin": own},
        {"origin": own, "sec-fetch-site": "same-origin"},
        {"origin": "https://proxy.example", "sec-fetch-site": "same-origin"},  # Host rewritten
        {"origin": "https://app.example.com"},
        {"origin": "https://APP.example.com/"},
        {"sec-fetch-site": "none"},
        {},  # not a browser: curl, the Python client
    ):
        response = await guarded.http.post("/trigger", json=TRIGGER, headers=headers)
        assert response.status_code == 200, (headers, response.text)
    pending = await guarded.durably.jobs.steps.trigger({"n": 1})
    cancelled = await guarded.http.post(
        "/cancel", params={"runId": pending.id}, headers={"origin": own}
    )
    assert cancelled.status_code == 200, cancelled.text  # no body, so no content type needed


async def test_preflight_gets_no_cors_grant(guarded: Served) -> None:
    response = await guarded.http.options(
        "/trigger",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert response.status_code == 405
    assert not any(name.startswith("access-control-") for name in response.headers)


async def test_wildcards_allow_everything() -> None:
    durably = create_durably(jobs={"echo": echo_job})
    app = create_app(durably, allowed_hosts=["*"], allowed_origins=["*"], manage_engine=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://anything.test") as http:
        headers = {"host": "evil.example", "origin": "https://evil.example"}
        assert (await http.post("/trigger", json=TRIGGER, headers=headers)).status_code == 200
    await durably.close()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("allowed_hosts", ["http://example.com"]),
        ("allowed_hosts", ["example.com/x"]),
        ("allowed_hosts", [""]),
        ("allowed_origins", ["example.com"]),
        ("allowed_origins", ["https://example.com/path"]),
        ("allowed_origins", ["ftp://example.com"]),
    ],
)
def test_malformed_options_are_refused(option: str, value: Any) -> None:
    durably = create_durably(jobs={"echo": echo_job})
    with pytest.raises(ValidationError, match=option):
        create_app(durably, **{option: value})
