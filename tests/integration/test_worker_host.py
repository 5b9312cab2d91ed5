"""The browser worker's request host (``durably_web.browser.host``) on bad requests.

Every request gets exactly one answer with its id, whatever its text holds; a refused one is
a ``validation_error`` and writes nothing. The host is plain Python (only the boot touches
``js``), so it runs here over a real engine; the page's link writes the id last
(``web/client/link.mjs``), as these requests do.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from durably_web.browser.host import Host
from tests.conftest import MakeDurably
from tests.integration.test_bad_input import JOBS, stored


async def answer(host: Host, posted: list[dict[str, Any]], text: str) -> dict[str, Any]:
    count = len(posted)
    host.receive(text)
    for _ in range(200):
        if len(posted) > count:
            break
        await asyncio.sleep(0.005)
    [reply] = posted[count:]
    return reply


def request(body: str, request_id: int) -> str:
    """A request as the page's link writes it: ``JSON.stringify({...message, id})``."""
    return body[:-1] + f',"id":{request_id}}}'


BAD_REQUESTS = {
    "input 300 levels deep": (
        '{"type":"trigger","jobName":"anything","input":' + "[" * 300 + "]" * 300 + "}",
        "request: nested more than 35 levels deep",
    ),
    "input 50,000 levels deep": (
        '{"type":"trigger","jobName":"anything","input":' + "[" * 50_000 + "]" * 50_000 + "}",
        "request: nested more than 35 levels deep",
    ),
    "input 34 levels deep": (
        '{"type":"trigger","jobName":"anything","input":' + "[" * 34 + "]" * 34 + "}",
        "input for job 'anything': 0.0.0.0.…(24 more)….0.0.0.0: nested more than 32 levels",
    ),
    "lone surrogate in input": (
        '{"type":"trigger","jobName":"anything","input":{"a":"\\ud800"}}',
        "request: input.a: strings must be valid Unicode",
    ),
    "lone surrogate in the job": (
        '{"type":"trigger","jobName":"\\udcff","input":{}}',
        "request: jobName: strings must be valid Unicode",
    ),
    "NaN": ('{"type":"trigger","jobName":"anything","input":NaN}', "NaN is not JSON"),
    "1e400": (
        '{"type":"trigger","jobName":"anything","input":[1e400]}',
        "request: input.0: numbers must be finite, got inf",
    ),
    "surrogate key in a batch": (
        '{"type":"batchTrigger","jobName":"anything","items":[{"input":{"\\udc00":1}}]}',
        "object keys: strings must be valid Unicode",
    ),
    "surrogate run id": ('{"type":"getRun","runId":"\\ud800"}', "strings must be valid Unicode"),
    "surrogate label filter": (
        '{"type":"getRuns","labels":{"a":"\\ud800"}}',
        "strings must be valid Unicode",
    ),
    "label key with a final newline": (
        '{"type":"trigger","jobName":"anything","input":{},"labels":{"a\\n":"x"}}',
        "invalid label key 'a\\n'",
    ),
    "not JSON at all": ('{"type":"trigger",', "request is not valid JSON"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=list(BAD_REQUESTS))
async def test_a_bad_request_gets_its_answer_and_writes_nothing(
    make_durably: MakeDurably, case: str
) -> None:
    body, message = BAD_REQUESTS[case]
    durably = await make_durably(JOBS)
    await durably.jobs.anything.trigger({"seed": 1})
    before = stored(durably)
    posted: list[dict[str, Any]] = []
    host = Host(durably, lambda text: posted.append(json.loads(text)))
    reply = await answer(host, posted, request(body, 7) if body.endswith("}") else body)
    assert reply["type"] == "response" and reply["ok"] is False, reply
    assert reply["id"] == (7 if body.endswith("}") else None)
    error = reply["error"]
    assert set(error) == {"error", "code"} and error["code"] == "validation_error", error
    assert message in error["error"], error["error"]
    assert stored(durably) == before
    fine = await answer(host, posted, request('{"type":"getRuns"}', 8))
    assert fine["ok"] is True and fine["id"] == 8 and len(fine["result"]) == 1


async def test_a_request_with_its_id_first_is_answered_too(make_durably: MakeDurably) -> None:
    durably = await make_durably(JOBS)
    posted: list[dict[str, Any]] = []
    host = Host(durably, lambda text: posted.append(json.loads(text)))
    reply = await answer(
        host, posted, '{"id":3,"type":"trigger","jobName":"anything","input":{"x":"\\ud800"}}'
    )
    assert (reply["id"], reply["ok"], reply["error"]["code"]) == (3, False, "validation_error")
    ok = await answer(
        host, posted, '{"id":4,"type":"trigger","jobName":"anything","input":{"x":1}}'
    )
    assert ok["ok"] is True and ok["result"]["input"] == {"x": 1}
