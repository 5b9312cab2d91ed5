"""The test doubles shipped to users: crash a job at its Nth commit, resume it."""

from __future__ import annotations

from pathlib import Path

import pytest

from durably_web import StorageError, create_durably
from durably_web.adapters.sqlite3 import SQLite3Connection
from durably_web.testing import FailingConnection, FakeClock, SimulatedCrash
from tests.conftest import MIGRATE_COMMITS
from tests.jobs import Recorder, steps_job


async def test_crash_at_nth_commit_then_resume(tmp_path: Path, recorder: Recorder) -> None:
    inner = SQLite3Connection(str(tmp_path / "t.db"))
    clock = FakeClock()
    crashing = create_durably(
        FailingConnection(inner, fail_on_commit=MIGRATE_COMMITS + 5, crash=True),
        clock=clock,
        preserve_steps=True,
    )
    crashing.register({"steps": steps_job})
    await crashing.migrate()  # one commit per migration
    run = await crashing.jobs.steps.trigger({"n": 6})  # then trigger
    with pytest.raises(SimulatedCrash):
        await crashing.process_one()  # claim (5), steps 0-2 (6-8): dies writing step-2
    await crashing.stop()
    assert [recorder.calls[(run.id, f"step-{i}")] for i in range(3)] == [1, 1, 1]

    await clock.advance(31)  # the dead worker's lease expires
    survivor = create_durably(inner, clock=clock, jobs={"steps": steps_job}, preserve_steps=True)
    final = await survivor.process_one()
    assert final is not None and final.status == "completed"
    assert [recorder.calls[(run.id, f"step-{i}")] for i in range(6)] == [1, 1, 2, 1, 1, 1]
    assert [s.index for s in await survivor.get_steps(run.id)] == list(range(6))
    inner.close()


async def test_failed_commit_raises_storage_error_and_writes_nothing(tmp_path: Path) -> None:
    inner = SQLite3Connection(str(tmp_path / "t.db"))
    flaky = FailingConnection(inner, fail_on_commit=MIGRATE_COMMITS + 1)
    durably = create_durably(flaky, jobs={"steps": steps_job})
    await durably.migrate()
    with pytest.raises(StorageError, match=f"simulated failure of commit #{MIGRATE_COMMITS + 1}"):
        await durably.jobs.steps.trigger({"n": 1})
    assert await durably.get_runs() == []
    assert (await durably.jobs.steps.trigger({"n": 1})).status == "pending"
    assert flaky.commits == MIGRATE_COMMITS + 1
    inner.close()
