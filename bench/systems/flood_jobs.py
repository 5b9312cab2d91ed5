"""The job ``bench/server_slow_readers.py`` serves with ``durably-web serve-api``.

``bench-flood`` (key ``flood``): ``input["steps"]`` steps ``step-<i>`` (each waits 1 ms, as a
step doing I/O would), each followed by one log line of ``input["log_bytes"]`` characters, so
every ``/runs/subscribe`` stream is sent ``steps x log_bytes`` bytes of ``log:write`` frames
per run.
"""

from __future__ import annotations

import asyncio
from typing import Any

from durably_web import JobDefinition, StepContext, define_job

__all__ = ["JOBS", "flood"]


@define_job(name="bench-flood", input=dict)
async def flood(step: StepContext, payload: dict[str, Any]) -> int:
    """Run ``steps`` quick steps, logging ``log_bytes`` characters after each."""
    steps = int(payload["steps"])
    line = "x" * int(payload["log_bytes"])

    async def work(i: int) -> int:
        await asyncio.sleep(0.001)
        return i

    for i in range(steps):
        await step.run(f"step-{i}", lambda i=i: work(i))
        step.log.info(line)
    return steps


#: What the server serves: registration key -> job.
JOBS: dict[str, JobDefinition[Any, Any]] = {"flood": flood}
