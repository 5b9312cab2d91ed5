"""Bad input at every engine entry point: one ``ValidationError`` naming it, nothing written.

The values are the ones that used to crash or be silently changed: nesting 300 and 50,000
levels deep (a pydantic serializer error, a ``RecursionError``), lone surrogates (an
``UnicodeEncodeError`` from SQLite), NaN, Infinity and ``1e400`` (stored as ``null``, so NaN
and Infinity looked like the same input), and a label key ``"a\\n"`` (a regex ``$`` let the
newline through). The rules themselves are :mod:`durably_web.json_value`'s.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pydantic import BaseModel

from durably_web import (
    Durably,
    StepContext,
    TriggerItem,
    ValidationError,
    create_durably,
    define_job,
)
from durably_web.json_value import MAX_DEPTH
from tests.conftest import VERY_DEEP, MakeDurably
from tests.databases import sql_on
from tests.jobs import echo_job


def nest(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


@define_job(name="anything", input=Any)
async def anything(step: StepContext, payload: Any) -> Any:
    return payload


class Loose(BaseModel):
    extra: Any = None
    ratio: float = 1.0


@define_job(name="loose", input=Loose)
async def loose(step: StepContext, payload: Loose) -> dict[str, Any]:
    return {}


JOBS = {"anything": anything, "loose": loose, "echo": echo_job}


def stored(durably: Durably) -> list[Any]:
    """Every row of every durably table: what a refused request must leave alone."""
    return [
        sql_on(durably.store, f"SELECT * FROM {table} ORDER BY 1")
        for table in ("durably_runs", "durably_steps", "durably_logs", "durably_run_labels")
    ]


BAD_INPUTS: dict[str, tuple[Any, str]] = {
    "300 levels": (
        nest(300),
        "input for job 'anything': 0.0.0.0.…(24 more)….0.0.0.0: nested more than 32 levels deep",
    ),
    "50,000 levels": (nest(VERY_DEEP), "nested more than 32 levels deep"),
    "33 levels in a dict": ({"a": nest(MAX_DEPTH)}, "a.0.0.0.…(24 more)"),
    "NaN": ({"x": math.nan}, "input for job 'anything': x: numbers must be finite, got nan"),
    "Infinity": ([math.inf], "input for job 'anything': 0: numbers must be finite, got inf"),
    "1e400": ({"x": float("1e400")}, "x: numbers must be finite, got inf"),
    "10**400": ({"x": 10**400}, "x: numbers must be finite doubles (at most ±1.8e308)"),
    "lone surrogate": (
        {"name": "caf\udce9"},
        "input for job 'anything': name: strings must be valid Unicode, got a lone surrogate "
        "'\\udce9' at position 3",
    ),
    "surrogate key": ({"\ud800": 1}, "object keys: strings must be valid Unicode"),
    "an object": ({"when": object()}, "input for job 'anything' is not JSON-serialisable"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
async def test_bad_input_is_refused_and_stores_nothing(
    make_durably: MakeDurably, case: str
) -> None:
    value, message = BAD_INPUTS[case]
    durably = await make_durably(JOBS)
    await durably.jobs.anything.trigger({"seed": 1})
    before = stored(durably)
    events: list[Any] = []
    durably.on("*", events.append)
    with pytest.raises(ValidationError) as caught:
        await durably.jobs.anything.trigger(value)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value) and str(caught.value).encode("utf-8")
    with pytest.raises(ValidationError, match="at index 1"):
        await durably.jobs.anything.batch_trigger([{"fine": 1}, value])
    assert stored(durably) == before
    assert events == []


async def test_nan_and_infinity_are_no_longer_the_same_input(make_durably: MakeDurably) -> None:
    durably = await make_durably(JOBS)
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValidationError, match="numbers must be finite"):
            await durably.jobs.anything.trigger({"x": value})
    run = await durably.jobs.anything.trigger({"x": 1.5e308, "n": -(2**1000)})
    assert run.input == {"x": 1.5e308, "n": -(2**1000)}
    assert (await durably.get_run(run.id)).input == run.input  # type: ignore[union-attr]


async def test_values_at_the_limits_are_stored_and_read_back(make_durably: MakeDurably) -> None:
    durably = await make_durably(JOBS, preserve_steps=True)
    value = {"deep": nest(MAX_DEPTH - 1), "text": "é😀\u0000", "big": 2**1000}
    run = await durably.jobs.anything.trigger(value)
    await durably.process_until_idle()
    done = await durably.get_run(run.id)
    assert done is not None and done.status == "completed"
    assert done.input == value and done.output == value


async def test_a_model_hiding_nan_in_an_any_field_is_refused(make_durably: MakeDurably) -> None:
    """pydantic's JSON mode turns NaN in an ``Any`` field into null: checked before that."""
    durably = await make_durably(JOBS)
    for value in (Loose(extra={"x": math.nan}), {"extra": [math.inf]}, Loose(ratio=math.nan)):
        with pytest.raises(ValidationError, match="numbers must be finite"):
            await durably.jobs.loose.trigger(value)
    assert await durably.get_runs() == []


