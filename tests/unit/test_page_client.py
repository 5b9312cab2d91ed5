"""The page-side client's pure parts (durably_web.client) on CPython.

Records must expose the same attribute names as the engine's own Run / Step / Log / events,
errors must come back as the engine's classes, and the client must route the JS adapter's
replies and pushes. The JS adapter is replaced by a fake that answers like
``web/client/python.mjs`` (JSON text in, JSON text out); the real one is exercised in a
browser by ``playwright_tests/demo/test_client_checks.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from typing import Any

import pytest

from durably_web import Durably, errors
from durably_web.client import PageClient, Record
from durably_web.client.dispatch import Dispatcher, unwrap
from durably_web.client.values import event_from_wire, from_wire
from durably_web.events import Event
from tests.conftest import MakeDurably
from tests.jobs import steps_job


async def test_records_have_the_engine_attribute_names(make_durably: MakeDurably) -> None:
    durably: Durably = await make_durably({"steps": steps_job}, preserve_steps=True)
    seen: list[Event] = []
    durably.on("*", seen.append)
    run = await durably.jobs.steps.trigger({"n": 2})
    await durably.process_until_idle()
    stored = await durably.get_run(run.id)
    assert stored is not None
    records: list[Any] = [
        stored,
        *await durably.get_steps(run.id),
        *await durably.get_logs(run.id),
    ]
    for engine_record in records:
        record = from_wire(engine_record.to_wire())
        for field in dataclasses.fields(engine_record):
            value = getattr(engine_record, field.name)
            if isinstance(value, (str, int, type(None))) and not field.name.endswith("_at"):
                assert getattr(record, field.name) == value, field.name
    assert seen
    for event in seen:
        record = event_from_wire(event.to_wire())
        assert record.type == event.type  # run:leased on the wire is run:start again
        assert (record.run_id, record.job_name, record.sequence) == (
            event.run_id,
            event.job_name,
            event.sequence,
        )
        if event.type == "run:progress":
            assert record.progress.current == event.progress.current  # type: ignore[attr-defined]


def test_user_data_keeps_its_keys_and_reads_both_ways() -> None:
    run = from_wire({"id": "r", "jobName": "j", "output": {"rowCount": 3, "rows": [{"a": 1}]}})
    assert run.job_name == "j"
    assert run.output.rowCount == 3 and run.output["rowCount"] == 3
    assert run.output.rows[0].a == 1
    assert run.to_dict() == {
        "id": "r",
        "job_name": "j",
        "output": {"rowCount": 3, "rows": [{"a": 1}]},
    }
    assert run == {"id": "r", "job_name": "j", "output": {"rowCount": 3, "rows": [{"a": 1}]}}
    clash = from_wire({"output": {"items": 5}}).output
    assert clash["items"] == 5 and callable(clash.items)  # a method name: read it with []
    with pytest.raises(AttributeError, match="no field 'status'"):
        _ = run.status
    progress = from_wire({"progress": {"current": 2}}).progress
    assert (progress.current, progress.total, progress.message) == (2, None, None)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("validation_error", errors.ValidationError),
        ("not_found", errors.NotFoundError),
        ("run_failed", errors.RunFailed),
        ("conflict", errors.ConflictError),
        ("opfs_unavailable", errors.StorageError),
        ("job_module_failed", errors.DurablyError),
        ("internal_error", errors.DurablyError),
    ],
)
def test_errors_come_back_as_the_engine_classes(code: str, cls: type[errors.DurablyError]) -> None:
    """The page client decodes with errors.error_from_wire, the one decoder."""
    reply = json.dumps({"ok": False, "error": {"error": "m", "code": code}})
    with pytest.raises(cls) as caught:
        unwrap(reply)
    assert type(caught.value) is cls
    assert (caught.value.code, caught.value.message) == (code, "m")
    assert cls.code == cls.__dict__.get("code", cls.code)  # the class itself is untouched


def test_unwrap_raises_the_error_or_returns_the_result() -> None:
    assert unwrap('{"ok": true, "result": {"a": 1}}') == {"a": 1}
    with pytest.raises(errors.NotFoundError, match="gone"):
        unwrap('{"ok": false, "error": {"error": "gone", "code": "not_found"}}')
    with pytest.raises(TimeoutError, match="late"):
        unwrap('{"ok": false, "error": {"error": "late", "code": "timeout"}}')


class FakeAdapter:
    """Answers like web/client/python.mjs: JSON text, promises as coroutines."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.calls: list[tuple[str, Any]] = []
        self.listening: dict[int, str] = {}
        self.events: list[dict[str, Any]] = []

    async def call(self, method: str, args_json: str) -> str:
        self.calls.append((method, json.loads(args_json)))
        if method == "getRun":
            return json.dumps({"ok": True, "result": None})
        if method == "cancel":
            error = {"error": "already done", "code": "conflict"}
            return json.dumps({"ok": False, "error": error})
        result = {
            "id": "r1",
            "jobName": "import-csv",
            "status": "pending",
            "disposition": "created",
        }
        return json.dumps({"ok": True, "result": [result] if method == "batchTrigger" else result})

    def on(self, event_type: str) -> str:
        token = len(self.listening) + 1
        self.listening[token] = event_type
        return json.dumps({"ok": True, "result": token})

    def off(self, token: int) -> None:
        del self.listening[token]

    def push(self, event: dict[str, Any]) -> None:
        wanted = {event["type"], "*", "run:start" if event["type"] == "run:leased" else ""}
        for token, event_type in list(self.listening.items()):
            if event_type in wanted:
                self.dispatcher.receive("event", json.dumps({"token": token, "event": event}))

    def subscribe(self, run_id: str) -> int:
        self.events = [
            {"type": "run:leased", "runId": run_id},
            {"type": "run:complete", "runId": run_id},
        ]
        return 7

    async def next(self, subscription: int) -> str:
        if not self.events:
            return json.dumps({"ok": True, "result": {"done": True, "value": None}})
        return json.dumps({"ok": True, "result": {"done": False, "value": self.events.pop(0)}})

    async def triggerAndWait(
        self, job: str, input_json: str, options_json: str, timeout_ms: int, token: int
    ) -> str:
        self.calls.append(
            ("triggerAndWait", [job, json.loads(input_json), json.loads(options_json), timeout_ms])
        )
        for current in (1, 2):
            self.dispatcher.receive(
                "wait",
                json.dumps(
                    {"token": token, "kind": "progress", "value": {"current": current, "total": 2}}
                ),
            )
        self.dispatcher.receive(
            "wait",
            json.dumps(
                {
                    "token": token,
                    "kind": "log",
                    "value": {"type": "log:write", "runId": "r1", "message": "hi"},
                }
            ),
        )
        run = {"id": "r1", "status": "completed", "output": {"rows": 2}, "disposition": "created"}
        return json.dumps({"ok": True, "result": run})


