"""Bad request bodies on a real uvicorn server: a 400 ``{error, code}``, never a 500.

Nesting 300 and 50,000 levels deep, lone surrogates (a ``\\ud800`` escape or raw non-UTF-8
bytes), ``NaN``, ``Infinity`` and ``1e400`` used to be 500s or stored as ``null``; the body is
now parsed and checked by :func:`durably_web.json_value.loads` and the engine checks the
values again, so each is a ``validation_error`` and nothing is stored.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import pytest

from tests.server.conftest import Served

DEEP_300 = "[" * 300 + "]" * 300
DEEP_50000 = "[" * 50_000 + "]" * 50_000
DEEP_33 = "[" * 33 + "]" * 33

BODIES: dict[str, tuple[bytes, str]] = {
    "input 300 levels deep": (
        b'{"jobName": "echo", "input": {"a": ' + DEEP_300.encode() + b"}}",
        "request body: nested more than 35 levels deep",
    ),
    "input 50,000 levels deep": (
        b'{"jobName": "echo", "input": ' + DEEP_50000.encode() + b"}",
        "request body: nested more than 35 levels deep",
    ),
    "input 34 levels deep": (
        b'{"jobName": "echo", "input": {"a": ' + DEEP_33.encode() + b"}}",
        "input for job 'echo': a.0.0.0.…(24 more)….0.0.0.0: nested more than 32 levels deep",
    ),
    "NaN": (b'{"jobName": "echo", "input": {"x": NaN}}', "NaN is not JSON"),
    "Infinity": (b'{"jobName": "echo", "input": {"x": -Infinity}}', "-Infinity is not JSON"),
    "1e400": (
        b'{"jobName": "echo", "input": {"x": 1e400}}',
        "request body: input.x: numbers must be finite, got inf",
    ),
    "5,000-digit integer": (
        b'{"jobName": "echo", "input": {"x": ' + b"7" * 5000 + b"}}",
        "numbers must be finite doubles",
    ),
    "lone surrogate escape in input": (
        b'{"jobName": "echo", "input": {"x": "\\ud800"}}',
        "request body: input.x: strings must be valid Unicode, got a lone surrogate '\\ud800'",
    ),
    "lone surrogate in jobName": (
        b'{"jobName": "\\udcff", "input": {}}',
        "request body: jobName: strings must be valid Unicode",
    ),
    "lone surrogate in idempotencyKey": (
        b'{"jobName": "echo", "input": {}, "idempotencyKey": "\\ud800"}',
        "request body: idempotencyKey: strings must be valid Unicode",
    ),
    "lone surrogate in a label": (
        b'{"jobName": "echo", "input": {}, "labels": {"\\udc00": "x"}}',
        "object keys: strings must be valid Unicode",
    ),
    "label key with a final newline": (
        b'{"jobName": "echo", "input": {}, "labels": {"a\\n": "x"}}',
        "invalid label key 'a\\n'",
    ),
    "non-UTF-8 bytes": (
        b'{"jobName": "echo", "input": {"x": "caf\xe9"}}',
        "request body is not valid JSON: 'utf-8' codec can't decode byte 0xe9",
    ),
}


@pytest.mark.parametrize("case", BODIES, ids=list(BODIES))
async def test_a_bad_body_is_a_400_and_stores_nothing(served: Served, case: str) -> None:
    body, message = BODIES[case]
    headers = {"content-type": "application/json"}
    for path, payload in (
        ("/trigger", body),
        ("/batch-trigger", b'{"jobName": "echo", "items": [{"input": {}}, ' + body + b"]}"),
    ):
        response = await served.http.post(path, content=payload, headers=headers)
        assert response.status_code == 400, (path, response.text)
        answer = response.json()
        assert set(answer) == {"error", "code"} and answer["code"] == "validation_error"
        if path == "/trigger":
            assert message in answer["error"], answer["error"]
    assert await served.durably.get_runs() == []
    fine = await served.http.post("/trigger", json={"jobName": "echo", "input": {"x": 1.5}})
    assert fine.status_code == 200, fine.text


async def test_a_content_length_of_other_digits_is_not_a_500(served: Served) -> None:
    """``"²".isdigit()`` is true, and ``int("²")`` raised: the header is read as ASCII digits."""
    sent: list[MutableMapping[str, Any]] = []
    body = b'{"jobName": "echo", "input": {}}'
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/trigger",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", "²".encode("latin-1")),
        ],
        "query_string": b"",
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    await served.app(scope, receive, send)
    assert sent[0]["status"] == 200, sent
