"""The batched checkpoint mode: completed steps grouped into one transaction.

By default (``checkpoint="each"``) ``step.run`` returns only once its checkpoint committed,
so a crash runs at most the step in flight again. Committing costs a transaction per step,
most of a short step's time. With ``checkpoint="batched"`` (per instance, or per job in
:func:`~durably_web.define_job`) a completed step is kept in the run's unwritten state
(:class:`~durably_web.core.unwritten.Unwritten`) and committed with the next write of the
lease holder, in one fenced transaction with the others. The group is committed:

- before the next step starts, once ``max_steps`` steps are kept (the group is *full*): a
  run whose last step fills its group writes that group with its outcome, one transaction
  less (and with ``preserve_steps=False``, which deletes a completed run's steps, none of
  its rows at all, as for a run shorter than one group);
- inside ``step.run``, before it returns, once the oldest kept step is ``max_delay``
  seconds old;
- by a timer ``max_delay`` seconds after the first step of the group, while the job awaits
  something (a step that blocks the event loop delays it until ``step.run`` returns);
- with every other write of the run: progress and log lines reaching the database (a
  reader never sees progress ahead of the steps before it), a failed step, the outcome,
  a run handed back when the worker stops; and before each lease renewal.

A crash (or a lost lease) runs the kept group again: at most ``max_steps`` steps, counting
the one in flight, which the default mode runs again too (a full group is committed before
another step runs, so no step is in flight beside it). A step whose checkpoint committed
never runs again: each kept step is inserted with the same lease fence as a single
checkpoint, and a resumed run replays every committed one.
"""

from __future__ import annotations

import time
from dataclasses import replace

from durably_web.core.writer import RunWriter
from durably_web.job import JobDefinition
from durably_web.options import CheckpointPolicy
from durably_web.storage.records import StepRow

__all__ = ["CheckpointGroup", "groups_checkpoints", "policy_for"]


def groups_checkpoints(store: object) -> bool:
    """Whether ``store``'s writes carry kept steps (``RunDelta.steps``): the SQLite store's do.

    A store without this (the PostgreSQL store) commits every checkpoint on its own: its jobs
    run in the default mode whatever they ask for, and ``create_durably(checkpoint=
    "batched")`` on it is refused.
    """
    return getattr(store, "grouped_checkpoints", False) is True


def policy_for(
    job: JobDefinition[object, object], instance: CheckpointPolicy, store: object
) -> CheckpointPolicy:
    """Return the checkpoint policy of ``job``'s runs: its own mode, else the instance's."""
    if not groups_checkpoints(store):
        return replace(instance, mode="each") if instance.batched else instance
    if job.checkpoint is None or job.checkpoint == instance.mode:
        return instance
    return replace(instance, mode=job.checkpoint)


class CheckpointGroup:
    """The completed steps of one execution waiting for one transaction (batched mode).

    Args:
        policy: the bounds (``max_delay``, ``max_steps``).
        writer: the execution's writer, which keeps the steps with what else is unwritten.
        wall: the engine's clock is the system clock: the group's age is then measured with
            the time each step finished (``time.time()``, read anyway), not a clock read of
            its own (in the browser a read costs 1-3 us, a few percent of a step). A wall
            clock set back only makes the group wait for ``max_steps`` or its timer (on the
            loop's monotonic clock); one set forward commits it early. Other clocks (a
            test's fake one) do not measure real time: ``time.monotonic()`` is read then.

    """

    __slots__ = ("_policy", "_since", "_wall", "_writer", "full")

    def __init__(self, policy: CheckpointPolicy, writer: RunWriter, *, wall: bool) -> None:
        self._policy = policy
        self._writer = writer
        self._wall = wall
        self._since = 0.0
        self.full = False
        """The last step kept made ``max_steps``: the group is committed before another step
        runs (``StepContext``), with the run's next write if that comes first."""

    def keep_unless_due(self, row: StepRow, finished: float) -> bool:
        """Keep a completed step unless that makes the group due; return whether it was kept.

        The fast path's :meth:`keep` (:mod:`~durably_web.core.fastpath`): a step that would
        make the group due is left to :meth:`keep` and the commit that follows it. A step that
        fills the group is kept (the group is then :attr:`full`: the next step commits it).
        ``finished``: when the step finished, on the engine's clock.
        """
        writer, policy = self._writer, self._policy
        kept = writer.kept_steps
        now = finished if self._wall else time.monotonic()
        elapsed = now - self._since if kept else 0.0  # as keep(): the first step starts the clock
        if kept >= policy.max_steps or elapsed >= policy.max_delay:
            return False
        if not kept:
            self._since = now  # the first step of a new group
        writer.keep_step(row, within=policy.max_delay)
        self.full = kept + 1 >= policy.max_steps
        return True

    def keep(self, row: StepRow, finished: float) -> bool:
        """Keep a completed step; return True when the group must be committed now.

        ``finished``: when the step finished, on the engine's clock.
        """
        writer = self._writer
        now = finished if self._wall else time.monotonic()
        if not writer.kept_steps:
            self._since = now  # the first step of a new group
        writer.keep_step(row, within=self._policy.max_delay)
        self.full = False  # committed now, or kept under both bounds
        return (
            writer.kept_steps >= self._policy.max_steps
            or now - self._since >= self._policy.max_delay
        )