def make_client() -> tuple[PageClient, FakeAdapter, list[Any]]:
    statuses: list[Any] = []
    dispatcher = Dispatcher(statuses.append)
    adapter = FakeAdapter(dispatcher)
    client = PageClient(adapter, dispatcher, [{"key": "import_csv", "name": "import-csv"}])
    return client, adapter, statuses


async def test_client_sends_wire_names_and_converts_answers() -> None:
    client, adapter, _ = make_client()
    run = await client.jobs.import_csv.trigger({"rows": 1}, idempotency_key="k")
    assert (run.id, run.job_name, run.disposition) == ("r1", "import-csv", "created")
    assert adapter.calls[-1] == ("trigger", ["import_csv", {"rows": 1}, {"idempotencyKey": "k"}])
    await client.jobs["import_csv"].batch_trigger(
        [{"rows": 1}, {"input": {"rows": 2}, "options": {"labels": {"a": "b"}}}]
    )
    assert adapter.calls[-1][1][1] == [
        {"input": {"rows": 1}},
        {"input": {"rows": 2}, "options": {"labels": {"a": "b"}}},
    ]
    await client.get_runs(status="completed", job_name="import-csv")
    assert adapter.calls[-1] == ("getRuns", [{"status": "completed", "jobName": "import-csv"}])
    assert await client.get_run("nope") is None
    with pytest.raises(errors.ConflictError, match="already done"):
        await client.cancel("r1")
    with pytest.raises(AttributeError, match="the job module defines: import_csv"):
        _ = client.jobs.nope


