"""Jobs only the server tests use."""

from __future__ import annotations

import asyncio
from typing import Any

from durably_web import StepContext, define_job
from tests import jobs


@define_job(name="progress-burst", input=dict[str, int])
async def burst_job(step: StepContext, payload: dict[str, int]) -> dict[str, int]:
    """Wait for the ``burst`` gate, report progress ``n`` times inside one step, finish."""
    n = payload.get("n", 50)
    if payload.get("wait"):
        await step.run("wait", jobs.recorder.gates["burst"].wait)

    def work() -> int:
        for i in range(n):
            step.progress(i + 1, n)
        return n

    done: Any = await step.run("burst", work)
    return {"n": done}


@define_job(name="log-flood", input=dict[str, int])
async def flood_job(step: StepContext, payload: dict[str, int]) -> dict[str, int]:
    """Run ``n`` steps (each waits 1 ms, like I/O), each followed by a ``size``-character log."""
    n, line = payload["n"], "x" * payload["size"]

    async def work(i: int) -> int:
        await asyncio.sleep(0.001)
        return i

    for i in range(n):
        await step.run(f"step-{i}", lambda i=i: work(i))
        step.log.info(line)
    return {"n": n}
