"""Claims under contention: many stores (each its own pool) claiming from one queue at once.

Every run is claimed exactly once, and no two live leases ever share a concurrency key, even
across jobs: what ``FOR UPDATE SKIP LOCKED`` and the advisory lock on the key are for.
"""

from __future__ import annotations

import asyncio
import random
import time

from durably_web.storage.postgres import PostgresStore, open_postgres_store
from durably_web.storage.records import NewRun, RunDelta, RunFilter

CLAIMERS = 8
KEYED = 120  # one job per run (one pending run per job and key), 4 keys shared by all jobs
UNKEYED = 120
KEYS = 4


async def test_concurrent_claimers_never_share_a_run_or_a_key(postgres_url: str) -> None:
    stores = [open_postgres_store(postgres_url) for _ in range(CLAIMERS)]
    try:
        await stores[0].migrate(time.time())
        jobs = [f"job-{i}" for i in range(KEYED)] + ["plain"]
        news = [NewRun(f"job-{i}", "{}", concurrency_key=f"k{i % KEYS}") for i in range(KEYED)]
        news += [NewRun("plain", "{}") for _ in range(UNKEYED)]
        random.Random(7).shuffle(news)
        await stores[0].enqueue(news, time.time())

        claimed: list[str] = []
        holding: dict[str, str] = {}  # concurrency key -> the run holding it
        violations: list[str] = []

        async def claimer(store: PostgresStore, owner: str) -> None:
            while True:
                run = await store.claim_next(owner, time.time(), 30.0, jobs)
                if run is None:
                    if len(claimed) == len(news):
                        return
                    await asyncio.sleep(0.005)  # keyed runs may wait for their key
                    continue
                claimed.append(run.id)
                key = run.concurrency_key
                if key is not None:
                    if key in holding:
                        violations.append(f"{run.id} and {holding[key]} both hold {key}")
                    holding[key] = run.id
                await asyncio.sleep(random.uniform(0, 0.004))
                if key is not None:
                    del holding[key]  # before the outcome commits: never a false alarm
                await store.complete_run(
                    run.id, run.lease_generation, None, time.time(), RunDelta(), delete_steps=True
                )

        async with asyncio.timeout(60):
            await asyncio.gather(*(claimer(store, f"w{n}") for n, store in enumerate(stores)))
        assert violations == []
        assert sorted(claimed) == sorted({*claimed}), "a run was claimed twice"
        assert len(claimed) == len(news)
        rows = await stores[0].get_runs(RunFilter())
        assert {(run.status, run.lease_generation) for run in rows} == {("completed", 1)}
    finally:
        for store in stores:
            await store.close()
