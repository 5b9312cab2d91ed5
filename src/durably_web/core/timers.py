"""Due times the worker wakes for: the end of a run's wait, and any timer added to it.

An idle worker sleeps until the earliest of its polling interval, the next time a run becomes
claimable (a sleep or backoff ends, a signal timeout, a delayed start: the Store's
``next_wake``) and the next due time of its :class:`Timer` objects. So a run that comes due in
this process is taken within milliseconds of its time, without a shorter polling interval:
polling is only for what another process writes (a signal sent there is seen at the next poll).

A :class:`Timer` is the seam for other due-time work in the worker loop (a schedule's next
tick): :meth:`Worker.timers.add() <Timers.add>` registers one; on each pass of the loop every
timer that is due fires, then the loop sleeps until the earliest next due time. A timer whose
due time changed (a schedule added) calls :meth:`Worker.wake`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["Timer", "Timers"]

Report = Callable[[BaseException, str], None]


@runtime_checkable
class Timer(Protocol):
    """Something the worker must do at a due time."""

    async def next_due(self, now: float) -> float | None:
        """Return when this timer is next due (epoch seconds; None: not at all)."""
        ...

    async def fire(self, now: float) -> None:
        """Do what is due at ``now`` (called when :meth:`next_due` returned a time <= now)."""
        ...


class Timers:
    """The worker's timers: fired when due, their earliest due time waited for.

    Args:
        report: emits ``worker:error`` for a timer that raised (the others go on).

    """

    def __init__(self, report: Report) -> None:
        self._timers: list[Timer] = []
        self._report = report

    def add(self, timer: Timer) -> Callable[[], None]:
        """Register ``timer``; return a function that removes it."""
        if not isinstance(timer, Timer):
            raise TypeError(f"a worker timer needs next_due() and fire(), got {timer!r}")
        self._timers.append(timer)

        def remove() -> None:
            if timer in self._timers:
                self._timers.remove(timer)

        return remove

    async def run_due(self, now: float) -> float | None:
        """Fire every timer due at ``now``; return the earliest next due time after that."""
        earliest: float | None = None
        for timer in list(self._timers):
            try:
                due = await timer.next_due(now)
                if due is not None and due <= now:
                    await timer.fire(now)
                    due = await timer.next_due(now)
            except Exception as exc:  # noqa: BLE001 - one timer must not stop the others
                self._report(exc, f"timer:{type(timer).__name__}")
                continue
            if due is not None and due > now and (earliest is None or due < earliest):
                earliest = due
        return earliest