async def test_handlers_get_records_and_their_failures_stay_on_the_page(
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, adapter, statuses = make_client()
    client._dispatcher.receive(
        "status", json.dumps({"status": "ready", "role": "follower", "attempt": 1})
    )
    assert statuses[-1].status == "ready" and client.status == "ready"
    assert statuses[-1].role == "follower" and client.role == "follower"
    got: list[Any] = []
    awaited: list[Any] = []

    async def slow(event: Any) -> None:
        await asyncio.sleep(0)
        awaited.append(event.run_id)

    def broken(event: Any) -> None:
        raise RuntimeError("handler bug")

    unsubscribe = client.on("run:start", got.append)
    client.on("*", slow)
    client.on("run:start", broken)
    adapter.push({"type": "run:leased", "runId": "r1", "jobName": "import-csv"})
    await asyncio.sleep(0.01)
    assert [e.type for e in got] == ["run:start"] and got[0].run_id == "r1"
    assert awaited == ["r1"]
    assert "handler bug" in capsys.readouterr().out
    unsubscribe()
    adapter.push({"type": "run:leased", "runId": "r2"})
    assert len(got) == 1


async def test_subscribe_and_trigger_and_wait() -> None:
    client, adapter, _ = make_client()
    types = [event.type async for event in client.subscribe("r1")]
    assert types == ["run:start", "run:complete"]
    progress: list[int] = []
    logs: list[str] = []
    run = await client.jobs.import_csv.trigger_and_wait(
        {"rows": 2},
        timeout=1.5,
        on_progress=lambda p: progress.append(p.current),
        on_log=lambda e: logs.append(e.message),
    )
    assert (run.output.rows, run.disposition) == (2, "created")
    assert progress == [1, 2] and logs == ["hi"]
    assert adapter.calls[-1] == ("triggerAndWait", ["import_csv", {"rows": 2}, {}, 1500])
    assert client._dispatcher.waiters == {}


def test_record_repr_and_plain_values() -> None:
    record = Record({"a": 1})
    assert repr(record) == "Record(a=1)"
    assert list(record) == ["a"] and len(record) == 1 and "a" in record
    assert record.get("b", 2) == 2


async def test_client_refuses_values_json_text_would_mangle() -> None:
    """Checked before sending: ``json.dumps`` wrote NaN (which JS cannot parse) and 10**400
    became Infinity, then ``null``, in the worker; a lone surrogate would be refused there."""
    client, adapter, _ = make_client()
    deep: Any = 1
    for _ in range(300):
        deep = [deep]
    handle = client.jobs.import_csv
    for value, message in (
        ({"x": float("nan")}, "input for job 'import-csv': x: numbers must be finite, got nan"),
        ({"x": 10**400}, "x: numbers must be finite doubles"),
        ({"x": "\udcff"}, "x: strings must be valid Unicode"),
        (deep, "nested more than 32 levels deep"),
    ):
        with pytest.raises(errors.ValidationError) as caught:
            await handle.trigger(value)
        assert str(caught.value).startswith("input for job 'import-csv': ")
        assert message in str(caught.value)
        with pytest.raises(errors.ValidationError, match="at index 1"):
            await handle.batch_trigger([{"rows": 1}, {"input": value}])
        with pytest.raises(errors.ValidationError, match=re.escape(message)):
            await handle.trigger_and_wait(value)
    with pytest.raises(errors.ValidationError, match=r"^getRuns: 0\.labels\.a: strings must be"):
        await client.get_runs(labels={"a": "\ud800"})
    assert adapter.calls == []
