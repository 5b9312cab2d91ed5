from __future__ import annotations

import pytest

from durably_web import ValidationError, define_job
from durably_web.clock import format_timestamp, parse_timestamp
from durably_web.ids import new_ulid
from durably_web.job import build_deferred_adapters, deferred_adapters
from durably_web.validation import dump_json


def test_ulids_are_sortable_and_unique() -> None:
    ids = [new_ulid(1767225600.0) for _ in range(1000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 1000
    assert all(len(i) == 26 for i in ids)
    assert new_ulid(1767225601.0) > ids[-1]


def test_ulids_in_one_millisecond_count_up_across_every_character() -> None:
    """new_ulid re-encodes only the last two characters until their 10 bits carry over:
    3,000 ids in one millisecond cross that carry at least twice and still count by one."""
    ids = [new_ulid(1767225602.0) for _ in range(3000)]
    values = [_base32(i) for i in ids]
    assert values == list(range(values[0], values[0] + 3000))
    assert {i[:10] for i in ids} == {ids[0][:10]}  # one millisecond: one time part


def _base32(ulid: str) -> int:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    value = 0
    for char in ulid:
        value = value * 32 + alphabet.index(char)
    return value


def test_timestamps_fixed_width_and_round_trip() -> None:
    assert format_timestamp(1767225600.5) == "2026-01-01T00:00:00.500Z"
    assert format_timestamp(1767225600.0004) == "2026-01-01T00:00:00.000Z"
    assert format_timestamp(1767225600.9996) == "2026-01-01T00:00:01.000Z"
    assert parse_timestamp("2026-01-01T00:00:00.500Z") == 1767225600.5


def test_dump_json_rejects_what_json_cannot_hold() -> None:
    assert dump_json({"a": [1, "é"]}, "x") == '{"a":[1,"é"]}'
    for bad, why in (
        ({1, 2}, "x: set is not JSON-serialisable"),
        (float("nan"), "x: numbers must be finite, got nan"),
        (object(), "x: object is not JSON-serialisable"),
        ({"a": [1, {"b": float("inf")}]}, "x: a.1.b: numbers must be finite, got inf"),
    ):
        with pytest.raises(ValidationError) as caught:
            dump_json(bad, "x")
        assert str(caught.value) == why


def test_define_job_forms_and_errors() -> None:
    async def run(step: object, payload: int) -> int:
        return payload

    job = define_job(name="double", input=int, run=run)
    assert job.name == "double" and job.output_adapter is None

    @define_job(name="dec", input=int, output=int)
    async def decorated(step: object, payload: int) -> int:
        return payload

    assert decorated.output_adapter is not None
    assert decorated.same_as(decorated) and not decorated.same_as(job)
    with pytest.raises(ValidationError, match="job name must be"):
        define_job(name="has space", input=int, run=run)
    with pytest.raises(ValidationError, match="not a type pydantic can validate"):
        define_job(name="x", input=object(), run=run)
    with pytest.raises(ValidationError, match="must be callable"):
        define_job(name="x", input=int)(42)  # type: ignore[arg-type]


def test_deferred_adapters_are_built_on_first_use_or_all_at_once() -> None:
    async def run(step: object, payload: int) -> int:
        return payload

    build_deferred_adapters()  # what an earlier test left unbuilt
    with deferred_adapters():
        first = define_job(name="first", input=int, output=str, run=run)
        second = define_job(name="second", input=dict, run=run)
        bad = define_job(name="bad", input=object(), run=run)  # reported on use, not here
    assert define_job(name="eager", input=int, run=run).input_adapter.validate_python("3") == 3
    with pytest.raises(ValidationError, match="not a type pydantic can validate"):
        define_job(name="x", input=object(), run=run)  # outside: at once, as before
    assert second.input_adapter.validate_python({"a": 1}) == {"a": 1}  # built on first use
    assert build_deferred_adapters() == 2  # first's input and output; bad's stays unbuilt
    assert build_deferred_adapters() == 0  # nothing is left to build
    assert first.input_adapter.validate_python("4") == 4
    assert first.output_adapter is not None and first.output_adapter.validate_python("x") == "x"
    with pytest.raises(ValidationError, match="input type of job 'bad' is not a type pydantic"):
        _ = bad.input_adapter
