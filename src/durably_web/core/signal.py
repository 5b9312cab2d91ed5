"""The abort signal of a running run: cancelled, lease lost, or the worker stopped.

The :class:`~durably_web.core.execution.Execution` owns it and aborts it; the job sees it as
``step.signal`` and may hand it to long operations inside a step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Literal

from durably_web.errors import LeaseLost, RunCancelled

__all__ = ["AbortSignal", "AbortsOnRefusal"]


class AbortSignal:
    """Set when the run must stop: ``reason`` is ``"cancelled"``, ``"lease-lost"`` or ``"stopped"``.

    Pass it to long operations inside a step (``step.run(name, lambda signal: ...)``), poll
    ``aborted``, or ``await signal.wait()``.
    """

    __slots__ = ("_event", "_listeners", "aborted", "on_refusal", "reason")

    def __init__(self) -> None:
        self.aborted = False
        self.reason: str | None = None
        self._event: asyncio.Event | None = None
        self._listeners: list[Callable[[str], None]] = []
        self.on_refusal = AbortsOnRefusal(self)
        """``with signal.on_refusal:`` around a fenced write: see :class:`AbortsOnRefusal`."""

    def abort(self, reason: str) -> None:
        """Abort with ``reason``; later calls keep the first reason."""
        if self.aborted:
            return
        self.aborted = True
        self.reason = reason
        if self._event is not None:
            self._event.set()
        for listener in self._listeners:
            listener(reason)

    def abort_for(self, error: BaseException) -> None:
        """Abort for a refused write: RunCancelled as ``cancelled``, LeaseLost as ``lease-lost``.

        Any other error leaves the signal as it is.
        """
        if isinstance(error, RunCancelled):
            self.abort("cancelled")
        elif isinstance(error, LeaseLost):
            self.abort("lease-lost")

    def add_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(reason)`` when the signal aborts."""
        self._listeners.append(listener)

    async def wait(self) -> str:
        """Wait until the signal aborts; return the reason."""
        if self._event is None:
            self._event = asyncio.Event()
            if self.aborted:
                self._event.set()
        await self._event.wait()
        assert self.reason is not None
        return self.reason

    def error(self, run_id: str) -> RunCancelled | LeaseLost:
        """Return the exception that matches the abort reason."""
        if self.reason == "cancelled":
            return RunCancelled(f"Run was cancelled: {run_id}")
        if self.reason == "stopped":
            return LeaseLost(f"Worker stopped; run released: {run_id}")
        return LeaseLost(f"Lease ownership was lost: {run_id}")


class AbortsOnRefusal:
    """Abort a signal when a fenced write raises that the run is no longer this attempt's.

    ``with signal.on_refusal: ...``: a :class:`RunCancelled` leaving the block aborts the signal
    with ``"cancelled"``, a :class:`LeaseLost` with ``"lease-lost"``; the error goes on up.
    One object per signal, reused (a class, not a generator: it sits around every checkpoint).
    """

    __slots__ = ("_signal",)

    def __init__(self, signal: AbortSignal) -> None:
        self._signal = signal

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        if exc is not None:
            self._signal.abort_for(exc)
        return False
