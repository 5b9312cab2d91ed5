"""The abort signal of a running run: cancelled, lease lost, or the worker stopped.

The :class:`~durably_web.core.execution.Execution` owns it and aborts it; the job sees it as
``step.signal`` and may hand it to long operations inside a step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from durably_web.errors import LeaseLost, RunCancelled

__all__ = ["AbortSignal"]


class AbortSignal:
    """Set when the run must stop: ``reason`` is ``"cancelled"``, ``"lease-lost"`` or ``"stopped"``.

    Pass it to long operations inside a step (``step.run(name, lambda signal: ...)``), poll
    ``aborted``, or ``await signal.wait()``.
    """

    __slots__ = ("_event", "_listeners", "aborted", "reason")

    def __init__(self) -> None:
        self.aborted = False
        self.reason: str | None = None
        self._event: asyncio.Event | None = None
        self._listeners: list[Callable[[str], None]] = []

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
