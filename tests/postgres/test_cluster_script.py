"""``scripts/postgres``: no throwaway cluster outlives the process it belongs to.

Real clusters, started for a stand-in owner process that the test then SIGKILLs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.postgres.server import SCRIPT


def start_for(owner: int) -> Path:
    result = subprocess.run(
        [str(SCRIPT), "start", "--owner", str(owner)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    values = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return Path(values["DIR"])


def processes(needle: str) -> list[int]:
    """The pids whose command line contains ``needle`` (read from /proc: no procps needed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                )
            except OSError:  # it ended meanwhile
                continue
            if needle in command:
                found.append(int(entry.name))
    return found


def postmaster_running(directory: Path) -> bool:
    return bool(processes(f"postgres -D {directory}/data"))


def wait_gone(directory: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while directory.exists() or postmaster_running(directory):
        assert time.monotonic() < deadline, f"{directory} outlived its owner"
        time.sleep(0.2)


def watchdog_of(directory: Path) -> int:
    pids = processes(f"postgres watch {directory} ")
    assert len(pids) == 1, pids
    return pids[0]


def test_a_cluster_stops_when_its_owner_is_killed() -> None:
    owner = subprocess.Popen(["sleep", "600"])
    directory = start_for(owner.pid)
    try:
        assert postmaster_running(directory)
        owner.kill()
        owner.wait()
        wait_gone(directory)
    finally:
        subprocess.run([str(SCRIPT), "stop", str(directory)], capture_output=True, check=False)


def test_the_next_start_stops_a_cluster_whose_watchdog_was_killed_too() -> None:
    owner = subprocess.Popen(["sleep", "600"])
    orphan = start_for(owner.pid)
    second = None
    try:
        os.kill(watchdog_of(orphan), signal.SIGKILL)
        owner.kill()
        owner.wait()
        time.sleep(1.5)
        assert postmaster_running(orphan)  # nobody watches it any more
        second = start_for(os.getpid())
        wait_gone(orphan, timeout=5)  # the start stopped it before it returned
        assert postmaster_running(second)
    finally:
        for directory in (orphan, second):
            if directory is not None:
                subprocess.run(
                    [str(SCRIPT), "stop", str(directory)], capture_output=True, check=False
                )
