"""Schema and wire compatibility with upstream Durably 0.15 on Node, on one PostgreSQL database.

``upstream/upstream.mjs`` runs upstream's own engine (kysely's PostgresDialect over ``pg``)
against the test's schema. Both directions: runs upstream triggers are claimed, executed and
completed here, and runs triggered here are executed by upstream's worker; each side reads
what the other wrote. The fencing is shared too: a holder whose lease the other side reclaimed
writes nothing more.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import psycopg
import pytest

from durably_web import Durably, StepContext, create_durably, define_job
from tests.databases import until
from tests.postgres.server import PostgresServer

UPSTREAM = Path(__file__).with_name("upstream")
EXPIRED = "2000-01-01T00:00:00.000Z"

Upstream = Callable[..., Coroutine[Any, Any, Any]]

gates: dict[str, asyncio.Event] = {}
entered: dict[str, asyncio.Event] = {}


@define_job(name="compat-steps", input=dict)
async def compat_steps(step: StepContext, payload: dict[str, Any]) -> dict[str, Any]:
    """The Python twin of upstream.mjs's compat-steps."""
    total = 0
    for i in range(payload["n"]):
        total += await step.run(f"step-{i}", lambda i=i: i * i)
        step.progress(i + 1, payload["n"])
    return {"total": total, "tag": payload["tag"], "by": "python"}


@define_job(name="compat-slow", input=dict)
async def compat_slow(step: StepContext, payload: dict[str, Any]) -> dict[str, Any]:
    """The Python twin of compat-slow: its ``hold`` step waits for the test's gate, if any."""
    tag = payload["tag"]
    await step.run("first", lambda: "python")

    async def hold() -> str:
        if tag in gates:
            entered[tag].set()
            await gates[tag].wait()
        return "held by python"

    await step.run("hold", hold)
    await step.run("last", lambda: "python")
    return {"tag": tag, "by": "python"}


JOBS = {"compat_steps": compat_steps, "compat_slow": compat_slow}


@pytest.fixture(scope="session")
def upstream_installed() -> Path:
    """``npm ci`` in tests/postgres/upstream unless node_modules matches the lock."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed for the upstream compatibility tests", pytrace=False)
    installed = UPSTREAM / "node_modules" / ".package-lock.json"
    lock = UPSTREAM / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=UPSTREAM,
            check=True,
            capture_output=True,
            timeout=600,
        )
    return UPSTREAM


@pytest.fixture
def upstream(upstream_installed: Path) -> Upstream:
    """Run one upstream.mjs command in a thread; return its JSON output."""

    async def run(command: str, url: str, *args: str) -> Any:
        def call() -> Any:
            result = subprocess.run(
                ["node", "upstream.mjs", command, url, *args],
                cwd=upstream_installed,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert result.returncode == 0, f"upstream {command} failed:\n{result.stderr}"
            return json.loads(result.stdout)

        return await asyncio.to_thread(call)

    return run


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[Durably]:
    durably = create_durably(postgres_url, jobs=JOBS, preserve_steps=True)
    yield durably
    await durably.close(timeout=5)


@pytest.fixture(autouse=True)
def fresh_gates() -> None:
    gates.clear()
    entered.clear()


def sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as connection:
        cursor = connection.execute(statement)
        return cursor.fetchall() if cursor.description else []


def schema_of(url: str) -> dict[str, Any]:
    """Columns, indexes and constraints of the durably tables in the URL's schema."""
    columns = sql(
        url,
        "SELECT table_name, column_name, data_type, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = current_schema() "
        "ORDER BY table_name, ordinal_position",
    )
    indexes = sql(
        url,
        "SELECT indexname, replace(indexdef, current_schema() || '.', '') FROM pg_indexes "
        "WHERE schemaname = current_schema() ORDER BY indexname",
    )
    versions = sql(url, "SELECT version FROM durably_schema_versions ORDER BY version")
    return {"columns": columns, "indexes": indexes, "versions": versions}


