"""A stale worker whose lease was reclaimed cannot write a step, progress or an outcome.

Two engines on one database (a SQLite file, or PostgreSQL), each with its own connection (pool)
and its own fake clock. Engine A
claims a run and blocks inside a step; its clock stands still, like a process frozen by a GC
pause or SIGSTOP, so it never renews. Engine B's clock moves past the lease, B reclaims the
run (generation + 1), then A wakes up and tries to carry on. Every write A makes from then on
must be refused by the lease fence, and the database must show only B's work.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from durably_web import (
    AbortSignal,
    Durably,
    Event,
    LeaseLost,
    StepContext,
    create_durably,
    define_job,
)
from durably_web.storage.base import Store
from durably_web.storage.records import RunDelta
from durably_web.testing import FakeClock
from tests.databases import TestDatabase, until

# Two engines with connections of their own: a file or a server (not one shared in-memory db).
pytestmark = pytest.mark.parametrize("backend", ["file", "postgres"], indirect=True)

LEASE = 30.0
WAIT = 5.0
"""Real seconds to wait for an engine task before calling the test hung."""
FLUSH_SETTLE = 0.2
"""Real seconds after which a scheduled progress flush (50 ms) has certainly fired."""

FENCED_WRITES = (
    "checkpoint_step",
    "record_failed_step",
    "flush",
    "renew_lease",
    "complete_run",
    "fail_run",
    "release_lease",
)


class FenceInput(BaseModel):
    pass


class FenceOutput(BaseModel):
    first: str
    second: str
    third: str
    worker: str


@dataclass
class StoreSpy:
    """Records what each fenced write of one store returned (or raised) once armed."""

    armed: bool = False
    calls: list[tuple[str, object]] = field(default_factory=list)

    def install(self, store: Store) -> None:
        for name in FENCED_WRITES:
            setattr(store, name, self._wrap(name, getattr(store, name)))

    def _wrap(
        self, name: str, original: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        async def spied(*args: Any, **kwargs: Any) -> Any:
            try:
                result = await original(*args, **kwargs)
            except Exception as exc:
                if self.armed:
                    self.calls.append((name, exc))
                raise
            if self.armed:
                self.calls.append((name, result))
            return result

        return spied

    def accepted(self) -> list[tuple[str, object]]:
        """The armed calls the database did not refuse."""
        return [
            (name, outcome)
            for name, outcome in self.calls
            if not (
                isinstance(outcome, LeaseLost)
                or outcome is False
                or (name == "renew_lease" and outcome is None)
            )
        ]

    def outcomes(self, name: str) -> list[object]:
        return [outcome for called, outcome in self.calls if called == name]


def dump(database: TestDatabase) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the engine keeps, read through a connection of the test's own."""
    return {
        table: sorted(
            (tuple(row.values()) for row in database.query(f"SELECT * FROM {table}")), key=repr
        )
        for table in ("durably_runs", "durably_steps", "durably_logs", "durably_run_labels")
    }


@dataclass
class Engines:
    database: TestDatabase
    a: Durably
    b: Durably
    clock_a: FakeClock
    clock_b: FakeClock
    spy: StoreSpy
    events_a: list[Event]


AMode = Literal["returns", "raises", "swallows"]


@dataclass
class Gates:
    """How the two jobs behave, and the events that hold them inside their steps.

    ``a_mode`` is what A's blocked step does once released: ``returns`` normally;
    ``raises`` an error the job lets propagate (the engine then tries to fail the run);
    ``swallows``: it raises and the job catches everything and returns an output anyway
    (the engine then tries to complete the run). ``b_hold`` keeps B inside its step too.
    """

    a_mode: AMode = "returns"
    b_hold: bool = False
    a_inside: asyncio.Event = field(default_factory=asyncio.Event)
    a_release: asyncio.Event = field(default_factory=asyncio.Event)
    b_inside: asyncio.Event = field(default_factory=asyncio.Event)
    b_release: asyncio.Event = field(default_factory=asyncio.Event)
    a_signal: AbortSignal | None = None
    a_errors: list[BaseException] = field(default_factory=list)


def stale_job(gates: Gates) -> Callable[[StepContext, FenceInput], Awaitable[FenceOutput]]:
    """What A runs: checkpoint ``first``, block in ``second``, then carry on regardless."""

    async def run(step: StepContext, payload: FenceInput) -> FenceOutput:
        await step.run("first", lambda: "A")

        async def second(signal: AbortSignal) -> str:
            gates.a_signal = signal
            gates.a_inside.set()
            await gates.a_release.wait()
            step.progress(99, 100, "stale A")
            step.log.info("stale A log")
            if gates.a_mode != "returns":
                raise RuntimeError("stale A step failed")
            return "A"

        try:
            await step.run("second", second)
        except (LeaseLost, RuntimeError) as exc:
            gates.a_errors.append(exc)
            if gates.a_mode == "raises":
                raise
        try:
            await step.run("third", lambda: "A")
        except LeaseLost as exc:
            gates.a_errors.append(exc)
        return FenceOutput(first="A", second="A", third="A", worker="A")

    return run


