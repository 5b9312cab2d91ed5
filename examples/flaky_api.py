"""Calling a flaky API: a step that retries with exponential backoff.

The fake API fails the first three calls. The step retries with ``Retry(attempts=5,
initial=0.2, factor=2)``: waits of about 0.2, 0.4 and 0.8 s (jittered within their upper
half), each retry announced by a ``step:retry`` event with its attempt, delay and error::

    python examples/flaky_api.py

A backoff longer than 2 s would not keep the worker busy: the run becomes ``waiting`` (kind
``retry``) and frees its slot until the next attempt is due, durably.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from durably_web import Retry, StepContext, create_durably, define_job

calls = {"n": 0}


def fetch_rates() -> dict[str, float]:
    """Stand in for an HTTP call that fails three times, then answers."""
    calls["n"] += 1
    if calls["n"] <= 3:
        raise ConnectionError(f"rates API unavailable (call {calls['n']})")
    return {"EUR": 1.0, "USD": 1.08}


@define_job(name="sync-rates", input=dict[str, Any], retry=Retry(attempts=3))
async def sync_rates(step: StepContext, payload: dict[str, Any]) -> dict[str, float]:
    """Fetch with its own retry policy (the job's retry=3 is the default of other steps)."""
    return dict(
        await step.run("fetch", fetch_rates, retry=Retry(attempts=5, initial=0.2, factor=2))
    )


async def main() -> None:
    """Run the job once and print every retry."""
    with tempfile.TemporaryDirectory() as folder:
        durably = create_durably(f"sqlite:///{Path(folder) / 'rates.db'}")
        durably.register({"sync_rates": sync_rates})
        durably.on(
            "step:retry",
            lambda e: print(f"attempt {e.attempt} failed ({e.error}); next in {e.delay:.2f}s"),
        )
        await durably.init()
        result = await durably.jobs.sync_rates.trigger_and_wait({}, timeout=30)
        print(f"{result.id} completed after {calls['n']} calls: {result.output}")
        await durably.stop()


if __name__ == "__main__":
    asyncio.run(main())
