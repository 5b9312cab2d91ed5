"""Jobs of the durable-wait page test (``waits.html``): a sleep and a signal wait."""

from typing import Any

from durably_web import StepContext, define_job


@define_job(name="nap", input=dict[str, Any])
async def nap(step: StepContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Sleep ``payload['seconds']`` between two steps."""
    await step.run("before", lambda: 1)
    await step.sleep("nap", payload["seconds"])
    await step.run("after", lambda: 2)
    return {"slept": payload["seconds"]}


@define_job(name="approval", input=dict[str, Any])
async def approval(step: StepContext, payload: dict[str, Any]) -> Any:
    """Wait for the signal ``approval``; return its payload."""
    await step.run("before", lambda: 1)
    return await step.wait_for_signal("approval")
