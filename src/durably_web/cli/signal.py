"""``durably-web signal RUN_ID NAME --payload JSON``: send a signal to a run from a shell.

The signal is written to the database; a run waiting for it becomes claimable at once, and the
worker that owns the database (``durably-web worker``, ``serve-api``, a page) takes it up at its
next poll (a worker in this same process would be woken at once, but here there is none).
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from durably_web.cli.render import format_wait
from durably_web.core.factory import create_durably

__all__ = ["send_signal"]


async def send_signal(
    database: str, run_id: str, name: str, payload: Any, *, out: TextIO | None = None
) -> int:
    """Deliver the signal ``name`` with ``payload`` to ``run_id``; print what the run does now.

    Returns:
        0.

    Raises:
        NotFoundError: no such run (the command exits 1).
        ConflictError: the run has ended, or already has (or no longer waits for) that signal.
        ValidationError: a bad name or run id (the command exits 2).

    """
    out = out or sys.stdout
    durably = create_durably(database)
    try:
        run = await durably.signal(run_id, name, payload)
    finally:
        await durably.close()
    if run.waiting is not None and run.waiting.kind == "signal" and run.waiting.name == name:
        state = "it resumes at the next poll of its worker"
    elif run.waiting is not None:
        state = f"kept until it waits for it (now {format_wait(run.waiting)})"
    else:
        state = f"kept until it waits for it (now {run.status})"
    print(f"Sent signal {name} to run {run.id}: {state}", file=out)
    return 0
