"""The browser worker's boot (``durably_web.browser.boot``), on Pyodide over the real bridge.

Only the Pyodide runs have it (``tests/pyodide``: under Node with sqlite-wasm, and in Chromium
on OPFS): CPython's pytest does not collect ``tests/in_pyodide``, and
``tests/pyodide/test_in_pyodide.py`` fails if this test did not pass under Node.

The page's init config carries the event types it listens for; the boot registers them on the
host before the engine reclaims the runs of the engine that died with the last page, so the
page sees a reclaimed run's ``run:start`` and progress (it used to get them only from a
``getRuns`` snapshot: the engine claimed the run before any ``listen`` request could come).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

JOBS = """
from pydantic import BaseModel

from durably_web import StepContext, define_job


class WorkInput(BaseModel):
    steps: int = 3


@define_job(name="boot-work", input=WorkInput)
async def work(step: StepContext, payload: WorkInput) -> dict[str, int]:
    for i in range(payload.steps):
        await step.run(f"s{i}", lambda i=i: i)
        step.progress(i + 1, payload.steps)
    return {"steps": payload.steps}
"""


async def test_boot_forwards_the_events_of_a_run_it_reclaims(
    bridge: Any, database_file: str, tmp_path: Path
) -> None:
    from durably_web import create_durably
    from durably_web.adapters.pyodide import PyodideConnection
    from durably_web.browser.boot import PRAGMAS, boot
    from durably_web.storage.sqlite import SQLiteStore

    module = f"boot_jobs_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(JOBS)
    sys.path.insert(0, str(tmp_path))
    jobs = __import__(module)

    # The last page's engine: it leased the run for an hour, then died with its page.
    store = SQLiteStore(PyodideConnection(bridge, database_file, PRAGMAS["NORMAL"]))
    dead = create_durably(store, jobs={"work": jobs.work})
    await dead.migrate()
    run = await dead.jobs.work.trigger({"steps": 3})
    claimed = await store.claim_next("dead-worker", time.time(), 3600, ["boot-work"])
    assert claimed is not None and claimed.id == run.id
    await store.close()

    posted: list[dict[str, Any]] = []
    host = await boot(
        bridge,
        lambda text: posted.append(json.loads(text)),
        database=database_file,
        jobs_module=module,
        module_dir=str(tmp_path),
        listen=["run:start", "run:progress", "run:complete"],
    )
    try:
        for _ in range(600):
            done = await host.durably.get_run(run.id)
            if done is not None and done.status == "completed":
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"the reclaimed run did not complete: {done}")
        await asyncio.sleep(0.05)  # the last batch of events goes out on the next loop turn
        events = [
            event
            for message in posted
            if message["type"] == "events"
            for event in message["events"]
            if event["runId"] == run.id
        ]
        types = [event["type"] for event in events]
        # No listen request was ever sent: the init config's types were listened for first.
        assert types == [
            "run:leased",
            "run:progress",
            "run:progress",
            "run:progress",
            "run:complete",
        ], types
        assert events[0]["leaseOwner"] == host.durably.worker_id != "dead-worker"  # reclaimed
        progress = [e["progress"]["current"] for e in events if e["type"] == "run:progress"]
        assert progress == [1, 2, 3], progress
    finally:
        await host.durably.stop(timeout=5)
        await host.durably.store.close()
        sys.path.remove(str(tmp_path))
