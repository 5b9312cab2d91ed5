"""The claim reads the run ready longest from an index, never sorting every claimable run.

With 10,000 runs due at once (a mass wake-up of sleeping runs, or a backlog of triggers) a
claim that sorts its candidates costs O(n), and draining them O(n^2): the claim's ``ORDER BY``
expression has an index of its own (migration 0004). This pins that PostgreSQL's plan for
both claim statements, with the values bound (custom plan) and without (the generic plan a
prepared statement ends up with), scans that index in order and has no sort; so a change of
the claim's order that the index no longer matches fails here, not in a benchmark.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from durably_web.clock import format_timestamp
from durably_web.storage.postgres import open_postgres_store
from durably_web.storage.postgres.store import _load_queries

INDEX = "idx_durably_runs_claim_order"
DUE = 5_000
SIGNAL_WAITS = 5_000  # waiting for a signal with no timeout: never due by time


def populate(url: str, now: float) -> None:
    """Due sleeping runs, signal waits in front of them (older), and finished runs."""
    older, past = format_timestamp(now - 7200), format_timestamp(now - 60)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO durably_runs (id, job_name, input, status, created_at, updated_at, "
            "wait_kind, wait_name, wait_until, wait_started_at) "
            "SELECT 'D' || lpad(g::text, 25, '0'), 'nap', '{}', 'waiting', %(older)s, %(older)s, "
            "'sleep', 'nap', %(past)s, %(older)s FROM generate_series(1, %(due)s) g",
            {"older": older, "past": past, "due": DUE},
        )
        connection.execute(
            "INSERT INTO durably_runs (id, job_name, input, status, created_at, updated_at, "
            "wait_kind, wait_name, wait_started_at) "
            "SELECT 'S' || lpad(g::text, 25, '0'), 'nap', '{}', 'waiting', %(older)s, %(older)s, "
            "'signal', 'go', %(older)s FROM generate_series(1, %(n)s) g",
            {"older": older, "n": SIGNAL_WAITS},
        )
        connection.execute(
            "INSERT INTO durably_runs (id, job_name, input, status, created_at, updated_at, "
            "completed_at) SELECT 'C' || lpad(g::text, 25, '0'), 'nap', '{}', 'completed', "
            "%(older)s, %(older)s, %(older)s FROM generate_series(1, 5000) g",
            {"older": older},
        )
        connection.execute("ANALYZE durably_runs")


def plan(url: str, sql: str, params: dict[str, Any], *, generic: bool) -> str:
    """Return the text of PostgreSQL's plan for ``sql`` (rolled back: nothing is leased)."""
    with psycopg.connect(url) as connection:  # one transaction, rolled back on leaving
        if generic:
            connection.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        rows = connection.execute(f"EXPLAIN (COSTS OFF) {sql}", params, prepare=generic)
        text = "\n".join(str(row[0]) for row in rows.fetchall())
        connection.rollback()
    return text


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
@pytest.mark.parametrize("query", ["claim_fast", "claim_candidate"])
async def test_the_claim_scans_its_index_in_order_without_sorting(
    postgres_url: str, query: str, generic: bool
) -> None:
    store = open_postgres_store(postgres_url)
    now = time.time()
    await store.migrate(now)
    await store.close()
    populate(postgres_url, now)
    params = {
        "now": format_timestamp(now),
        "jobs": ["nap", "other"],
        "run_id": None,
        "owner": "w",
        "expires": format_timestamp(now + 30),
        "skip": [],
        "ready_channel": "durably_ready",
        "run_channel": "durably_run",
        "origin": "o",
    }
    text = plan(postgres_url, _load_queries()[query], params, generic=generic)
    assert f"Index Scan using {INDEX} on durably_runs r" in text, text
    assert "Sort" not in text, text


async def test_the_claim_still_takes_the_run_due_longest(postgres_url: str) -> None:
    """The index changes how the run is found, not which: the oldest due run comes first."""
    store = open_postgres_store(postgres_url)
    now = time.time()
    await store.migrate(now)
    populate(postgres_url, now)
    try:
        claimed = await store.claim_next("w", now, 30.0, ["nap"])
        assert claimed is not None and claimed.id == "D" + "1".zfill(25)
        second = await store.claim_next("w", now, 30.0, ["nap"])
        assert second is not None and second.id == "D" + "2".zfill(25)
    finally:
        await store.close()
