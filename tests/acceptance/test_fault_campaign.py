"""A short sample of the fault campaign (``fault_campaign.py``) in the default test run.

25 SIGKILLs of 1-4 worker processes, one disk-full and one lock-held interval, then every
check of the full campaign: every run ended, no step ran again after its checkpoint, the
outputs are right and ``PRAGMA integrity_check`` is ``ok``. The full campaign (1,000 kills)
is ``python -m tests.acceptance.fault_campaign --kills 1000``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from durably_web import create_durably
from tests.acceptance import crash_worker
from tests.acceptance.crash_worker import JOBS, create_tables, record_effect

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_short_fault_campaign_passes_every_check(tmp_path: Path) -> None:
    out = tmp_path / "totals.json"
    seed = os.environ.get("CRASH_SEED")
    command = [
        sys.executable,
        "-m",
        "tests.acceptance.fault_campaign",
        "--kills",
        "25",
        "--disk-full",
        "1",
        "--lock-held",
        "1",
        "--dir",
        str(tmp_path),
        "--json",
        str(out),
        *(["--seed", seed] if seed else []),
    ]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    totals = json.loads(out.read_text())
    assert totals["problems"] == []
    assert totals["kills"] == 25
    assert (totals["disk_full_intervals"], totals["lock_held_intervals"]) == (1, 1)
    assert totals["runs"] > 0 and totals["lost_runs"] == 0 and totals["wrong_outcomes"] == 0
    assert totals["reexecutions_after_checkpoint"] == 0
    assert totals["integrity_check"] == "ok"
    assert totals["step_executions"] > 0
    assert sum(totals["outcomes"].values()) == totals["runs"]


async def test_the_checkpoint_detector_flags_a_step_run_after_its_checkpoint(
    tmp_path: Path,
) -> None:
    """The campaign's main check can fail: an execution that finds its checkpoint is flagged."""
    database = tmp_path / "d.db"
    create_tables(str(database))
    durably = create_durably(f"sqlite:///{database}", jobs=JOBS, preserve_steps=True)
    await durably.migrate()
    run = await durably.jobs.chatty.trigger({"steps": 2, "sleep": 0})
    crash_worker._effects = crash_worker.open_effects(str(database))
    crash_worker._engine_reader = crash_worker.open_effects(str(database))
    try:
        record_effect(run.id, "step-0000")  # before any checkpoint: allowed
        await durably.process_one()  # runs both steps: their checkpoints are committed
        record_effect(run.id, "step-0001")  # executing a checkpointed step again
    finally:
        crash_worker._effects.close()
        crash_worker._engine_reader.close()
        crash_worker._effects = crash_worker._engine_reader = None
        await durably.close()
    with closing(sqlite3.connect(database)) as db:
        rows = db.execute(
            "SELECT step_name, after_checkpoint FROM side_effects WHERE pid = ? ORDER BY id",
            (os.getpid(),),
        ).fetchall()
    assert rows[0] == ("step-0000", 0)
    assert rows[-1] == ("step-0001", 1)
