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


async def test_schema_is_upstreams(
    postgres_server: PostgresServer, upstream: Upstream, engine: Durably
) -> None:
    theirs_schema = postgres_server.new_schema()
    theirs = postgres_server.schema_url(theirs_schema)
    try:
        await upstream("migrate", theirs)
        await engine.migrate()  # ours, in the engine's own schema
        ours = engine.store.database.conninfo  # type: ignore[attr-defined]
        assert schema_of(ours) == schema_of(theirs)
        assert schema_of(ours)["versions"] == [(1,)]
        # Each side finds the other's database up to date.
        other = create_durably(theirs)
        assert await other.store.migrate(0.0) == []
        await other.close()
        await upstream("migrate", ours)
        assert schema_of(ours)["versions"] == [(1,)]
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
