"""Run under MicroPython by test_page_client_micropython.py: the page package's pure parts.

Written in the subset MicroPython shares with CPython; raises AssertionError on a failure.
"""

import json
import sys

try:  # noqa: SIM105 - MicroPython has no contextlib
    from typing import Any
except ImportError:  # MicroPython never evaluates annotations
    pass

sys.path.append("/pkg")

from durably_web import errors
from durably_web.client import PageClient, Record
from durably_web.client.dispatch import Dispatcher, unwrap
from durably_web.client.values import event_from_wire, from_wire
from durably_web.json_value import MAX_DEPTH

run = from_wire(
    {
        "id": "r1",
        "jobName": "j",
        "status": "leased",
        "leaseGeneration": 1,
        "progress": {"current": 3},
        "output": {"rowCount": 5},
        "labels": {"a": "b"},
    }
)
assert (run.id, run.job_name, run.progress.current, run.progress.total) == ("r1", "j", 3, None)
assert run.output.rowCount == 5 and run.labels["a"] == "b" and run.disposition is None
assert run.to_dict()["output"] == {"rowCount": 5}
event = event_from_wire({"type": "run:leased", "runId": "r1", "sequence": 4})
assert (event.type, event.run_id, event.job_name, event.sequence) == ("run:start", "r1", None, 4)

error = errors.error_from_wire({"error": "m", "code": "opfs_busy"})
assert isinstance(error, errors.StorageError) and error.code == "opfs_busy"
assert errors.StorageError.code == "storage_error" and error.status_code == 500
assert (
    type(errors.error_from_wire({"code": "validation_error", "error": "x"}))
    is errors.ValidationError
)
assert type(errors.error_from_wire({"error": "x", "code": "not_found"})) is errors.NotFoundError
caught: Any = None
try:
    unwrap('{"ok": false, "error": {"code": "timeout", "error": "late"}}')
except Exception as exc:  # noqa: BLE001 - MicroPython's TimeoutError is asyncio's
    caught = exc
assert "late" in str(caught) and "Timeout" in type(caught).__name__


class Adapter:
    """Answers like web/client/python.mjs."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.events = [
            {"type": "run:trigger", "runId": "r1"},
            {"type": "run:complete", "runId": "r1"},
        ]

    async def call(self, method: str, args: str) -> str:
        self.sent.append((method, json.loads(args)))
        return json.dumps({"ok": True, "result": {"id": "r1", "jobName": "j", "status": "pending"}})

    def on(self, event_type: str) -> str:
        return json.dumps({"ok": True, "result": 1})

    def off(self, token: int) -> None:
        pass

    def subscribe(self, run_id: str) -> int:
        return 1

    async def next(self, subscription: int) -> str:
        if self.events:
            return json.dumps({"ok": True, "result": {"done": False, "value": self.events.pop(0)}})
        return json.dumps({"ok": True, "result": {"done": True}})


async def main() -> None:
    """Drive a client over the fake adapter."""
    statuses: list[Any] = []
    dispatcher = Dispatcher(statuses.append)
    adapter = Adapter()
    client = PageClient(adapter, dispatcher, [{"key": "import_csv", "name": "import-csv"}])
    run = await client.jobs.import_csv.trigger({"rows": 1}, idempotency_key="k")
    assert run.status == "pending"
    assert adapter.sent[-1] == ("trigger", ["import_csv", {"rows": 1}, {"idempotencyKey": "k"}])
    got: list[Any] = []
    client.on("run:progress", got.append)
    dispatcher.receive(
        "event",
        json.dumps(
            {
                "token": 1,
                "event": {
                    "type": "run:progress",
                    "runId": "r1",
                    "progress": {"current": 2, "total": 4},
                },
            }
        ),
    )
    assert got[0].progress.current == 2 and got[0].progress.total == 4
    dispatcher.receive(
        "status",
        json.dumps(
            {
                "status": "failed",
                "attempt": 1,
                "error": {"error": "m", "code": "job_module_failed"},
            }
        ),
    )
    assert statuses[-1].status == "failed" and statuses[-1].error.code == "job_module_failed"
    types: list[str] = []
    async for event in client.subscribe("r1"):
        types.append(event.type)
    assert types == ["run:trigger", "run:complete"], types
    assert getattr(client.jobs, "nope", None) is None
    assert isinstance(Record({}), Record)

    # Values the engine would refuse are refused here, before JSON text could mangle them.
    deep: Any = 1
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    refused = [
        ({"x": float("nan")}, "input for job 'import-csv': x: numbers must be finite, got nan"),
        ([float("-inf")], "input for job 'import-csv': 0: numbers must be finite, got -inf"),
        ({"n": 10**400}, "at most ±1.8e308"),
        (deep, "nested more than 32 levels deep"),
        ({1: "a"}, "object keys must be strings"),
    ]
    sent = len(adapter.sent)
    for value, message in refused:
        caught = None
        try:
            await client.jobs.import_csv.trigger(value)
        except errors.ValidationError as exc:
            caught = exc
        assert caught is not None and message in str(caught), (value, caught)
        caught = None
        try:
            await client.jobs.import_csv.batch_trigger([{"ok": 1}, value])
        except errors.ValidationError as exc:
            caught = exc
        assert caught is not None and "at index 1" in str(caught), (value, caught)
    assert len(adapter.sent) == sent, "a refused value reached the adapter"
    limit: Any = 1
    for _ in range(MAX_DEPTH):
        limit = [limit]
    await client.jobs.import_csv.trigger(limit)  # exactly MAX_DEPTH levels: accepted
    await client.jobs.import_csv.trigger({"n": 2**1000, "s": "é", "r": Record({"a": 1})})
    assert len(adapter.sent) == sent + 2
    assert adapter.sent[-1][1][1] == {"n": 2**1000, "s": "é", "r": {"a": 1}}


print("checked records and errors", sys.implementation.name)
# run_micropython.mjs then awaits main() and prints "OK".
