"""A job module for the serve-api command tests."""

from __future__ import annotations

from typing import Any

from durably_web import StepContext, define_job


@define_job(name="hello", input=dict[str, str])
async def hello(step: StepContext, payload: dict[str, str]) -> dict[str, Any]:
    """Greet through one checkpointed step."""
    greeting = await step.run("greet", lambda: f"hello {payload.get('name', 'world')}")
    return {"greeting": greeting}
