"""The command line shows waiting runs (``runs``, ``run-info``) and sends signals (``signal``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from durably_web import Clock, Durably, SystemClock, create_durably
from tests.integration.test_cli import cli, query
from tests.integration.test_waits import JOBS

UTC_ENV = {**os.environ, "TZ": "UTC"}
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class Frozen:
    """A clock standing still at ``START`` (the runs' wake times are then known)."""

    def now(self) -> float:
        return START

    async def sleep(self, seconds: float) -> None:
        raise AssertionError("not used: the test drives the engine by hand")


async def waiting_runs(db: Path, clock: Clock | None = None) -> tuple[Durably, str, str]:
    durably = create_durably(f"sqlite:///{db}", clock=clock or Frozen()).register(JOBS)
    await durably.migrate()
    napper = await durably.jobs.napper.trigger({"nap": 3600})
    approval = await durably.jobs.approval.trigger({"timeout": 86_400})
    await durably.process_until_idle()
    return durably, napper.id, approval.id


async def test_runs_and_run_info_say_what_a_run_waits_for(tmp_path: Path) -> None:
    durably, napper, approval = await waiting_runs(tmp_path / "durably.db")
    await durably.close()

    listing = cli("runs", "--status", "waiting", cwd=tmp_path, env=UTC_ENV)
    assert listing.returncode == 0, listing.stderr
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()[1:]}
    assert "waiting: sleeping until 2026-01-01 01:00:00" in rows[napper]
    assert "waiting: waiting for signal approval (times out 2026-01-02 00:00:00)" in rows[approval]

    info = cli("run-info", approval, cwd=tmp_path, env=UTC_ENV)
    assert info.returncode == 0, info.stderr
    fields = dict(line.split(None, 1) for line in info.stdout.splitlines()[:4])
    assert fields["Status"] == "waiting"
    assert fields["Waiting"] == "waiting for signal approval (times out 2026-01-02 00:00:00)"


async def test_signal_delivers_a_payload_that_the_next_worker_takes(tmp_path: Path) -> None:
    db = tmp_path / "durably.db"
    durably, _napper, approval = await waiting_runs(db, SystemClock())  # as the CLI's

    sent = cli("signal", approval, "approval", "--payload", '{"ok": true}', cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == (
        f"Sent signal approval to run {approval}: it resumes at the next poll of its worker"
    )
    again = cli("signal", approval, "approval", cwd=tmp_path)
    assert again.returncode == 1
    assert "already has a signal 'approval'" in again.stderr
    assert cli("signal", "01JZZZZZZZZZZZZZZZZZZZZZZZ", "x", cwd=tmp_path).returncode == 1
    bad = cli("signal", approval, "other", "--payload", "{nope", cwd=tmp_path)
    assert bad.returncode == 2
    assert query(db, "SELECT count(*) FROM durably_signals") == [(1,)]  # nothing more written

    assert await durably.process_until_idle() == 1
    done = await durably.get_run(approval)
    assert done is not None and done.output == {"decision": {"ok": True}}
    await durably.close()


def test_run_prints_when_its_run_sleeps(tmp_path: Path) -> None:
    jobs = Path(__file__).with_name("test_waits.py")
    started = time.monotonic()
    result = cli("run", f"{jobs}:napper", "--input", '{"nap": 1}', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 1
    assert "is sleeping until" in result.stdout + result.stderr
