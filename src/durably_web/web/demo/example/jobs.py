"""The live-page example's job (docs/bindings.md): count to ``steps``, one checkpoint a step.

Each step waits ``delay`` seconds, then reports progress and logs a line *inside* the step,
so a run resumed after a reload neither repeats those lines nor moves its progress back
while it replays the steps already done.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from durably_web import StepContext, define_job


class CountInput(BaseModel):
    """How far to count, and how slowly."""

    steps: int = Field(10, ge=1, le=10_000)
    delay: float = Field(0.5, ge=0, le=60, description="seconds each step takes")


class CountOutput(BaseModel):
    """What the run did."""

    counted: int


@define_job(name="count", input=CountInput, output=CountOutput)
async def count(step: StepContext, payload: CountInput) -> CountOutput:
    """Count to ``payload.steps``."""
    for i in range(payload.steps):

        async def tick(i: int = i) -> int:
            await asyncio.sleep(payload.delay)
            step.progress(i + 1, payload.steps, f"step {i + 1} of {payload.steps}")
            step.log.info(f"step {i + 1} done")
            return i

        await step.run(f"tick-{i}", tick)
    return CountOutput(counted=payload.steps)
