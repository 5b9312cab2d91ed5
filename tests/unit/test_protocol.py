"""The operation table (``durably_web.protocol``): one declaration per remote operation.

The routers and the clients read it; these tests pin what they rely on: names are unique,
HTTP arguments go where upstream puts them and come back the same, and the errors for a
missing or malformed argument are upstream's words.
"""

from __future__ import annotations

from typing import Any

import pytest

from durably_web.errors import ValidationError
from durably_web.protocol.http import args_from_request, request_for
from durably_web.protocol.operations import BY_NAME, OPERATIONS, args_from_message
from durably_web.protocol.wire import trigger_from_wire, trigger_to_wire


def test_names_wire_arguments_and_routes_are_unique() -> None:
    assert len(BY_NAME) == len(OPERATIONS)
    routes = [(op.http.method, op.http.path) for op in OPERATIONS if op.http is not None]
    assert len(routes) == len(set(routes))
    for op in OPERATIONS:
        assert len({p.wire for p in op.params}) == len(op.params), op.name
        assert len({p.name for p in op.params}) == len(op.params), op.name
        assert (op.call is None) == (op.kind != "call"), op.name


SAMPLES: dict[str, dict[str, Any]] = {
    "trigger": {"job_name": "import_csv", "input": {"a": [1]}, "idempotency_key": "k"},
    "batchTrigger": {"job_name": "j", "items": [{"input": 1, "labels": {"a": "b"}}]},
    "getRun": {"run_id": "r1"},
    "getRuns": {
        "job_name": ["a", "b"],
        "status": ["pending"],
        "labels": {"org": "acme"},
        "limit": 5,
        "offset": 0,
    },
    "getSteps": {"run_id": "r1"},
    "getLogs": {"run_id": "r1"},
    "getJobs": {},
    "cancel": {"run_id": "r1"},
    "retry": {"run_id": "r1"},
    "retrigger": {"run_id": "r1"},
    "deleteRun": {"run_id": "r1"},
    "subscribe": {"run_id": "r1"},
    "runsSubscribe": {"job_name": ["a"], "labels": {"org": "acme"}},
}


@pytest.mark.parametrize("name", [op.name for op in OPERATIONS if op.http is not None])
def test_an_http_request_reads_back_as_the_arguments_it_was_built_from(name: str) -> None:
    op = BY_NAME[name]
    args = SAMPLES[name]
    request = request_for(op, args)
    assert op.http is not None and (request.method, request.path) == (op.http.method, op.http.path)
    assert args_from_request(op, request.query, request.body) == args


def test_http_arguments_are_where_upstream_puts_them() -> None:
    request = request_for(BY_NAME["getRuns"], SAMPLES["getRuns"])
    assert request.query == [
        ("jobName", "a"),
        ("jobName", "b"),
        ("label.org", "acme"),
        ("status", "pending"),
        ("limit", "5"),
        ("offset", "0"),
    ]
    assert request.body is None
    cancel = request_for(BY_NAME["cancel"], {"run_id": "r1"})
    assert (cancel.method, cancel.path, cancel.query, cancel.body) == (
        "POST",
        "/cancel",
        [("runId", "r1")],
        None,
    )
    trigger = request_for(BY_NAME["trigger"], SAMPLES["trigger"])
    assert trigger.query == [] and trigger.body == {
        "jobName": "import_csv",
        "input": {"a": [1]},
        "idempotencyKey": "k",
    }


@pytest.mark.parametrize(
    ("name", "query", "body", "message"),
    [
        ("getRun", [], None, "runId query parameter is required"),
        ("getRun", [("runId", "")], None, "runId query parameter is required"),
        ("trigger", [], {}, "jobName is required"),
        ("getRuns", [("limit", "-1")], None, "Invalid limit: must be a non-negative integer"),
        ("getRuns", [("offset", "1.5")], None, "Invalid offset: must be a non-negative integer"),
        ("getRuns", [("limit", "9" * 20)], None, "Invalid limit: must be a non-negative integer"),
    ],
)
def test_bad_http_arguments_get_upstreams_words(
    name: str, query: list[tuple[str, str]], body: dict[str, Any] | None, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        args_from_request(BY_NAME[name], query, body)
    assert str(caught.value) == message


def test_worker_messages_use_the_same_wire_names() -> None:
    message = {"type": "trigger", "id": 4, "jobName": "j", "input": 1, "coalesce": "skip"}
    assert args_from_message(BY_NAME["trigger"], message) == {
        "job_name": "j",
        "input": 1,
        "coalesce": "skip",
    }
    with pytest.raises(ValidationError, match="runId is required"):
        args_from_message(BY_NAME["getRun"], {"type": "getRun", "id": 1})


def test_trigger_options_have_one_translation() -> None:
    body = trigger_to_wire({"x": 1}, {"idempotency_key": "k", "labels": None, "coalesce": "skip"})
    assert body == {"input": {"x": 1}, "idempotencyKey": "k", "coalesce": "skip"}
    assert trigger_to_wire(1, {"concurrencyKey": "c"}) == {"input": 1, "concurrencyKey": "c"}
    assert trigger_from_wire(body) == {
        "idempotency_key": "k",
        "concurrency_key": None,
        "labels": None,
        "coalesce": "skip",
    }
    with pytest.raises(ValidationError, match="unknown trigger option 'bogus'"):
        trigger_to_wire(1, {"bogus": 1})