BAD_OPTIONS: dict[str, tuple[dict[str, Any], str]] = {
    "label key with a final newline": ({"labels": {"a\n": "x"}}, "invalid label key 'a\\n'"),
    "label key with a newline inside": ({"labels": {"a\nb": "x"}}, "invalid label key"),
    "label value with a surrogate": (
        {"labels": {"org": "\udcff"}},
        "label 'org': strings must be valid Unicode",
    ),
    "label value NaN": ({"labels": {"org": math.nan}}, "label 'org' must be a string"),
    "deep labels": ({"labels": nest(300)}, "labels must be a mapping of strings"),
    "idempotency key with a surrogate": (
        {"idempotency_key": "k\ud800"},
        "idempotency_key: strings must be valid Unicode",
    ),
    "concurrency key with a surrogate": (
        {"concurrency_key": "\udc80"},
        "concurrency_key: strings must be valid Unicode",
    ),
    "huge idempotency key": ({"idempotency_key": "k" * 10_000}, "at most 255 characters"),
}


@pytest.mark.parametrize("case", BAD_OPTIONS, ids=list(BAD_OPTIONS))
async def test_bad_keys_and_labels_are_refused(make_durably: MakeDurably, case: str) -> None:
    options, message = BAD_OPTIONS[case]
    durably = await make_durably(JOBS)
    with pytest.raises(ValidationError) as caught:
        await durably.jobs.anything.trigger({}, **options)
    assert message in str(caught.value)
    assert len(str(caught.value)) < 400  # a 10,000-character key is not echoed whole
    with pytest.raises(ValidationError, match="at index 0"):
        await durably.jobs.anything.batch_trigger([TriggerItem({}, **options)])
    assert await durably.get_runs() == []


async def test_a_labels_model_sees_the_same_rules(make_durably: MakeDurably) -> None:
    class Labels(BaseModel):
        org: str
        extra: Any = None

    durably = await make_durably(JOBS, labels=Labels)
    labels: dict[str, Any] = {"org": "a", "extra": math.nan}
    with pytest.raises(ValidationError, match="numbers must be finite"):
        await durably.jobs.anything.trigger({}, labels=labels)
    with pytest.raises(ValidationError, match="strings must be valid Unicode"):
        await durably.jobs.anything.trigger({}, labels={"org": "\udcff"})
    assert await durably.get_runs() == []


