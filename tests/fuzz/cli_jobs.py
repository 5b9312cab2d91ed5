"""The job the CLI fuzz test runs: any JSON input, returned through one checkpointed step."""

from __future__ import annotations

from typing import Any

from durably_web import JobDefinition, StepContext, define_job


async def _echo(step: StepContext, payload: Any) -> Any:
    return await step.run("echo", lambda: payload)


echo: JobDefinition[Any, Any] = define_job(name="fuzz-echo", input=Any, run=_echo)