_OWN_COLUMNS = {
    ("durably_runs", "wait_kind"),
    ("durably_runs", "wait_name"),
    ("durably_runs", "wait_until"),
    ("durably_runs", "wait_started_at"),
    ("durably_steps", "attempt"),
    ("durably_steps", "retry_at"),
    *(("durably_signals", c) for c in ("run_id", "name", "payload", "created_at", "received_at")),
    *(
        ("durably_schedules", c)
        for c in (
            "name",
            "job_name",
            "cron",
            "timezone",
            "input",
            "catch_up",
            "next_tick_at",
            "last_tick_at",
            "created_at",
            "updated_at",
        )
    ),
}
"""durably_web's own additions (migrations 2 and 3: waits, signals, retries, schedules; 4: the
claim's index)."""
_OWN_INDEXES = {
    "idx_durably_runs_wait_until",
    "idx_durably_runs_claim_order",
    "durably_signals_pkey",
    "durably_schedules_pkey",
}


async def test_schema_is_upstreams_plus_the_durable_primitives(
    postgres_server: PostgresServer, upstream: Upstream, engine: Durably
) -> None:
    """Upstream's schema exactly, plus nullable columns and tables upstream never reads."""
    theirs_schema = postgres_server.new_schema()
    theirs = postgres_server.schema_url(theirs_schema)
    try:
        await upstream("migrate", theirs)
        await engine.migrate()  # ours, in the engine's own schema
        ours = engine.store.database.conninfo  # type: ignore[attr-defined]
        mine, upstreams = schema_of(ours), schema_of(theirs)
        assert set(upstreams["columns"]) <= set(mine["columns"])
        added = [c for c in mine["columns"] if c not in upstreams["columns"]]
        assert {(table, column) for table, column, *_ in added} == _OWN_COLUMNS
        # Every added column of an upstream table is nullable: upstream's inserts leave it out.
        assert all(
            nullable == "YES" and default is None
            for table, _, _, nullable, default in added
            if table in ("durably_runs", "durably_steps")
        )
        assert set(upstreams["indexes"]) <= set(mine["indexes"])
        assert {name for name, _ in mine["indexes"]} - {
            name for name, _ in upstreams["indexes"]
        } == _OWN_INDEXES
        assert mine["versions"] == [(1,), (2,), (3,), (4,)]
        assert upstreams["versions"] == [(1,)]
        # Each side opens the other's database: this engine adds its migrations to upstream's
        # schema, and upstream finds this engine's database up to date.
        other = create_durably(theirs)
        assert await other.store.migrate(0.0) == [2, 3, 4]
        await other.close()
        assert schema_of(theirs) == mine
        await upstream("migrate", ours)
        assert schema_of(ours) == mine
    finally:
        postgres_server.drop_schema(theirs_schema)


async def test_upstream_triggers_this_engine_executes(
    postgres_url: str, upstream: Upstream, engine: Durably
) -> None:
    specs = [
        {"job": "compat_steps", "input": {"n": 3, "tag": "plain"}, "options": {}},
        {
            "job": "compat_steps",
            "input": {"n": 2, "tag": "labelled"},
            "options": {"labels": {"org": "acme"}, "concurrencyKey": "k1"},
        },
        {
            "job": "compat_steps",
            "input": {"n": 4, "tag": "keyed"},
            "options": {"idempotencyKey": "i1"},
        },
        {
            "job": "compat_steps",
            "input": {"n": 9, "tag": "again"},
            "options": {"idempotencyKey": "i1"},
        },
    ]
    ids = await upstream("trigger", postgres_url, json.dumps(specs))
    assert ids[3] == ids[2]  # upstream's idempotency key, as usual
    await engine.migrate()
    assert await engine.process_until_idle() == 3
    totals = {"plain": 5, "labelled": 1, "keyed": 14}
    for run_id in ids[:3]:
        run = await engine.get_run(run_id)
        assert run is not None and run.status == "completed", run
        assert run.output == {
            "total": totals[run.input["tag"]],
            "tag": run.input["tag"],
            "by": "python",
        }
        assert run.lease_generation == 1
    labelled = await engine.get_run(ids[1])
    assert labelled is not None
    assert (labelled.labels, labelled.concurrency_key) == ({"org": "acme"}, "k1")
    assert [r.id for r in await engine.get_runs(labels={"org": "acme"})] == [ids[1]]
    # Upstream reads what this engine wrote, as it reads its own.
    for entry in await upstream("read", postgres_url, *ids[:3]):
        run, steps = entry["run"], entry["steps"]
        n = run["input"]["n"]
        assert run["status"] == "completed" and run["output"]["by"] == "python"
        assert run["progress"] == {"current": n, "total": n}
        assert (run["currentStepIndex"], run["completedStepCount"]) == (n, n)
        assert [(s["name"], s["index"], s["output"]) for s in steps] == [
            (f"step-{i}", i, i * i) for i in range(n)
        ]