async def test_queries_refuse_text_sqlite_cannot_hold(make_durably: MakeDurably) -> None:
    durably = await make_durably(JOBS)
    run = await durably.jobs.anything.trigger({})
    bad = "\udcff"
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "get_run": lambda: durably.get_run(bad),
        "get_steps": lambda: durably.get_steps(bad),
        "get_logs": lambda: durably.get_logs(bad),
        "cancel": lambda: durably.cancel(bad),
        "retry": lambda: durably.retry(bad),
        "retrigger": lambda: durably.retrigger(bad),
        "delete_run": lambda: durably.delete_run(bad),
        "process_one": lambda: durably.process_one(bad),
        "wait_for_run": lambda: durably.wait_for_run(bad, timeout=1),
        "get_runs job_name": lambda: durably.get_runs(job_name=[bad]),
        "get_runs status": lambda: durably.get_runs(status=bad),
        "get_runs labels": lambda: durably.get_runs(labels={"org": bad}),
        "get_runs label key": lambda: durably.get_runs(labels={"org\n": "a"}),
    }
    for name, call in calls.items():
        with pytest.raises(ValidationError) as caught:
            await call()
        assert str(caught.value).encode("utf-8"), name
    with pytest.raises(ValidationError, match="job name: strings must be valid Unicode"):
        durably.job_by_name(bad)
    assert [r.id for r in await durably.get_runs()] == [run.id]


def test_job_names_refuse_a_final_newline() -> None:
    for name in ("a\n", "a\nb", "\na", "a b"):
        with pytest.raises(ValidationError, match="job name must be"):
            define_job(name=name, input=int, run=lambda step, payload: payload)
    assert define_job(name="a.b:c/d-e_f", input=int, run=lambda step, payload: payload)


async def test_durations_refuse_a_final_newline_and_other_digits() -> None:
    for value in ("7d\n", "7d ", "٣d", " 7d"):
        with pytest.raises(ValidationError, match="retain_runs must be a duration"):
            create_durably("sqlite:///:memory:", retain_runs=value)
    await create_durably("sqlite:///:memory:", retain_runs="7d").close()


# -- values a job produces ---------------------------------------------------------------


def producing(kind: str, value: Any) -> Any:
    @define_job(name=f"produce-{kind}", input=dict[str, Any])
    async def job(step: StepContext, payload: dict[str, Any]) -> Any:
        await step.run("first", lambda: 1)
        if kind == "result":
            await step.run("bad", lambda: value)
        elif kind == "log":
            step.log.info("with data", value)
        elif kind == "log-message":
            step.log.info(value)
        elif kind == "progress":
            step.progress(value, 10)
        elif kind == "progress-message":
            step.progress(1, 10, value)
        elif kind == "step-name":
            await step.run(value, lambda: 1)
        elif kind == "output":
            return value
        return {"ok": True}

    return job


BAD_PRODUCTS: dict[str, tuple[str, Any, str]] = {
    "step result NaN": ("result", {"x": math.nan}, "result of step 'bad': x: numbers must be"),
    "step result too deep": ("result", nest(300), "result of step 'bad': 0.0.0.0.…"),
    "step result 50,000 deep": ("result", nest(VERY_DEEP), "nested more than 32 levels deep"),
    "step result surrogate": ("result", ["\udcff"], "result of step 'bad': 0: strings must be"),
    "step result int key": ("result", {1: "a"}, "object keys must be strings"),
    "log data Infinity": ("log", {"x": math.inf}, "log data: x: numbers must be finite"),
    "log data too deep": ("log", nest(300), "log data: 0.0.0.0.…"),
    "log message surrogate": ("log-message", "\ud800", "log message: strings must be valid"),
    "progress NaN": ("progress", math.nan, "progress current: numbers must be finite"),
    "progress message surrogate": ("progress-message", "\ud800", "progress message: strings"),
    "step name surrogate": ("step-name", "s\udcff", "step name: strings must be valid Unicode"),
    "output NaN": ("output", {"x": math.nan}, "Invalid output: output of job 'produce-output'"),
    "output too deep": ("output", nest(300), "Invalid output: output of job"),
}


@pytest.mark.parametrize("case", BAD_PRODUCTS, ids=list(BAD_PRODUCTS))
async def test_bad_values_from_a_job_fail_the_run_with_a_clear_error(
    make_durably: MakeDurably, case: str
) -> None:
    kind, value, message = BAD_PRODUCTS[case]
    job = producing(kind, value)
    durably = await make_durably({"job": job}, preserve_steps=True)
    run = await durably.jobs.job.trigger({})
    await durably.process_until_idle()
    final = await durably.get_run(run.id)
    assert final is not None and final.status == "failed", final
    assert final.error is not None and message in final.error, final.error
    steps = await durably.get_steps(run.id)
    assert [s.name for s in steps if s.status == "completed"] == ["first"]
    for log in await durably.get_logs(run.id):
        assert log.message != value


