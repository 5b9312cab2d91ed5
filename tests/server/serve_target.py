"""A job module for the serve-api command tests."""

from __future__ import annotations

import asyncio
from typing import Any

from durably_web import StepContext, define_job


@define_job(name="hello", input=dict[str, str])
async def hello(step: StepContext, payload: dict[str, str]) -> dict[str, Any]:
    """Greet through one checkpointed step."""
    greeting = await step.run("greet", lambda: f"hello {payload.get('name', 'world')}")
    return {"greeting": greeting}


@define_job(name="slow", input=dict[str, str])
async def slow(step: StepContext, payload: dict[str, str]) -> dict[str, Any]:
    """Check in, then wait in a step far longer than any test (a long-running run)."""
    await step.run("first", lambda: 1)
    await step.run("long", lambda: asyncio.sleep(3600))
    return {}