async def test_this_engine_triggers_upstream_executes(
    postgres_url: str, upstream: Upstream, engine: Durably
) -> None:
    plain = await engine.jobs.compat_steps.trigger({"n": 3, "tag": "plain"})
    labelled = await engine.jobs.compat_steps.trigger(
        {"n": 2, "tag": "labelled"}, labels={"org": "acme"}, concurrency_key="k1"
    )
    keyed = await engine.jobs.compat_steps.trigger({"n": 4, "tag": "keyed"}, idempotency_key="i1")
    ids = [plain.id, labelled.id, keyed.id]
    result = await upstream("work", postgres_url, *ids)
    assert result["errors"] == []
    totals = {"plain": 5, "labelled": 1, "keyed": 14}
    for run_id in ids:
        done = await engine.wait_for_run(run_id, timeout=10)
        tag = done.input["tag"]
        assert done.output == {"total": totals[tag], "tag": tag, "by": "node"}
        assert done.lease_generation == 1
        n = done.input["n"]
        assert done.progress is not None and done.progress.total == n  # upstream's last
        # progress write is not awaited and may lose to its completion: not checked here
        steps = await engine.get_steps(run_id)
        assert [(s.name, s.index, s.status, s.output) for s in steps] == [
            (f"step-{i}", i, "completed", i * i) for i in range(n)
        ]
    again = await engine.jobs.compat_steps.trigger({"n": 1, "tag": "x"}, idempotency_key="i1")
    assert (again.id, again.disposition) == (keyed.id, "idempotent")
    assert (await engine.get_run(labelled.id)).labels == {"org": "acme"}  # type: ignore[union-attr]


async def test_upstream_reclaims_from_a_stale_holder_here_which_then_writes_nothing(
    postgres_url: str, upstream: Upstream, engine: Durably
) -> None:
    gates["a"], entered["a"] = asyncio.Event(), asyncio.Event()
    run = await engine.jobs.compat_slow.trigger({"tag": "a", "holdMs": 0})
    holder = asyncio.create_task(engine.process_one(run.id))
    await asyncio.wait_for(entered["a"].wait(), 10)  # "first" checkpointed, "hold" running
    sql(
        postgres_url,
        f"UPDATE durably_runs SET lease_expires_at = '{EXPIRED}' WHERE id = '{run.id}'",
    )
    result = await upstream("work", postgres_url, run.id)
    assert result["errors"] == []
    gates["a"].set()  # the stale holder finishes its step: its checkpoint must be refused
    final = await asyncio.wait_for(holder, 10)
    assert final is not None
    assert (final.status, final.output, final.lease_generation) == (
        "completed",
        {"tag": "a", "by": "node"},
        2,
    )
    steps = await engine.get_steps(run.id)
    assert [(s.name, s.output) for s in steps] == [
        ("first", "python"),  # replayed by upstream from this engine's checkpoint
        ("hold", "held"),  # upstream's: the stale holder's own "hold" was refused
        ("last", "node"),
    ]


