"""Real-time wake-ups: a due sleep and a signal are taken up at once, not at the next poll.

The polling interval here is a minute, so a run that finishes within seconds was woken by the
worker's own timer (the next wake time) or by ``signal()``, not by polling. The 50 ms target
itself is measured in ``bench/waits.py`` (the machine is too noisy for timed unit tests).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from durably_web import create_durably
from tests.integration.test_waits import JOBS


async def test_an_idle_worker_wakes_a_due_sleep_without_polling(tmp_path: Path) -> None:
    durably = create_durably(f"sqlite:///{tmp_path / 'w.db'}", polling_interval=60).register(JOBS)
    await durably.init()
    try:
        run = await durably.jobs.napper.trigger({"nap": 0.3})
        started = time.monotonic()
        done = await durably.wait_for_run(run.id, timeout=10)
        assert done.status == "completed"
        assert 0.3 <= time.monotonic() - started < 10
    finally:
        await durably.close()


async def test_a_signal_wakes_a_waiting_run_without_polling(tmp_path: Path) -> None:
    durably = create_durably(f"sqlite:///{tmp_path / 'w.db'}", polling_interval=60).register(JOBS)
    seen: list[Any] = []
    durably.on("run:wait", seen.append)
    await durably.init()
    try:
        run = await durably.jobs.approval.trigger({})
        for _ in range(500):
            if seen:
                break
            await asyncio.sleep(0.01)
        assert seen, "the run never started waiting"
        await durably.signal(run.id, "approval", "yes")
        done = await durably.wait_for_run(run.id, timeout=10)
        assert done.output == {"decision": "yes"}
    finally:
        await durably.close()
