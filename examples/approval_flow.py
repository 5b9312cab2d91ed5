"""An approval flow: a run that waits for a person's decision without holding a worker.

The run submits an expense, then waits (durably: a crash or restart loses nothing) for the
signal ``approval``, at most two days; then it pays or rejects. Try it in one process::

    python examples/approval_flow.py

or across commands, as an operator would::

    durably-web worker examples/approval_flow.py --db approvals.db &
    durably-web run-info RUN_ID --db approvals.db        # "waiting for signal approval ..."
    durably-web signal RUN_ID approval --payload '{"approved": true, "by": "kim"}' --db approvals.db
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from durably_web import SignalTimeout, StepContext, create_durably, define_job


class Expense(BaseModel):
    """An expense to approve."""

    employee: str
    amount: int


@define_job(name="expense-approval", input=Expense)
async def expense_approval(step: StepContext, expense: Expense) -> dict[str, Any]:
    """Submit, wait for the approval signal (two days at most), then pay or reject."""
    ticket = await step.run("submit", lambda: f"EXP-{expense.employee}-{expense.amount}")
    try:
        decision = await step.wait_for_signal("approval", timeout=timedelta(days=2))
    except SignalTimeout:
        decision = {"approved": False, "by": "nobody (timed out)"}
    if decision.get("approved"):
        await step.run("pay", lambda: step.log.info("Paid", {"ticket": ticket}))
    return {"ticket": ticket, "approved": bool(decision.get("approved")), "by": decision["by"]}


async def main() -> None:
    """Trigger one approval, see it wait, approve it, see it finish."""
    with tempfile.TemporaryDirectory() as folder:
        durably = create_durably(f"sqlite:///{Path(folder) / 'approvals.db'}")
        durably.register({"expense_approval": expense_approval})
        await durably.init()
        run = await durably.jobs.expense_approval.trigger({"employee": "ana", "amount": 120})
        while (current := await durably.get_run(run.id)) and current.status != "waiting":
            await asyncio.sleep(0.01)
        print(f"{run.id} is {current.status}: {current.waiting}")
        await durably.signal(run.id, "approval", {"approved": True, "by": "kim"})
        done = await durably.wait_for_run(run.id, timeout=10)
        print(f"{run.id} is {done.status}: {done.output}")
        await durably.stop()


if __name__ == "__main__":
    asyncio.run(main())
