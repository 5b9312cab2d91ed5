"""The batched checkpoint mode: steps grouped into one transaction, within the bounds.

Crash tests of this mode (real processes killed with SIGKILL) are in
``tests/acceptance/test_crash.py``; these check when a group is committed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import pytest

from durably_web import Durably, StepContext, ValidationError, create_durably, define_job
from durably_web.clock import SystemClock, format_timestamp
from durably_web.storage.connection import Connection
from durably_web.storage.queries import queries
from durably_web.testing import FakeClock
from tests.conftest import MakeDurably, sql_connection
from tests.databases import SQLITE_BACKENDS, TestDatabase


@pytest.fixture(params=SQLITE_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The SQLite backends only: the PostgreSQL store commits each checkpoint (refused below)."""
    return str(request.param)


def _committed(durably: Any, run_id: str) -> list[str]:
    rows = sql_connection(durably).query(
        'SELECT name FROM durably_steps WHERE run_id = ? ORDER BY "index"', (run_id,)
    )
    return [row["name"] for row in rows]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"checkpoint": "sometimes"}, "checkpoint must be 'each' or 'batched'"),
        ({"checkpoint": "batched", "checkpoint_max_steps": 0}, "checkpoint_max_steps"),
        ({"checkpoint": "batched", "checkpoint_max_steps": True}, "checkpoint_max_steps"),
        ({"checkpoint": "batched", "checkpoint_max_delay": -1}, "checkpoint_max_delay"),
        ({"checkpoint": "batched", "checkpoint_max_delay": 3600}, "checkpoint_max_delay"),
    ],
)
def test_bad_checkpoint_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        create_durably("sqlite:///:memory:", **options)


def test_bad_job_checkpoint_is_refused() -> None:
    with pytest.raises(ValidationError, match="checkpoint of job 'j' must be"):
        define_job(name="j", input=dict, run=lambda step, payload: None, checkpoint="always")  # type: ignore[call-overload]


async def test_a_full_group_commits_before_the_next_step_runs(make_durably: MakeDurably) -> None:
    seen: list[list[str]] = []

    async def run(step: StepContext, payload: dict[str, Any]) -> int:
        for i in range(12):
            await step.run(f"s{i}", lambda i=i: i)
            seen.append(_committed(durably, step.run_id))
        return 12

    job = define_job(name="grouped", input=dict, run=run)
    durably = await make_durably(
        {"grouped": job},
        preserve_steps=True,
        checkpoint="batched",
        checkpoint_max_steps=5,
        checkpoint_max_delay=60,
    )
    handle = await durably.jobs.grouped.trigger({})
    final = await durably.process_one()
    assert final is not None and final.status == "completed", final
    # Steps 0-4 wait (the fifth fills the group); the sixth step.run commits the full group
    # before its function runs, and so on: never more than 5 steps uncommitted.
    assert [len(names) for names in seen] == [0, 0, 0, 0, 0, 5, 5, 5, 5, 5, 10, 10]
    assert _committed(durably, handle.id) == [f"s{i}" for i in range(12)]  # the outcome's
    steps = await durably.get_steps(handle.id)
    assert [(s.index, s.output) for s in steps] == [(i, i) for i in range(12)]
    assert (final.current_step_index, final.completed_step_count) == (12, 12)


@pytest.mark.parametrize("preserve_steps", [True, False])
async def test_a_run_whose_last_step_fills_its_group_writes_it_with_the_outcome(
    database: TestDatabase, preserve_steps: bool
) -> None:
    # Five steps, max_steps=5: the fifth fills the group and the run ends, so the group goes
    # with the outcome: one write of the run's steps at most (none when they are deleted).
    async def run(step: StepContext, payload: dict[str, Any]) -> int:
        for i in range(5):
            await step.run(f"s{i}", lambda i=i: i)
        return 5

    connection = _JsonRows(database.connection())
    durably = create_durably(
        connection,
        checkpoint="batched",
        checkpoint_max_steps=5,
        checkpoint_max_delay=60,
        preserve_steps=preserve_steps,
    ).register({"five": define_job(name="five", input=dict, run=run)})
    try:
        await durably.migrate()
        handle = await durably.jobs.five.trigger({})
        final = await durably.process_one()
        assert final is not None and final.status == "completed", final
        assert (final.current_step_index, final.completed_step_count) == (5, 5)
        assert connection.batches == 1  # the outcome's write, and no group commit before it
        expected = [f"s{i}" for i in range(5)] if preserve_steps else []
        assert _committed(durably, handle.id) == expected
    finally:
        await durably.close(timeout=0)


