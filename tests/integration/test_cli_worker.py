"""``durably-web worker`` and ``schedules`` with the examples, and the examples themselves."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from durably_web import create_durably
from tests.integration.test_cli import ROOT, cli, wait_until

EXAMPLES = ROOT / "examples"


StartWorker = Callable[[Path, Path], "subprocess.Popen[str]"]


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[StartWorker]:
    started: list[subprocess.Popen[str]] = []

    def start(target: Path, db: Path) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "durably_web", "worker", str(target), "--db", str(db)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_worker_declares_its_schedules_and_stops_on_sigterm(
    tmp_path: Path, worker: StartWorker
) -> None:
    db = tmp_path / "reports.db"
    process = worker(EXAMPLES / "nightly_report.py", db)
    wait_until(lambda: cli("schedules", "--db", str(db), cwd=tmp_path).returncode == 0)
    wait_until(lambda: "nightly-report" in cli("schedules", "--db", str(db), cwd=tmp_path).stdout)
    listing = cli("schedules", "--db", str(db), cwd=tmp_path).stdout.splitlines()
    assert listing[0].split() == [
        "NAME",
        "JOB",
        "CRON",
        "TIMEZONE",
        "CATCH-UP",
        "LAST",
        "TICK",
        "NEXT",
        "TICK",
    ]
    assert listing[1].split()[:8] == [
        "nightly-report",
        "nightly-report",
        "0",
        "3",
        "*",
        "*",
        "*",
        "Europe/Berlin",
    ]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    assert process.stderr is not None
    assert "schedule nightly-report: 0 3 * * * (Europe/Berlin), next" in process.stderr.read()


async def test_an_approval_waits_in_the_worker_and_a_cli_signal_resumes_it(
    tmp_path: Path,
    worker: StartWorker,
) -> None:
    db = tmp_path / "approvals.db"
    sys.path.insert(0, str(EXAMPLES))
    try:
        from approval_flow import expense_approval  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(EXAMPLES))
    producer = create_durably(f"sqlite:///{db}", jobs={"expense_approval": expense_approval})
    run = await producer.jobs.expense_approval.trigger({"employee": "ana", "amount": 5})
    await producer.close()
    process = worker(EXAMPLES / "approval_flow.py", db)
    wait_until(
        lambda: (
            "waiting for signal approval"
            in cli("run-info", run.id, "--db", str(db), cwd=tmp_path).stdout
        )
    )
    sent = cli(
        "signal",
        run.id,
        "approval",
        "--payload",
        '{"approved": true, "by": "kim"}',
        "--db",
        str(db),
        cwd=tmp_path,
    )
    assert sent.returncode == 0, sent.stderr
    wait_until(
        lambda: (
            ["Status", "completed"]
            in [
                line.split()
                for line in cli(
                    "run-info", run.id, "--db", str(db), cwd=tmp_path
                ).stdout.splitlines()
            ]
        )
    )  # the run's status line: a completed step says "completed" too
    info = cli("run-info", run.id, "--db", str(db), cwd=tmp_path).stdout
    assert '"approved": true' in info and '"by": "kim"' in info
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0


@pytest.mark.parametrize(
    ("example", "expected"),
    [
        (
            "approval_flow.py",
            "is completed: {'ticket': 'EXP-ana-120', 'approved': True, 'by': 'kim'}",
        ),
        ("flaky_api.py", "completed after 4 calls: {'EUR': 1.0, 'USD': 1.08}"),
        ("nightly_report.py", "ran one now: {'orders': 42}"),
    ],
)
def test_examples_run(example: str, expected: str) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / example)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    assert time.monotonic() - started < 60
