"""The job of the multi-tab check page (tabs.html beside it): short runs of a few steps.

Each step reports progress, so every tab can show every run's progress.
"""

import asyncio

from pydantic import BaseModel, Field

from durably_web import StepContext, define_job


class TickInput(BaseModel):
    """How many steps, and how long each takes."""

    steps: int = Field(3, ge=1, le=1000)
    delay_ms: int = Field(0, ge=0, le=10_000)


async def _tick(delay_ms: int, index: int) -> int:
    if delay_ms:
        await asyncio.sleep(delay_ms / 1000)
    return index


@define_job(name="tick", input=TickInput)
async def tick(step: StepContext, payload: TickInput) -> dict[str, int]:
    """Run ``steps`` checkpointed steps, reporting progress after each."""
    for index in range(payload.steps):
        await step.run(f"s{index}", lambda index=index: _tick(payload.delay_ms, index))
        step.progress(index + 1, payload.steps)
    return {"steps": payload.steps}


jobs = {"tick": tick}
