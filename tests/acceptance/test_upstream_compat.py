"""A database with waiting runs and schedules still opens in upstream Durably 0.15 on Node.

durably_web's migrations 0004 (waits, signals, retries) and 0005 (schedules) add columns,
tables and a status upstream does not know. Upstream must still migrate, list, trigger and
process on such a database without errors, and leave the waiting runs alone (its claim takes
only pending runs and expired leases). Upstream is the pinned @coji/durably 0.15.0 of
bench/upstream_node (``npm ci`` there first, as the benchmarks do).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from durably_web import StepContext, create_durably, define_job
from durably_web.storage.queries import migrations

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = ROOT / "bench" / "upstream_node"
SCRIPT = Path(__file__).with_name("upstream_opens.mjs")


@define_job(name="waiter", input=dict[str, Any])
async def waiter(step: StepContext, payload: dict[str, Any]) -> Any:
    await step.run("first", lambda: 1)
    if payload["kind"] == "sleep":
        await step.sleep("nap", 3600)
    else:
        return await step.wait_for_signal("approval")
    return None


def upstream_installed() -> Path:
    """``npm ci`` in bench/upstream_node (as bench/setup_systems.py does); return its path."""
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from setup_systems import setup_node
    finally:
        sys.path.remove(str(ROOT / "bench"))
    setup_node()
    return UPSTREAM


@pytest.mark.slow
async def test_upstream_opens_a_database_with_waiting_runs(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    durably = create_durably(f"sqlite:///{db}", jobs={"waiter": waiter})
    await durably.migrate()
    sleeping = await durably.jobs.waiter.trigger({"kind": "sleep"})
    signalled = await durably.jobs.waiter.trigger({"kind": "signal"})
    delayed = await durably.jobs.waiter.trigger({"kind": "sleep"}, delay=3600)
    await durably.process_until_idle()
    await durably.signal(signalled.id, "other", 1)  # a kept signal row, too
    await durably.schedule("hourly", "waiter", "0 * * * *", {"kind": "sleep"})
    await durably.close()

    runner = tmp_path / "upstream"  # the script beside upstream's node_modules
    runner.mkdir()
    (runner / "node_modules").symlink_to(upstream_installed() / "node_modules")
    shutil.copy(SCRIPT, runner / SCRIPT.name)
    answer = subprocess.run(
        ["node", str(runner / SCRIPT.name), str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    seen = json.loads(answer.stdout.strip().splitlines()[-1])
    statuses = {run["id"]: run["status"] for run in seen["before"]}
    assert statuses == {sleeping.id: "waiting", signalled.id: "waiting", delayed.id: "pending"}
    after = {run["id"]: run["status"] for run in seen["after"]}
    assert after[sleeping.id] == after[signalled.id] == "waiting"  # not claimed by upstream
    # Upstream fails a pending run of a job it does not register (its unknown-job rule), as
    # it would any pending run: a delayed run is pending to it. Waiting runs it never sees.
    assert after[delayed.id] == "failed"
    assert seen["own"] == {"status": "completed", "output": {"n": 7}}

    # And durably_web still has everything: the waits, the schedule, upstream's run.
    again = create_durably(f"sqlite:///{db}", jobs={"waiter": waiter})
    await again.migrate()
    assert (await again.get_run(sleeping.id)).waiting.kind == "sleep"  # type: ignore[union-attr]
    assert [s.name for s in await again.get_schedules()] == ["hourly"]
    assert await again.store.schema_version() == len(migrations())
    await again.close()