def fresh_job(gates: Gates) -> Callable[[StepContext, FenceInput], Awaitable[FenceOutput]]:
    """What B runs: the same steps; ``first`` replays A's checkpoint."""

    async def run(step: StepContext, payload: FenceInput) -> FenceOutput:
        first = await step.run("first", lambda: "B")
        step.progress(1, 3, "B")

        async def second() -> str:
            gates.b_inside.set()
            if gates.b_hold:
                await gates.b_release.wait()
            return "B"

        second_value = await step.run("second", second)
        third = await step.run("third", lambda: "B")
        step.progress(3, 3, "B done")
        step.log.info("B done")
        return FenceOutput(first=first, second=second_value, third=third, worker="B")

    return run


@pytest.fixture
def gates() -> Gates:
    return Gates()


@pytest.fixture
async def engines(database: TestDatabase, gates: Gates) -> AsyncIterator[Engines]:
    clock_a, clock_b = FakeClock(), FakeClock()
    a = create_durably(
        database.target(), clock=clock_a, worker_id="A", preserve_steps=True, lease_duration=LEASE
    )
    b = create_durably(
        database.target(), clock=clock_b, worker_id="B", preserve_steps=True, lease_duration=LEASE
    )
    a.register({"fenced": define_job(name="fenced", input=FenceInput, run=stale_job(gates))})
    b.register(
        {
            "fenced": define_job(
                name="fenced", input=FenceInput, output=FenceOutput, run=fresh_job(gates)
            )
        }
    )
    await a.migrate()
    await b.migrate()
    spy = StoreSpy()
    spy.install(a.store)
    events_a: list[Event] = []
    a.on("*", events_a.append)
    yield Engines(database, a, b, clock_a, clock_b, spy, events_a)
    gates.a_release.set()
    gates.b_release.set()
    await a.close(timeout=0)
    await b.close(timeout=0)


async def claim_and_block_a(engines: Engines, gates: Gates) -> tuple[str, int, asyncio.Task[Any]]:
    """Trigger a run; A claims it, checkpoints ``first`` and blocks inside ``second``."""
    run = await engines.a.jobs.fenced.trigger({})
    task_a = asyncio.create_task(engines.a.process_one())
    await asyncio.wait_for(gates.a_inside.wait(), WAIT)
    await asyncio.sleep(FLUSH_SETTLE)  # A's own progress flush lands while it still holds the lease
    held = await engines.a.get_run(run.id)
    assert held is not None
    assert (held.status, held.lease_owner) == ("leased", "A")
    return run.id, held.lease_generation, task_a


MODES: list[AMode] = ["returns", "raises", "swallows"]


