"""The app mounts in Starlette (as docs/server.md shows) and honours root_path."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from durably_web import create_durably
from durably_web.server import create_app
from tests.jobs import echo_job


async def test_mounted_under_a_prefix() -> None:
    durably = create_durably(jobs={"echo": echo_job})
    await durably.init()
    app = Starlette(routes=[Mount("/api/durably", app=create_app(durably, manage_engine=False))])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        assert (await http.get("/api/durably/jobs")).json() == [{"key": "echo", "name": "echo"}]
        trigger = await http.post(
            "/api/durably/trigger", json={"jobName": "echo", "input": {"a": 1}}
        )
        run_id = trigger.json()["runId"]
        done = await durably.wait_for_run(run_id, timeout=10)
        run = (await http.get("/api/durably/run", params={"runId": run_id})).json()
        assert run["output"] == done.output == {"a": 1}
        assert (await http.get("/api/durably/nope")).status_code == 404
    await durably.close()
