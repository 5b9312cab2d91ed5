"""Triggering: validation, dispositions, keys, labels, batches. Bad input writes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from durably_web import ConflictError, TriggerItem, ValidationError
from durably_web.core.trigger import scoped_key
from tests.conftest import MakeDurably
from tests.jobs import StepsInput, echo_job, steps_job


async def test_trigger_creates_pending_run_and_event(make_durably: MakeDurably) -> None:
    durably = await make_durably({"steps": steps_job})
    events: list[Any] = []
    durably.on("run:trigger", events.append)
    run = await durably.jobs.steps.trigger({"n": 2})
    assert (run.status, run.disposition, run.job_name) == ("pending", "created", "steps")
    assert run.input == {"n": 2, "fail_at": None, "gate_at": None, "gate": "default"}
    [event] = events
    assert (event.run_id, event.job_name, event.input, event.sequence) == (
        run.id,
        "steps",
        run.input,
        1,
    )


async def test_trigger_accepts_model_instances(make_durably: MakeDurably) -> None:
    durably = await make_durably({"steps": steps_job})
    run = await durably.jobs.steps.trigger(StepsInput(n=5))
    assert run.input["n"] == 5


async def test_invalid_input_names_field_and_stores_nothing(make_durably: MakeDurably) -> None:
    durably = await make_durably({"steps": steps_job})
    with pytest.raises(ValidationError, match=r"Invalid input for job 'steps': n: Input should be"):
        await durably.jobs.steps.trigger({"n": "many"})
    assert await durably.get_runs() == []


async def test_idempotency_key_returns_existing_without_event(make_durably: MakeDurably) -> None:
    durably = await make_durably({"steps": steps_job})
    first = await durably.jobs.steps.trigger({"n": 1}, idempotency_key="day-1")
    events: list[Any] = []
    durably.on("*", events.append)
    again = await durably.jobs.steps.trigger({"n": 9}, idempotency_key="day-1")
    assert (again.id, again.disposition, again.input["n"]) == (first.id, "idempotent", 1)
    assert events == []


async def test_concurrency_key_conflict_and_coalesce(make_durably: MakeDurably) -> None:
    durably = await make_durably({"steps": steps_job})
    first = await durably.jobs.steps.trigger({"n": 1}, concurrency_key="imports")
    with pytest.raises(
        ConflictError, match='pending run already exists for concurrency key "imports"'
    ):
        await durably.jobs.steps.trigger({"n": 2}, concurrency_key="imports")
    events: list[Any] = []
    durably.on("run:coalesced", events.append)
    again = await durably.jobs.steps.trigger(
        {"n": 2}, concurrency_key="imports", coalesce="skip", labels={"who": "me"}
    )
    assert (again.id, again.disposition) == (first.id, "coalesced")
    [event] = events
    assert event.skipped_input["n"] == 2
    assert event.skipped_labels == {"who": "me"}
    assert len(await durably.get_runs()) == 1


async def test_key_scopes_never_share_keys(make_durably: MakeDurably) -> None:
    """Issue 14, item 1: the HTTP server scopes keys by tenant; this is the engine half."""
    durably = await make_durably({"steps": steps_job})
    plain = await durably.jobs.steps.trigger({"n": 1}, idempotency_key="day-1")
    a = await durably.jobs.steps.trigger({"n": 2}, idempotency_key="day-1", key_scope="a")
    b = await durably.jobs.steps.trigger({"n": 3}, idempotency_key="day-1", key_scope="b")
    again = await durably.jobs.steps.trigger({"n": 4}, idempotency_key="day-1", key_scope="a")
    assert len({plain.id, a.id, b.id}) == 3 and (again.id, again.disposition) == (
        a.id,
        "idempotent",
    )
    assert plain.idempotency_key == "day-1"  # unscoped keys are stored as upstream stores them
    assert a.idempotency_key == scoped_key("a", "day-1") != b.idempotency_key
    assert a.idempotency_key is not None and a.idempotency_key.endswith(":day-1")
    # A scope cannot forge another's stored key: the digest is fixed-length, then the key.
    forged = await durably.jobs.steps.trigger(
        {"n": 5}, idempotency_key=str(a.idempotency_key), key_scope="c"
    )
    assert forged.disposition == "created"

    held = await durably.jobs.steps.trigger({"n": 1}, concurrency_key="k", key_scope="a")
    other = await durably.jobs.steps.trigger(
        {"n": 1}, concurrency_key="k", coalesce="skip", key_scope="b"
    )
    assert other.disposition == "created" and other.id != held.id
    mine = await durably.jobs.steps.trigger(
        {"n": 1}, concurrency_key="k", coalesce="skip", key_scope="b"
    )
    assert (mine.id, mine.disposition) == (other.id, "coalesced")
    with pytest.raises(ConflictError):
        await durably.jobs.steps.trigger({"n": 1}, concurrency_key="k", key_scope="a")
    batch = await durably.jobs.steps.batch_trigger(
        [TriggerItem({"n": 1}, idempotency_key="day-1", key_scope="b")]
    )
    assert [(run.id, run.disposition) for run in batch] == [(b.id, "idempotent")]


async def test_retrigger_keeps_a_scoped_concurrency_key(make_durably: MakeDurably) -> None:
    durably = await make_durably({"steps": steps_job})
    key = "k" * 255  # the longest key: stored longer once scoped, and still retriggerable
    run = await durably.jobs.steps.trigger({"n": 1}, concurrency_key=key, key_scope="t")
    await durably.process_one(run.id)
    again = await durably.retrigger(run.id)
    assert again.concurrency_key == run.concurrency_key == scoped_key("t", key)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"coalesce": "skip"}, "coalesce requires concurrency_key"),
        ({"coalesce": "merge", "concurrency_key": "k"}, "Invalid coalesce value: 'merge'"),
        ({"idempotency_key": ""}, "idempotency_key must be a non-empty string"),
        ({"concurrency_key": 5}, "concurrency_key must be a non-empty string"),
        ({"labels": {"bad key": "v"}}, "invalid label key 'bad key'"),
        ({"labels": {"org": 1}}, "label 'org' must be a string"),
        ({"labels": ["org"]}, "labels must be a mapping"),
    ],
)
async def test_invalid_options_rejected(
    make_durably: MakeDurably, options: dict[str, object], message: str
) -> None:
    durably = await make_durably({"steps": steps_job})
    with pytest.raises(ValidationError, match=message):
        await durably.jobs.steps.trigger({"n": 1}, **options)  # type: ignore[arg-type]
    assert await durably.get_runs() == []


async def test_labels_model_validates_labels(make_durably: MakeDurably) -> None:
    class Labels(BaseModel):
        org: str
        env: str = "prod"

    durably = await make_durably({"steps": steps_job}, labels=Labels)
    run = await durably.jobs.steps.trigger({"n": 1}, labels={"org": "acme"})
    assert run.labels == {"org": "acme", "env": "prod"}
    with pytest.raises(ValidationError, match="invalid labels: org: Field required"):
        await durably.jobs.steps.trigger({"n": 1}, labels={"env": "dev"})
    assert len(await durably.get_runs()) == 1


async def test_batch_validates_all_first(make_durably: MakeDurably) -> None:
    durably = await make_durably({"steps": steps_job})
    with pytest.raises(ValidationError, match="at index 2: n: Input should be"):
        await durably.jobs.steps.batch_trigger([{"n": 1}, {"n": 2}, {"n": "x"}])
    assert await durably.get_runs() == []
    runs = await durably.jobs.steps.batch_trigger(
        [{"n": 1}, TriggerItem({"n": 2}, labels={"k": "v"}), StepsInput(n=3)]
    )
    assert [r.input["n"] for r in runs] == [1, 2, 3]
    assert runs[1].labels == {"k": "v"}
    assert await durably.jobs.steps.batch_trigger([]) == []


async def test_batch_is_all_or_nothing(make_durably: MakeDurably) -> None:
    durably = await make_durably({"steps": steps_job})
    await durably.jobs.steps.trigger({"n": 1}, concurrency_key="k")
    with pytest.raises(ConflictError):
        await durably.jobs.steps.batch_trigger(
            [TriggerItem({"n": 2}), TriggerItem({"n": 3}, concurrency_key="k")]
        )
    assert len(await durably.get_runs()) == 1


async def test_batch_events_in_order_after_commit(make_durably: MakeDurably) -> None:
    durably = await make_durably({"echo": echo_job})
    seen = []
    durably.on("run:trigger", lambda e: seen.append(e.input["i"]))
    await durably.jobs.echo.batch_trigger([{"i": i} for i in range(5)])
    assert seen == [0, 1, 2, 3, 4]