@pytest.mark.parametrize("a_mode", MODES)
@pytest.mark.parametrize("b_state", ["completed", "holding"])
async def test_stale_worker_fenced(
    engines: Engines, gates: Gates, a_mode: AMode, b_state: str
) -> None:
    gates.a_mode, gates.b_hold = a_mode, b_state == "holding"
    run_id, generation_a, task_a = await claim_and_block_a(engines, gates)

    await engines.clock_b.advance(LEASE + 1)
    if b_state == "completed":
        done = await asyncio.wait_for(engines.b.process_one(), WAIT)
        assert done is not None and done.status == "completed"
        assert done.lease_generation == generation_a + 1
        task_b = None
    else:
        task_b = asyncio.create_task(engines.b.process_one())
        await asyncio.wait_for(gates.b_inside.wait(), WAIT)
        await asyncio.sleep(FLUSH_SETTLE)  # B's progress is written before the snapshot
        held = await engines.b.get_run(run_id)
        assert held is not None
        assert (held.status, held.lease_owner) == ("leased", "B")
        assert held.lease_generation == generation_a + 1
    before = dump(engines.database)

    # A wakes up and carries on: every write it attempts must be refused.
    engines.spy.armed = True
    gates.a_release.set()
    await asyncio.wait_for(task_a, WAIT)
    await asyncio.sleep(FLUSH_SETTLE)
    assert dump(engines.database) == before
    assert engines.spy.calls, "A attempted no write at all: the test proves nothing"
    assert engines.spy.accepted() == [], engines.spy.calls
    # Which fenced write the stale engine reached depends on what its job did; each one
    # got as far as the database and was refused there.
    attempted = [(name, type(outcome).__name__) for name, outcome in engines.spy.calls]
    errors = [type(error) for error in gates.a_errors]
    if a_mode == "returns":  # the checkpoint and the pending progress flush
        assert errors == [LeaseLost, LeaseLost]
        assert attempted == [("checkpoint_step", "LeaseLost"), ("flush", "bool")]
    elif a_mode == "raises":  # the failed-step record, then failing the run
        assert errors == [RuntimeError]
        assert attempted == [("record_failed_step", "bool"), ("fail_run", "LeaseLost")]
    else:  # the failed-step record; the next step's lease check aborts the signal, so the
        # job's swallowed LeaseLost still ends the attempt without an outcome write
        assert errors == [RuntimeError, LeaseLost]
        assert attempted == [("record_failed_step", "bool"), ("flush", "bool")]
    a_types = {(e.type, getattr(e, "step_name", None)) for e in engines.events_a}
    assert ("run:complete", None) not in a_types
    assert ("run:fail", None) not in a_types
    assert ("step:complete", "second") not in a_types

    # The fence itself, called directly with A's stale generation.
    store, now = engines.a.store, engines.clock_a.now()
    progress = RunDelta(progress_json='{"current":42}')
    assert await store.flush(run_id, generation_a, progress, now) is False
    assert await store.renew_lease(run_id, generation_a, now, LEASE) is None
    with pytest.raises(LeaseLost):
        await store.checkpoint_step(
            run_id,
            generation_a,
            name="fourth",
            index=3,
            output_json='"A"',
            started_at=now,
            now=now,
            logs=(),
        )
    with pytest.raises(LeaseLost):
        await store.complete_run(
            run_id, generation_a, '{"worker":"A"}', now, RunDelta(), delete_steps=True
        )
    with pytest.raises(LeaseLost):
        await store.fail_run(run_id, generation_a, "stale A failure", now, RunDelta())
    assert dump(engines.database) == before

    if task_b is not None:
        gates.b_release.set()
        done = await asyncio.wait_for(task_b, WAIT)
        assert done is not None and done.status == "completed"

    final = await engines.b.get_run(run_id)
    assert final is not None
    assert final.status == "completed"
    assert final.lease_generation == generation_a + 1
    assert final.output == {"first": "A", "second": "B", "third": "B", "worker": "B"}
    assert final.progress is not None
    assert (final.progress.current, final.progress.total, final.progress.message) == (
        3,
        3,
        "B done",
    )
    assert (final.current_step_index, final.completed_step_count) == (3, 3)
    steps = await engines.b.get_steps(run_id)
    assert [(s.name, s.index, s.status, s.output) for s in steps] == [
        ("first", 0, "completed", "A"),  # A's checkpoint from before the reclaim, replayed by B
        ("second", 1, "completed", "B"),
        ("third", 2, "completed", "B"),
    ]
    messages = [log.message for log in await engines.b.get_logs(run_id)]
    assert messages == ["B done"]


async def test_stale_worker_learns_at_renewal(engines: Engines, gates: Gates) -> None:
    """A stale worker still alive finds out at its next renewal: its signal aborts."""
    gates.b_hold = True
    run_id, _, task_a = await claim_and_block_a(engines, gates)
    await engines.clock_b.advance(LEASE + 1)
    task_b = asyncio.create_task(engines.b.process_one())
    await asyncio.wait_for(gates.b_inside.wait(), WAIT)
    await asyncio.sleep(FLUSH_SETTLE)
    before = dump(engines.database)
    signal = gates.a_signal
    assert signal is not None and not signal.aborted

    engines.spy.armed = True
    await engines.clock_a.advance(engines.a.options.lease_renew_interval)
    await until(lambda: signal.aborted)
    assert signal.reason == "lease-lost"
    assert engines.spy.outcomes("renew_lease") == [None]
    assert any(e.type == "worker:error" and e.run_id == run_id for e in engines.events_a)

    gates.a_release.set()
    await asyncio.wait_for(task_a, WAIT)
    await asyncio.sleep(FLUSH_SETTLE)
    assert dump(engines.database) == before
    assert engines.spy.accepted() == []
    assert isinstance(gates.a_errors[0], LeaseLost)
    gates.b_release.set()
    done = await asyncio.wait_for(task_b, WAIT)
    assert done is not None and done.status == "completed"
    assert done.output == {"first": "A", "second": "B", "third": "B", "worker": "B"}
