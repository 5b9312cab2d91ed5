"""Jobs the CLI tests run in ``durably-web`` subprocesses.

Every step function appends its name to the file ``record`` names when it finishes its work,
so a test can tell which steps really executed in which process, across interrupts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from durably_web import JobDefinition, StepContext, define_job

# `define_job` used as a decorator on an async function infers JobDefinition[Never, Never]
# under mypy (see /work/notes/cli-engine-issues.md); going through Any keeps this module
# type-checked whether or not that is fixed.
_define: Any = define_job


class StepsInput(BaseModel):
    steps: int = 3
    delay: float = 0.0
    record: str | None = None
    fail_at: int | None = None


def _record(path: str | None, name: str) -> None:
    if path is not None:
        with Path(path).open("a", encoding="utf-8") as file:
            file.write(name + "\n")


async def _slow_steps(step: StepContext, payload: StepsInput) -> dict[str, Any]:
    total = 0
    for i in range(payload.steps):

        async def work(i: int = i) -> int:
            await asyncio.sleep(payload.delay)
            if i == payload.fail_at:
                raise RuntimeError(f"exploded at step {i}")
            _record(payload.record, f"step-{i}")
            if i == 0:
                step.log.info("first step done", {"i": i})
            return i

        total += await step.run(f"step-{i}", work)
        step.progress(i + 1, payload.steps, f"step {i + 1} of {payload.steps}")
    return {"total": total, "steps": payload.steps}


slow_steps: JobDefinition[StepsInput, dict[str, Any]] = _define(
    name="slow-steps", input=StepsInput
)(_slow_steps)

other_steps: JobDefinition[StepsInput, dict[str, Any]] = _define(
    name="other-steps", input=StepsInput
)(_slow_steps)


class BigInput(BaseModel):
    steps: int = 40
    size: int = 20_000
    record: str | None = None


async def _big_steps(step: StepContext, payload: BigInput) -> dict[str, int]:
    for i in range(payload.steps):

        def work(i: int = i) -> str:
            _record(payload.record, f"step-{i}")
            return "x" * payload.size

        await step.run(f"step-{i}", work)
        step.progress(i + 1, payload.steps)
    return {"steps": payload.steps}


big_steps: JobDefinition[BigInput, dict[str, int]] = _define(name="big-steps", input=BigInput)(
    _big_steps
)

not_a_job = 42
