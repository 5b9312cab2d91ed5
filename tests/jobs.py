"""Jobs the semantics tests run, and a recorder of what their step functions actually did."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from typing import Any

from pydantic import BaseModel

from durably_web import StepContext, define_job


class Recorder:
    """Counts step-function executions and holds gates that tests open."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.gates: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.entered: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.healed = False

    def record(self, run_id: str, step: str) -> None:
        self.calls[(run_id, step)] += 1

    def count(self, run_id: str) -> int:
        return sum(n for (rid, _), n in self.calls.items() if rid == run_id)


recorder = Recorder()


class StepsInput(BaseModel):
    n: int = 3
    fail_at: int | None = None
    gate_at: int | None = None
    gate: str = "default"


class StepsOutput(BaseModel):
    total: int


@define_job(name="steps", input=StepsInput, output=StepsOutput)
async def steps_job(step: StepContext, payload: StepsInput) -> StepsOutput:
    """Run ``n`` steps; fail at ``fail_at`` (until healed); wait on ``gate`` in step ``gate_at``."""
    total = 0
    for i in range(payload.n):

        async def work(i: int = i) -> int:
            recorder.record(step.run_id, f"step-{i}")
            if i == payload.gate_at:
                recorder.entered[payload.gate].set()
                await recorder.gates[payload.gate].wait()
            if i == payload.fail_at and not recorder.healed:
                raise ValueError(f"boom at {i}")
            return i

        total += await step.run(f"step-{i}", work)
        step.progress(i + 1, payload.n, f"step {i + 1}")
    step.log.info("finished", {"total": total})
    return StepsOutput(total=total)


@define_job(name="echo", input=dict[str, Any])
async def echo_job(step: StepContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Return the input as the output, through one step."""
    return await step.run("echo", lambda: payload)  # type: ignore[no-any-return]


@define_job(name="other-steps", input=StepsInput, output=StepsOutput)
async def other_steps_job(step: StepContext, payload: StepsInput) -> StepsOutput:
    """Another job with the same behaviour, to test keys shared across jobs."""
    return await steps_job.run(step, payload)  # type: ignore[no-any-return, misc]
