"""What a resumed attempt replays: checkpoints, log lines to skip, retries in progress.

An attempt at a run calls the job from the top. Before it does, the execution reads, in plain
values, what the run's earlier attempts left (:func:`load_replay`): each completed step's
result (returned without calling the step again), the number of stored log lines each part of
the job will log again (skipped, so a line is stored once), and the steps whose last attempt
failed with another one due (resumed at that attempt and time, not from the first).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from durably_web.models import Run
from durably_web.storage.base import Store
from durably_web.storage.records import PendingRetry

__all__ = ["Replay", "UnreadableCheckpoint", "load_replay"]


class UnreadableCheckpoint(Exception):
    """A stored step result cannot be parsed; the message says which and what to do."""


@dataclass(frozen=True, slots=True)
class Replay:
    """What one attempt replays (see the module docstring).

    Attributes:
        outputs: completed steps' results, by step name, as JSON data.
        errors: completed waits that ended without their event (a signal wait that timed
            out), by step name: the error they replay.
        logs: stored log lines the attempt will log again, by step name (``None``: lines
            outside steps).
        retries: steps whose last attempt failed with another one due, by step name.
        next_index: one past the highest completed step index (0 for a fresh run).

    """

    outputs: dict[str, Any]
    errors: dict[str, str]
    logs: dict[str | None, int]
    retries: dict[str, PendingRetry]
    next_index: int

    @classmethod
    def empty(cls) -> Replay:
        """Return the replay of a run with nothing to replay."""
        return cls({}, {}, {}, {}, 0)


async def load_replay(
    store: Store, run: Run, call: Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]
) -> Replay:
    """Read what the run's earlier attempts left; nothing to read on its first lease.

    Only a lease holder writes a run's steps, log lines and retry states, and every lease adds
    one to the run's generation (from 0 at its creation, never set back, upstream's too): a
    run leased for the first time (generation 1) has none, so its attempt reads nothing.

    Args:
        store: the engine's store.
        run: the leased run being executed.
        call: makes one storage call the engine's way (waiting out a locked database).

    Raises:
        UnreadableCheckpoint: a stored result cannot be parsed.
        StorageError: the database failed.

    """
    if run.lease_generation == 1:
        return Replay.empty()
    run_id = run.id
    checkpoints = await call(lambda: store.completed_steps(run_id))
    logs = await call(lambda: store.replayed_logs(run_id))
    retries = await call(lambda: store.pending_retries(run_id))
    outputs: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, checkpoint in checkpoints.items():
        text = checkpoint.output_json
        try:
            outputs[name] = None if text is None else json.loads(text)
        except (ValueError, RecursionError) as exc:
            shown = text if len(text or "") <= 80 else (text or "")[:80] + "..."
            raise UnreadableCheckpoint(
                f"Cannot resume run {run_id}: the stored result of step {name!r} cannot "
                f"be read ({exc}: {shown!r}). Fix or delete that row of durably_steps, then "
                "retry the run."
            ) from None
        if checkpoint.error is not None:
            errors[name] = checkpoint.error
    next_index = max((c.index + 1 for c in checkpoints.values()), default=0)
    return Replay(outputs, errors, logs, retries, next_index)
