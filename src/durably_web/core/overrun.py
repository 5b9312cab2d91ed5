"""A step that blocks the event loop past its run's lease: warn, remember, extend, give up.

While a step blocks the loop (CPU work or a blocking call without ``await``), the lease cannot
be renewed; once it expires another worker may take the run over and the step's result is
discarded. The execution warns (``worker:error`` with context ``step-blocked``) whenever a
step ran past the lease. A worker that lost a run that way remembers it (:class:`Overruns`):
when it claims the run again it first extends the lease to twice the step's time, and the
second time it loses the run so it fails it with a message saying to raise
``lease_duration`` (:func:`too_many_losses`).
"""

from __future__ import annotations

from dataclasses import dataclass

from durably_web.options import MAX_LEASE_DURATION

__all__ = [
    "Overrun",
    "Overruns",
    "StepBlocked",
    "blocked_warning",
    "extended_lease",
    "too_many_losses",
]

MAX_LOSSES = 2
"""Times one worker may lose a run to a step that blocks past the lease before failing it."""
_MAX_REMEMBERED = 1000
"""Runs whose blocking step a worker remembers (the oldest are forgotten first)."""


@dataclass(frozen=True, slots=True)
class Overrun:
    """A worker lost a run because ``step`` blocked for ``seconds``, ``losses`` times."""

    step: str
    seconds: float
    losses: int


class StepBlocked(Warning):
    """A step ran past the run's lease without the lease being renewed (``step-blocked``)."""


class Overruns:
    """What one worker remembers of the runs it lost to a blocking step."""

    def __init__(self) -> None:
        self._by_run: dict[str, Overrun] = {}

    def get(self, run_id: str) -> Overrun | None:
        """Return what this worker remembers of ``run_id``, if anything."""
        return self._by_run.get(run_id)

    def lost(self, run_id: str, step: str, seconds: float) -> None:
        """Remember that ``step`` blocked for ``seconds`` and another worker took the run."""
        previous = self._by_run.pop(run_id, None)
        losses = 1 if previous is None else previous.losses + 1
        longest = seconds if previous is None else max(seconds, previous.seconds)
        self._by_run[run_id] = Overrun(step, longest, losses)
        while len(self._by_run) > _MAX_REMEMBERED:
            del self._by_run[next(iter(self._by_run))]

    def forget(self, run_id: str) -> None:
        """Forget the run (its attempt ended without losing it to a blocking step)."""
        self._by_run.pop(run_id, None)


def extended_lease(overrun: Overrun, lease_duration: float) -> float | None:
    """Return the lease for a run lost before to a blocking step; None: fail it instead."""
    if overrun.losses >= MAX_LOSSES:
        return None
    return min(max(2 * overrun.seconds, lease_duration), MAX_LEASE_DURATION)


def too_many_losses(overrun: Overrun) -> str:
    """Return the error a run fails with once it was lost :data:`MAX_LOSSES` times."""
    return (
        f"Step {overrun.step!r} blocked the worker for {overrun.seconds:.1f}s, longer than the "
        f"lease, {overrun.losses} times: each time another worker took the run over and the "
        "step's result was discarded. Make the step await (run blocking code with "
        f"asyncio.to_thread) or raise lease_duration above {overrun.seconds:.0f}s, then retry "
        "the run."
    )


def blocked_warning(
    run_id: str, step: str, seconds: float, lease_duration: float, lost: bool
) -> StepBlocked:
    """Return the warning for a step that ran ``seconds`` past an unrenewed lease."""
    return StepBlocked(
        f"step {step!r} of run {run_id} ran {seconds:.1f}s and the run's lease "
        f"({lease_duration:g}s) expired meanwhile: the step blocked the event loop, so the "
        "lease could not be renewed"
        + (
            ", another worker took the run over and this result was discarded"
            if lost
            else ", and another worker could have taken the run over"
        )
        + ". Make the step await (run blocking code with asyncio.to_thread) or raise "
        "lease_duration above the step's time (create_durably(lease_duration=...), "
        "durably-web run --lease-duration)."
    )