async def test_this_engine_reclaims_from_a_stale_upstream_holder_which_then_writes_nothing(
    postgres_url: str, upstream: Upstream, engine: Durably
) -> None:
    run = await engine.jobs.compat_slow.trigger({"tag": "b", "holdMs": 3000})
    worker = asyncio.create_task(upstream("work", postgres_url, run.id))

    async def first_checkpointed() -> bool:
        return [s.name for s in await engine.get_steps(run.id)] == ["first"]

    await until(first_checkpointed, timeout=20)  # upstream now holds "hold" for 3 s
    sql(
        postgres_url,
        f"UPDATE durably_runs SET lease_expires_at = '{EXPIRED}' WHERE id = '{run.id}'",
    )
    final = await engine.process_one(run.id)
    assert final is not None
    assert (final.status, final.output, final.lease_generation) == (
        "completed",
        {"tag": "b", "by": "python"},
        2,
    )
    await asyncio.wait_for(worker, 30)  # upstream's "hold" ends; its checkpoint is refused
    steps = await engine.get_steps(run.id)
    assert [(s.name, s.output) for s in steps] == [
        ("first", "node"),  # replayed here from upstream's checkpoint
        ("hold", "held by python"),  # upstream's stale "hold" was refused
        ("last", "python"),
    ]


@define_job(name="compat-wait", input=dict)
async def compat_wait(step: StepContext, payload: dict[str, Any]) -> Any:
    """Wait for the signal ``go`` (a durably_web primitive upstream does not have)."""
    return await step.wait_for_signal("go")


@define_job(name="compat-nap", input=dict)
async def compat_nap(step: StepContext, payload: dict[str, Any]) -> str:
    """Sleep an hour, durably."""
    await step.sleep("nap", 3600)
    return "rested"


async def test_upstream_works_beside_waiting_runs_and_schedules(
    postgres_url: str, upstream: Upstream
) -> None:
    """A database with waiting runs, a kept signal and a schedule still works in upstream.

    Upstream triggers and executes its own run without an error and leaves the waiting runs
    alone (it never claims a ``waiting`` run); they resume here afterwards.
    """
    durably = create_durably(
        postgres_url,
        jobs={**JOBS, "compat_wait": compat_wait, "compat_nap": compat_nap},
        preserve_steps=True,
    )
    try:
        waiting = await durably.jobs.compat_wait.trigger({})
        napping = await durably.jobs.compat_nap.trigger({})
        assert await durably.process_until_idle() == 2
        await durably.schedule("nightly", "compat_steps", "0 3 * * *", {"n": 1, "tag": "cron"})
        kept = await durably.signal(napping.id, "later", "kept")  # no wait takes it yet
        assert kept.status == "waiting"
        before = {run.id: run for run in await durably.get_runs(status="waiting")}
        assert set(before) == {waiting.id, napping.id}
        spec = [{"job": "compat_steps", "input": {"n": 2, "tag": "node"}, "options": {}}]
        [theirs] = await upstream("trigger", postgres_url, json.dumps(spec))
        result = await upstream("work", postgres_url, theirs)
        assert result["errors"] == []
        assert result["runs"][0]["run"]["status"] == "completed"
        read = await upstream("read", postgres_url, waiting.id, napping.id)
        assert [entry["run"]["status"] for entry in read] == ["waiting", "waiting"]
        for run_id, run in before.items():
            after = await durably.get_run(run_id)
            assert after is not None and after.status == "waiting"
            assert after.lease_generation == run.lease_generation  # never claimed upstream
        await durably.signal(waiting.id, "go", {"from": "python"})
        assert await durably.process_until_idle() == 1
        done = await durably.get_run(waiting.id)
        assert done is not None and (done.status, done.output) == ("completed", {"from": "python"})
    finally:
        await durably.close(timeout=5)
