"""A job module for the check page boot.html that imports from ``js`` at its top level.

Python then holds a JS object, which a Pyodide memory snapshot cannot hold: making the boot
snapshot fails (in the snapshot worker, ``_durably/runtime/snapshot_worker.mjs``), while the
engine runs its jobs as usual and every boot is a normal one.
"""

from __future__ import annotations

# The point of this module (a JS object held by Python): only the browser may import js.
from js import Math  # noqa: TID251

from durably_web import StepContext, define_job


@define_job(name="js-global", input=dict)
async def js_global(step: StepContext, payload: dict[str, object]) -> dict[str, object]:
    """Return a value computed by a JS global the module imported."""
    biggest: int = await step.run("max", lambda: int(Math.max(2, 7)))
    return {"max": biggest}