async def test_group_commits_after_max_delay_while_the_job_awaits(
    make_durably: MakeDurably,
) -> None:
    seen: list[list[str]] = []

    async def run(step: StepContext, payload: dict[str, Any]) -> None:
        await step.run("a", lambda: 1)
        await step.run("b", lambda: 2)
        seen.append(_committed(durably, step.run_id))
        await asyncio.sleep(0.3)  # the group's timer fires meanwhile
        seen.append(_committed(durably, step.run_id))

    job = define_job(name="timed", input=dict, run=run)
    durably = await make_durably(
        {"timed": job}, checkpoint="batched", checkpoint_max_delay=0.05, checkpoint_max_steps=100
    )
    await durably.jobs.timed.trigger({})
    final = await durably.process_one()
    assert final is not None and final.status == "completed", final
    assert seen == [[], ["a", "b"]]


def _busy(seconds: float) -> None:
    """Block the event loop for ``seconds``: a busy wait (Pyodide in Chromium may run the
    loop during ``time.sleep``, suspending the WebAssembly stack with JSPI)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.mark.parametrize("clock_kind", ["system", "fake"])
async def test_a_step_finishing_past_max_delay_commits_the_group_before_it_returns(
    make_durably: MakeDurably, clock_kind: str
) -> None:
    # The group's age is measured with the steps' own finish times on the system clock (no
    # clock read of its own), with time.monotonic() on any other: both see a step that blocked
    # the loop past max_delay, whose step.run then commits the group before returning (the
    # group's timer cannot fire: nothing awaits in between).
    seen: list[list[str]] = []

    async def run(step: StepContext, payload: dict[str, Any]) -> None:
        await step.run("a", lambda: 1)
        await step.run("b", lambda: 2)
        seen.append(_committed(durably, step.run_id))  # not due yet: both kept
        await step.run("slow", lambda: _busy(0.15))  # blocks the loop past max_delay
        seen.append(_committed(durably, step.run_id))

    options: dict[str, Any] = {"clock": SystemClock()} if clock_kind == "system" else {}
    durably = await make_durably(
        {"slow": define_job(name="slow", input=dict, run=run)},
        checkpoint="batched",
        checkpoint_max_delay=0.1,
        checkpoint_max_steps=100,
        preserve_steps=True,
        **options,
    )
    await durably.jobs.slow.trigger({})
    final = await durably.process_one()
    assert final is not None and final.status == "completed", final
    assert seen == [[], ["a", "b", "slow"]]


async def test_progress_reaches_the_database_with_the_steps_before_it(
    make_durably: MakeDurably,
) -> None:
    stored: list[tuple[Any, list[str]]] = []

    async def run(step: StepContext, payload: dict[str, Any]) -> None:
        for i in range(3):
            await step.run(f"s{i}", lambda: None)
        step.progress(3, 10)
        await asyncio.sleep(0.3)  # the progress flush (50 ms) carries the kept steps
        rows = sql_connection(durably).query(
            "SELECT progress FROM durably_runs WHERE id = ?", (step.run_id,)
        )
        stored.append((rows[0]["progress"], _committed(durably, step.run_id)))

    job = define_job(name="shown", input=dict, run=run)
    durably = await make_durably(
        {"shown": job}, checkpoint="batched", checkpoint_max_delay=60, checkpoint_max_steps=100
    )
    await durably.jobs.shown.trigger({})
    await durably.process_one()
    [(progress, names)] = stored
    assert progress is not None and '"current":3' in progress
    assert names == ["s0", "s1", "s2"]


async def test_a_failing_step_writes_the_kept_group_first(make_durably: MakeDurably) -> None:
    def boom() -> None:
        raise RuntimeError("boom")

    async def run(step: StepContext, payload: dict[str, Any]) -> None:
        await step.run("ok", lambda: "fine")
        await step.run("bad", boom)

    job = define_job(name="fails", input=dict, run=run)
    durably = await make_durably(
        {"fails": job}, checkpoint="batched", checkpoint_max_delay=60, checkpoint_max_steps=100
    )
    handle = await durably.jobs.fails.trigger({})
    final = await durably.process_one()
    assert final is not None and final.status == "failed"
    steps = await durably.get_steps(handle.id)
    assert [(s.name, s.status) for s in steps] == [("ok", "completed"), ("bad", "failed")]


async def test_a_job_may_choose_its_own_mode(make_durably: MakeDurably) -> None:
    seen: list[list[str]] = []

    async def run(step: StepContext, payload: dict[str, Any]) -> None:
        await step.run("a", lambda: 1)
        seen.append(_committed(durably, step.run_id))

    each = define_job(name="each", input=dict, run=run, checkpoint="each")
    batched = define_job(name="batched", input=dict, run=run, checkpoint="batched")
    durably = await make_durably(
        {"each": each, "batched": batched},
        checkpoint="batched",
        checkpoint_max_delay=60,
        preserve_steps=True,
    )
    await durably.jobs.each.trigger({})
    await durably.process_one()
    await durably.jobs.batched.trigger({})
    await durably.process_one()
    assert seen == [["a"], []]


_QUERIES = queries()


class _JsonRows:
    """A connection that asks for kept steps as one JSON text (as the browser's does), and
    counts its batches and the statements of them that insert kept steps, by form."""

    json_rows = True

    def __init__(self, inner: Connection) -> None:
        self._inner = inner
        self.forms: dict[str, int] = {"json": 0, "bound": 0}
        self.batches = 0

    def run_batch(
        self, statements: Sequence[tuple[str, Sequence[Any]]], guard: bool = False
    ) -> bool:
        self.batches += 1
        for sql, _ in statements:
            if sql == _QUERIES["insert_kept_steps"]:
                self.forms["json"] += 1
            elif sql == _QUERIES["insert_kept_step"]:
                self.forms["bound"] += 1
        return self._inner.run_batch(statements, guard)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


# Step results a JSON text must carry unchanged: quotes, backslashes, escapes, non-ASCII
# (BMP and beyond), big and negative numbers, nesting, and None (SQL NULL, not 'null').
_RESULTS: list[Any] = [
    None,
    "",
    'a "quoted" \\ back\\slash, a tab\t and a new\nline',
    "caf\u00e9 \u65e5\u672c \U0001f642",
    2**62,
    -0.5,
    True,
    {"a": [1, 2.5, None, False], "b": {"c": "\u2028"}},
    [],
]


def _one_group_engine(target: Any, clock: FakeClock, name: str, run: Any) -> Durably:
    """An engine on ``target`` whose job ``name`` keeps every step of a run in one group
    (batched, a bound the test never reaches), its steps preserved to be read back."""
    return create_durably(
        target,
        clock=clock,
        checkpoint="batched",
        checkpoint_max_delay=60,
        checkpoint_max_steps=100,
        preserve_steps=True,
    ).register({name: define_job(name=name, input=dict, run=run)})


@pytest.mark.parametrize("json_rows", [False, True], ids=["bound", "json"])
async def test_a_group_stores_each_kept_step_as_its_own_checkpoint_would(
    database: TestDatabase, clock: FakeClock, json_rows: bool
) -> None:
    # The kept steps after a group's first go in as one JSON text when the connection asks
    # for it (Connection.json_rows: the browser's); every column must come out as binding
    # each value stores it. The Pyodide tier runs this with the bridge's own connection.
    names = [f'step {i} \u00fc"\\' for i in range(len(_RESULTS))]

    async def run(step: StepContext, payload: dict[str, Any]) -> int:
        for name, result in zip(names, _RESULTS, strict=True):
            await step.run(name, lambda result=result: result)
        return len(names)

    connection = database.connection()
    target: Any = _JsonRows(connection) if json_rows else connection
    durably = _one_group_engine(target, clock, "kept", run)
    try:
        await durably.migrate()
        handle = await durably.jobs.kept.trigger({})
        final = await durably.process_one()
        assert final is not None and final.status == "completed", final
        rows = connection.query(
            'SELECT name, "index", typeof("index") AS index_type, status, output, error, '
            "attempt, retry_at, started_at, completed_at FROM durably_steps "
            'WHERE run_id = ? ORDER BY "index"',
            (handle.id,),
        )
        stamp = format_timestamp(clock.now())
        assert rows == [
            {
                "name": name,
                "index": index,
                "index_type": "integer",
                "status": "completed",
                "output": None
                if result is None
                else json.dumps(result, separators=(",", ":"), ensure_ascii=False),
                "error": None,
                "attempt": 1,
                "retry_at": None,
                "started_at": stamp,
                "completed_at": stamp,
            }
            for index, (name, result) in enumerate(zip(names, _RESULTS, strict=True))
        ]
        steps = await durably.get_steps(handle.id)
        assert [s.output for s in steps] == _RESULTS
        if isinstance(target, _JsonRows):  # one group: its first fenced, the rest one text
            assert target.forms == {"json": 1, "bound": 0}
    finally:
        await durably.close(timeout=0)


async def test_a_group_too_large_for_one_json_text_binds_its_steps_one_by_one(
    database: TestDatabase, clock: FakeClock
) -> None:
    # Kept steps whose JSON text would pass a mebi-character go one value at a time: a
    # bridge copies a text whole into SQLite's heap, and no single result asks for as much.
    big = ["x" * 400_000, "y" * 400_000, "z" * 400_000, "w" * 400_000]

    async def run(step: StepContext, payload: dict[str, Any]) -> int:
        for i, text in enumerate(big):
            await step.run(f"s{i}", lambda text=text: text)
        return len(big)

    connection = _JsonRows(database.connection())
    durably = _one_group_engine(connection, clock, "big", run)
    try:
        await durably.migrate()
        handle = await durably.jobs.big.trigger({})
        final = await durably.process_one()
        assert final is not None and final.status == "completed", final
        assert connection.forms == {"json": 0, "bound": 3}
        steps = await durably.get_steps(handle.id)
        assert [s.output for s in steps] == big
    finally:
        await durably.close(timeout=0)


def test_batched_is_refused_on_postgresql() -> None:
    with pytest.raises(ValidationError, match="checkpoint='batched' needs a store that groups"):
        create_durably("postgresql://user@localhost/db", checkpoint="batched")
