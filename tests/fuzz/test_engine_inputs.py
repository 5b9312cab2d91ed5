"""Fuzz the engine's API with any value: a correct answer or a ``ValidationError``, nothing else.

For each generated request the property is: either the call succeeds and the database holds
exactly the value's JSON form (read back unchanged), or it raises ``ValidationError`` with a
one-line message and the database is byte-for-byte as before; never another exception, a
hang (every call runs under a timeout) or a half-written row. Which of the two must happen
is decided by the reference model in :mod:`tests.fuzz.strategies`, from the documented rules.

Covered: ``trigger`` (input, labels, keys), ``batch_trigger``, ``get_runs`` filters, and, from
inside a job, ``step.run`` results, ``step.progress`` and ``step.log`` arguments and outputs.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable
from typing import Any, TypeVar

from hypothesis import example, given
from hypothesis import strategies as st

from durably_web import (
    Durably,
    StepContext,
    TriggerItem,
    ValidationError,
    create_durably,
    define_job,
)
from tests.conftest import sql_connection
from tests.fuzz.strategies import (
    FUZZ,
    acceptable,
    any_values,
    as_json,
    column_text_ok,
    json_values,
    key_ok,
    keys,
    labels,
    labels_ok,
    scalars,
    texts,
    wrap,
)

T = TypeVar("T")
TIMEOUT = 30.0
"""Seconds any one call may take: far more than any needs, so only a hang trips it."""


@define_job(name="any-input", input=Any)
async def any_input(step: StepContext, payload: Any) -> Any:
    return None


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, TIMEOUT)

    return asyncio.run(bounded())


def stored(durably: Durably) -> list[Any]:
    conn = sql_connection(durably)
    return [
        conn.query(f"SELECT * FROM {table} ORDER BY 1")
        for table in ("durably_runs", "durably_steps", "durably_logs", "durably_run_labels")
    ]


async def engine(jobs: dict[str, Any] | None = None, **options: Any) -> Durably:
    durably = create_durably(
        "sqlite:///:memory:", jobs=jobs or {"any": any_input}, preserve_steps=True, **options
    )
    await durably.migrate()
    return durably


async def attempt(call: Awaitable[T]) -> tuple[T | None, ValidationError | None]:
    """Await ``call``: its result, or the ``ValidationError`` it raised."""
    try:
        return await call, None
    except ValidationError as exc:
        return None, exc


def check_refusal(error: ValidationError) -> None:
    message = str(error)
    assert message and "\n" not in message, message
    message.encode("utf-8")  # printable and sendable: no lone surrogate echoed back
    assert error.to_wire() == {"error": message, "code": "validation_error"}


async def trigger_or_refuse(options: dict[str, Any], expected_ok: bool) -> Any:
    """Trigger with ``options`` on a fresh engine: the run read back, or None if refused."""
    durably = await engine()
    await durably.jobs.any.trigger({"seed": True}, labels={"org": "a"})
    before = stored(durably)
    created, refused = await attempt(durably.jobs.any.trigger(**options))
    read = None
    if refused is not None:
        check_refusal(refused)
        assert stored(durably) == before
        assert not expected_ok, (refused, options)
    else:
        assert created is not None
        read = await durably.get_run(created.id)
        assert read is not None and acceptable(read.input)
    await durably.close()
    return read


@FUZZ
@given(value=any_values)
@example(value=wrap(1, 130, in_dict=False))  # hypothesis prints examples: not 50,000 deep
@example(value={"x": math.nan})
@example(value=[math.inf])
@example(value={"x": float("1e400")})
@example(value={"caf\udce9": 1})
def test_trigger_input_is_stored_as_json_or_refused(value: Any) -> None:
    read = run(trigger_or_refuse({"input": value}, acceptable(value)))
    if read is not None and acceptable(value):
        assert read.input == as_json(value)
    # Otherwise accepted only as pydantic's JSON form of a non-JSON type (a set, a date,
    # an int key), which trigger_or_refuse checked is valid JSON data.


@FUZZ
@given(label_set=labels)
@example(label_set={"a\n": "x"})
@example(label_set={"a": "\ud800"})
def test_trigger_labels_are_stored_or_refused(label_set: Any) -> None:
    ok = labels_ok(label_set)
    read = run(trigger_or_refuse({"input": {}, "labels": label_set}, ok))
    assert (read is not None) == ok, label_set
    if read is not None:
        assert read.labels == (label_set or {})


@FUZZ
@given(idempotency_key=keys, concurrency_key=keys)
@example(idempotency_key="\udcff", concurrency_key=None)
def test_trigger_keys_are_stored_or_refused(idempotency_key: Any, concurrency_key: Any) -> None:
    ok = key_ok(idempotency_key) and key_ok(concurrency_key)
    options = {"input": {}, "idempotency_key": idempotency_key, "concurrency_key": concurrency_key}
    read = run(trigger_or_refuse(options, ok))
    assert (read is not None) == ok, (idempotency_key, concurrency_key)
    if read is not None:
        assert (read.idempotency_key, read.concurrency_key) == (idempotency_key, concurrency_key)


@FUZZ
@given(values=st.lists(json_values, min_size=1, max_size=4))
def test_batch_trigger_is_all_or_nothing(values: list[Any]) -> None:
    async def scenario() -> None:
        durably = await engine()
        before = stored(durably)
        items = [TriggerItem(value, labels={"n": str(i)}) for i, value in enumerate(values)]
        runs, refused = await attempt(durably.jobs.any.batch_trigger(items))
        if refused is not None:
            check_refusal(refused)
            assert stored(durably) == before
            first_bad = next(i for i, value in enumerate(values) if not acceptable(value))
            assert f"at index {first_bad}" in str(refused)
        else:
            assert runs is not None and all(acceptable(value) for value in values)
            read = [await durably.get_run(r.id) for r in runs]
            assert [r.input for r in read if r] == [as_json(value) for value in values]
        await durably.close()

    run(scenario())


filters = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["pending", "completed", "bogus", ""]) | texts | any_values,
        "job_name": texts | st.lists(texts, max_size=3) | any_values,
        "labels": labels,
        "limit": st.none() | st.integers(-3, 2**40) | any_values,
        "offset": st.integers(-3, 2**40) | any_values,
    },
)


@FUZZ
@given(query=filters)
def test_get_runs_answers_or_refuses_any_filter(query: dict[str, Any]) -> None:
    async def scenario() -> None:
        durably = await engine()
        await durably.jobs.any.trigger({"x": 1}, labels={"org": "a"})
        before = stored(durably)
        found, refused = await attempt(durably.get_runs(**query))
        if refused is not None:
            check_refusal(refused)
        else:
            assert found is not None and all(run.job_name == "any-input" for run in found)
        assert stored(durably) == before
        await durably.close()

    run(scenario())


def _producing_job(
    result: Any, current: Any, total: Any, progress_message: Any, message: Any, data: Any
) -> Any:
    @define_job(name="produce", input=dict[str, Any])
    async def produce(step: StepContext, payload: dict[str, Any]) -> Any:
        got = await step.run("make", lambda: result)
        step.progress(current, total, progress_message)
        step.log.info(message, data)
        return got

    return produce


numbers = st.integers(-(2**1100), 2**1100) | st.floats() | scalars


@FUZZ
@given(
    result=any_values,
    current=numbers,
    total=st.none() | numbers,
    progress_message=st.none() | texts | scalars,
    message=texts | scalars,
    data=st.none() | any_values,
)
# A NUL is fine inside JSON values, not in a message stored in a column of its own.
@example(result=None, current=0, total=None, progress_message=None, message="\x00", data=None)
@example(result=None, current=0, total=None, progress_message="a\x00", message="m", data=None)
def test_values_from_a_job_are_stored_or_fail_the_run_clearly(
    result: Any, current: Any, total: Any, progress_message: Any, message: Any, data: Any
) -> None:
    """A value a job produces is checked where it is produced: the run never crashes."""

    def number_ok(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and acceptable(value)

    steps_ok = acceptable(result)  # a model is dumped; no model is generated here
    rest_ok = (
        number_ok(current)
        and (total is None or number_ok(total))
        and (
            progress_message is None
            or (isinstance(progress_message, str) and column_text_ok(progress_message))
        )
        and isinstance(message, str)
        and column_text_ok(message)
        and (data is None or acceptable(data))
    )

    async def scenario() -> None:
        job = _producing_job(result, current, total, progress_message, message, data)
        durably = await engine({"produce": job})
        created = await durably.jobs.produce.trigger({})
        assert await durably.process_until_idle() == 1
        final = await durably.get_run(created.id)
        assert final is not None and final.status in ("completed", "failed"), final
        steps = await durably.get_steps(created.id)
        if steps_ok and rest_ok:
            assert final.status == "completed", final.error
            assert final.output == as_json(result)
            assert [s.output for s in steps] == [as_json(result)]
            logs = await durably.get_logs(created.id)
            assert [(log.message, log.data) for log in logs] == [(message, as_json(data))]
        else:
            assert final.status == "failed"
            assert final.error, final
            final.error.encode("utf-8")
            if not steps_ok:
                [step] = steps
                assert step.status == "failed" and step.name == "make"
                assert "result of step 'make'" in (step.error or "")
        await durably.close()

    run(scenario())


def test_the_reference_model_matches_json_value_limits() -> None:
    from durably_web import json_value
    from tests.fuzz import strategies

    assert strategies.MAX_DEPTH == json_value.MAX_DEPTH
    assert acceptable([1.7976931348623157e308, -(2**1000), "é"])
    assert not acceptable({"a": [float("nan")]}) and not acceptable(["\ud800"])
    assert json.loads(json.dumps(as_json((1, {"a": (2,)})))) == [1, {"a": [2]}]
