"""The jobs ``bench/server_load.py`` serves with ``durably-web serve-api``.

Served as ``durably-web serve-api bench/systems/server_jobs.py:JOBS --db FILE --port N``. The
upstream server (``bench/upstream_node/server.mjs``) defines the same two jobs, with the same
names, inputs, steps and results:

- ``bench-noop`` (key ``noop``): one step returning ``{"ok": true}``; what the ``POST
  /trigger`` load starts.
- ``bench-sse`` (key ``sse``): step ``gate`` waits until the file ``input["gate"]`` exists
  (polled every 5 ms), so that the load generator's subscribers are connected before any
  counted event; then ``input["steps"]`` steps ``step-<i>``, each returning ``{"i": i}`` and
  followed by ``step.progress(i + 1, steps)``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from durably_web import JobDefinition, StepContext, define_job

__all__ = ["GATE_POLL_S", "JOBS", "noop", "sse_steps"]

#: Seconds between two looks for the gate file.
GATE_POLL_S = 0.005


@define_job(name="bench-noop", input=dict)
async def noop(step: StepContext, payload: dict[str, Any]) -> dict[str, bool]:
    """Run one step that returns a constant."""
    return await step.run("noop", lambda: {"ok": True})  # type: ignore[no-any-return]


async def _wait_for(path: str) -> bool:
    while not os.path.exists(path):
        await asyncio.sleep(GATE_POLL_S)
    return True


@define_job(name="bench-sse", input=dict)
async def sse_steps(step: StepContext, payload: dict[str, Any]) -> int:
    """Wait for the gate file, then run ``steps`` quick steps, reporting progress after each."""
    steps = int(payload["steps"])
    gate = str(payload["gate"])
    await step.run("gate", lambda: _wait_for(gate))
    for i in range(steps):
        await step.run(f"step-{i}", lambda i=i: {"i": i})
        step.progress(i + 1, steps)
    return steps


#: What the server serves: registration key -> job.
JOBS: dict[str, JobDefinition[Any, Any]] = {"noop": noop, "sse": sse_steps}
