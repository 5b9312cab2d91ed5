"""The live views' test page's job (/live/): ``slow`` counts, a checkpointed step at a time.

Each step sleeps ``delay_ms``, then reports progress and logs a line inside the step (so a
run resumed after a reload replays its finished steps without repeating either). With
``fail_at``, that step fails on the run's first attempt in this worker (a retry passes).
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from durably_web import StepContext, define_job

_FAILED: set[str] = set()  # runs whose fail_at step has failed once (in this worker)


class SlowInput(BaseModel):
    """How many steps, how slow, and which one fails once."""

    steps: int = Field(5, ge=1, le=10_000)
    delay_ms: int = Field(100, ge=0, le=60_000)
    fail_at: int | None = None


@define_job(name="slow", input=SlowInput)
async def slow(step: StepContext, payload: SlowInput) -> dict[str, int]:
    """Count to ``payload.steps``."""
    for i in range(payload.steps):

        async def tick(i: int = i) -> int:
            await asyncio.sleep(payload.delay_ms / 1000)
            if i == payload.fail_at and step.run_id not in _FAILED:
                _FAILED.add(step.run_id)
                raise RuntimeError(f"step {i} failed once")
            step.progress(i + 1, payload.steps, f"step {i + 1}")
            step.log.info(f"step {i + 1} done")
            return i

        await step.run(f"s{i}", tick)
    return {"counted": payload.steps}