async def test_an_error_message_with_a_surrogate_is_stored_escaped(
    make_durably: MakeDurably,
) -> None:
    """A file name decoded with surrogateescape in an exception used to make the run unstorable."""

    @define_job(name="missing-file", input=dict[str, Any])
    async def job(step: StepContext, payload: dict[str, Any]) -> None:
        async def read() -> None:
            raise FileNotFoundError("no such file: caf\udce9.csv")

        await step.run("read", read)

    durably = await make_durably({"job": job}, preserve_steps=True)
    run = await durably.jobs.job.trigger({})
    await durably.process_until_idle()
    final = await durably.get_run(run.id)
    assert final is not None and final.status == "failed"
    assert final.error == "no such file: caf\\udce9.csv"
    [step] = await durably.get_steps(run.id)
    assert step.error == "no such file: caf\\udce9.csv"


async def test_errors_show_any_value_in_one_short_line(make_durably: MakeDurably) -> None:
    """A message naming a 50,000-level value used to call repr() on it: a RecursionError."""
    durably = await make_durably(JOBS)
    deep = nest(VERY_DEEP)
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "wait_for_run timeout": lambda: durably.wait_for_run("x", timeout=deep),
        "purge_runs older_than": lambda: durably.purge_runs(deep),
        "get_runs limit": lambda: durably.get_runs(limit=deep),
        "get_runs job_name": lambda: durably.get_runs(job_name=deep),
        "trigger coalesce": lambda: durably.jobs.anything.trigger({}, coalesce=deep),
        "trigger labels": lambda: durably.jobs.anything.trigger({}, labels=deep),
    }
    for name, call in calls.items():
        with pytest.raises(ValidationError) as caught:
            await call()
        assert "[[[[...]]]]" in str(caught.value) and len(str(caught.value)) < 200, name
    with pytest.raises(ValidationError, match=r"got \[\[\[\[\.\.\.\]\]\]\]"):
        create_durably("sqlite:///:memory:", retain_runs=deep)


@define_job(name="nul-text", input=str)
async def nul_text(step: StepContext, where: str) -> None:
    """Put a NUL where the input says: a step name, a log or progress message, an error."""
    if where == "step name":
        await step.run("a\x00b", lambda: 1)
    elif where == "log message":
        step.log.info("line\x00")
    elif where == "progress message":
        step.progress(1, 2, "half\x00")
    else:
        raise RuntimeError("bad\x00thing")
    await step.run("after", lambda: 1)


async def test_the_nul_rule_is_the_same_on_every_store(make_durably: MakeDurably) -> None:
    """PostgreSQL's text cannot hold U+0000: text stored as such refuses it on every store (it
    used to stop the PostgreSQL worker with a StorageError), JSON values keep it (escaped)."""
    durably = await make_durably({"anything": anything, "nul_text": nul_text})
    before = stored(durably)
    refusals: list[dict[str, Any]] = [
        {"idempotency_key": "k\x00"},
        {"concurrency_key": "\x00"},
        {"labels": {"team": "a\x00"}},
    ]
    for options in refusals:
        with pytest.raises(ValidationError, match=r"must not contain NUL \(U\+0000\)"):
            await durably.jobs.anything.trigger({}, **options)
    assert stored(durably) == before

    places = ["step name", "log message", "progress message", "error"]
    runs = [await durably.jobs.nul_text.trigger(where) for where in places]
    await durably.process_until_idle()
    for where, run in zip(places, runs, strict=True):
        done = await durably.get_run(run.id)
        assert done is not None and done.status == "failed", (where, done)
        if where == "error":  # not the caller's to refuse: stored escaped
            assert done.error == "bad\\x00thing"
        else:
            assert done.error is not None and done.error.startswith(f"{where}: text must not")
    assert durably.worker.failure is None
