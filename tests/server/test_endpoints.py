"""Every endpoint, every error: a real uvicorn server on 127.0.0.1 driven by httpx."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from durably_web import create_durably
from durably_web.server import create_app
from tests.databases import lock_held_by_process
from tests.jobs import echo_job
from tests.server.conftest import Served, serve


async def trigger(served: Served, **body: object) -> dict[str, object]:
    response = await served.http.post("/trigger", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_trigger_and_run_lifecycle(served: Served) -> None:
    result = await trigger(served, jobName="steps", input={"n": 2}, labels={"org": "a"})
    assert result["disposition"] == "created"
    run_id = str(result["runId"])
    await served.durably.wait_for_run(run_id, timeout=10)
    run = (await served.http.get("/run", params={"runId": run_id})).json()
    assert run["id"] == run_id
    assert (run["status"], run["output"], run["isTerminal"], run["isActive"]) == (
        "completed",
        {"total": 1},
        True,
        False,
    )
    assert "leaseOwner" not in run and run["labels"] == {"org": "a"}
    steps = (await served.http.get("/steps", params={"runId": run_id})).json()
    assert [(s["name"], s["index"], s["status"]) for s in steps] == [
        ("step-0", 0, "completed"),
        ("step-1", 1, "completed"),
    ]
    logs = (await served.http.get("/logs", params={"runId": run_id})).json()
    assert [entry["message"] for entry in logs] == ["finished"]


async def test_trigger_dispositions_and_key_alias(served: Served) -> None:
    first = await trigger(served, jobName="steps", input={"n": 1, "gate_at": 0}, idempotencyKey="k")
    again = await trigger(served, jobName="steps", input={"n": 1}, idempotencyKey="k")
    assert again == {"runId": first["runId"], "disposition": "idempotent"}
    by_name = await trigger(served, jobName="progress-burst", input={"n": 1})
    by_key = await trigger(served, jobName="burst", input={"n": 1})
    assert by_name["disposition"] == by_key["disposition"] == "created"
    pending = await served.http.post(
        "/trigger", json={"jobName": "echo", "input": {}, "concurrencyKey": "c"}
    )
    assert pending.status_code == 200
    conflict = await served.http.post(
        "/trigger", json={"jobName": "echo", "input": {}, "concurrencyKey": "c"}
    )
    assert conflict.status_code == 409 and conflict.json()["code"] == "conflict"
    coalesced = await trigger(served, jobName="echo", input={}, concurrencyKey="c", coalesce="skip")
    assert coalesced["disposition"] == "coalesced"


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        ("not json", 400, "validation_error", "not valid JSON"),
        ("[1, 2]", 400, "validation_error", "must be a JSON object"),
        ("{}", 400, "validation_error", "jobName is required"),
        ('{"jobName": 5}', 400, "validation_error", "job name must be a string, got 5"),
        ('{"jobName": "nope"}', 404, "not_found", "Job not found: nope"),
        (
            '{"jobName": "steps", "input": {"n": "x"}}',
            400,
            "validation_error",
            "n: Input should be",
        ),
        (
            '{"jobName": "steps", "input": {}, "labels": {"a b": "c"}}',
            400,
            "validation_error",
            "label key",
        ),
        ('{"jobName": "steps", "input": {}, "labels": [1]}', 400, "validation_error", "labels"),
        (
            '{"jobName": "steps", "input": {}, "coalesce": "skip"}',
            400,
            "validation_error",
            "coalesce requires",
        ),
        (
            '{"jobName": "steps", "input": {}, "idempotencyKey": 3}',
            400,
            "validation_error",
            "idempotency_key",
        ),
    ],
)
async def test_trigger_rejects_bad_bodies_and_stores_nothing(
    served: Served, body: str, status: int, code: str, message: str
) -> None:
    response = await served.http.post(
        "/trigger", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["code"] == code and message in payload["error"]
    assert await served.durably.get_runs() == []


async def test_oversized_body_is_413(served: Served) -> None:
    big = '{"jobName": "echo", "input": {"blob": "' + "x" * (1024 * 1024) + '"}}'
    response = await served.http.post(
        "/trigger", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    assert await served.durably.get_runs() == []


async def test_list_runs_with_filters(served: Served) -> None:
    # a holds the only worker slot (waiting in its first step), so b stays pending
    a = await trigger(served, jobName="steps", input={"n": 1, "gate_at": 0}, labels={"org": "a"})
    b = await trigger(served, jobName="echo", input={"i": 1}, labels={"org": "b"})
    await served.durably.cancel(str(a["runId"]))
    everything = (await served.http.get("/runs")).json()
    assert [r["id"] for r in everything] == [b["runId"], a["runId"]]
    by_status = (await served.http.get("/runs", params={"status": "cancelled"})).json()
    assert [r["id"] for r in by_status] == [a["runId"]]
    several = (
        await served.http.get(
            "/runs?status=cancelled&status=pending&status=leased&status=completed"
        )
    ).json()
    assert len(several) == 2
    by_label = (await served.http.get("/runs", params={"label.org": "b"})).json()
    assert [r["id"] for r in by_label] == [b["runId"]]
    by_job = (await served.http.get("/runs", params={"jobName": "echo"})).json()
    assert [r["id"] for r in by_job] == [b["runId"]]
    paged = (await served.http.get("/runs", params={"limit": "1", "offset": "1"})).json()
    assert [r["id"] for r in paged] == [a["runId"]]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=bogus", "Invalid status: bogus"),
        ("status=", "Invalid status: empty value"),
        ("limit=-1", "Invalid limit"),
        ("limit=abc", "Invalid limit"),
        ("limit=99999999999999999999", "Invalid limit"),
        ("offset=1.5", "Invalid offset"),
        ("label.a%20b=c", "invalid label key"),
    ],
)
async def test_list_runs_rejects_bad_filters(served: Served, query: str, message: str) -> None:
    response = await served.http.get(f"/runs?{query}")
    assert response.status_code == 400 and message in response.json()["error"]


async def test_run_actions(served: Served) -> None:
    run_id = str((await trigger(served, jobName="steps", input={"n": 3, "gate_at": 1}))["runId"])
    assert (await served.http.post("/cancel", params={"runId": run_id})).json() == {"success": True}
    again = await served.http.post("/cancel", params={"runId": run_id})
    assert again.status_code == 409 and "already cancelled" in again.json()["error"]
    retried = (await served.http.post("/retry", params={"runId": run_id})).json()
    assert retried == {"success": True, "runId": run_id}
    await served.durably.cancel(run_id)
    retriggered = (await served.http.post("/retrigger", params={"runId": run_id})).json()
    assert retriggered["success"] is True and retriggered["runId"] != run_id
    pending = await served.http.delete("/run", params={"runId": retriggered["runId"]})
    assert pending.status_code == 409
    assert pending.json()["error"].startswith(
        ("Cannot delete pending run", "Cannot delete leased run")
    )
    assert (await served.http.delete("/run", params={"runId": run_id})).json() == {"success": True}
    gone = await served.http.get("/run", params={"runId": run_id})
    # upstream's words: its handler tests read them
    assert gone.status_code == 404 and gone.json() == {
        "error": "Run not found",
        "code": "not_found",
    }


@pytest.mark.parametrize("path", ["/run", "/steps", "/logs", "/subscribe"])
async def test_run_id_required_and_known(served: Served, path: str) -> None:
    missing = await served.http.get(path)
    assert missing.status_code == 400
    assert missing.json() == {
        "error": "runId query parameter is required",
        "code": "validation_error",
    }
    unknown = await served.http.get(path, params={"runId": "nope"})
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"


async def test_unknown_paths_and_wrong_methods_are_json(served: Served) -> None:
    missing = await served.http.get("/nope")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    wrong = await served.http.get("/trigger")
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed" and "use POST" in wrong.json()["error"]
    assert "allow" in wrong.headers
    put = await served.http.put("/run", params={"runId": "x"})
    assert put.status_code == 405


async def test_jobs_endpoint(served: Served) -> None:
    jobs = (await served.http.get("/jobs")).json()
    assert {"key": "burst", "name": "progress-burst"} in jobs


async def test_http_answers_while_another_process_holds_the_sqlite_lock(tmp_path: Path) -> None:
    """A trigger waiting for the write lock waits off the loop: other requests answer meanwhile
    (with SQLite's own busy handler the whole server froze until the lock was released)."""
    db = tmp_path / "locked.db"
    durably = create_durably(f"sqlite:///{db}", jobs={"echo": echo_job})
    app = create_app(durably)
    async with serve(app, durably) as served:
        order: list[str] = []

        async def post() -> None:
            response = await served.http.post("/trigger", json={"jobName": "echo", "input": {}})
            assert response.status_code == 200, response.text
            order.append("trigger answered")

        with lock_held_by_process(db, 1.5):
            posting = asyncio.create_task(post())
            await asyncio.sleep(0.2)  # the trigger reaches the engine and meets the lock
            listed = await served.http.get("/runs")
            assert (listed.status_code, listed.json()) == (200, [])
            order.append("runs answered")
            await asyncio.wait_for(posting, 10)
        assert order == ["runs answered", "trigger answered"]
    await durably.close()
