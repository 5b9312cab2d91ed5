"""``live.run(durably, run_id)``: one run's state, kept up to date, from its stored state on.

Upstream's ``useJobRun``: ``status``, ``progress``, ``output``, ``error``, ``logs`` and the
``is_*`` booleans, with ``on_start``, ``on_complete``, ``on_fail`` (and ``on_cancel``)
callbacks. It starts from the run as stored (its progress too), not blank until the next
event, and follows the run's events from then on.

Stored state and events meet without going back in time: a read answers a little later than
it was asked, so a field an event changed after the read was asked keeps the event's value
(server mode's events and reads travel on separate connections). A server's event stream
carries no output or error: on such a ``run:complete`` or ``run:fail`` the view reads the run
and changes its status once it has them, so ``on_complete`` sees the output.

MicroPython-safe (see :mod:`durably_web.client.values`).
"""

try:
    from collections.abc import Callable
    from typing import Any
except ImportError:  # MicroPython: annotations are never evaluated there
    pass

from durably_web.client.dispatch import call_handler, spawn
from durably_web.client.live.hub import hub_for
from durably_web.client.live.log_view import LiveLogs
from durably_web.client.live.observable import Observable
from durably_web.client.live.status import is_active, is_terminal
from durably_web.client.values import Record

__all__ = ["RUN_EVENTS", "LiveRun"]

RUN_EVENTS = (
    "run:start",
    "run:progress",
    "run:wait",
    "run:complete",
    "run:fail",
    "run:cancel",
    "run:retry",
    "run:delete",
)
"""The event types a run view follows (``run:wait`` only where the engine has it)."""

_STATUS_OF = {
    "run:start": "leased",
    "run:wait": "waiting",
    "run:complete": "completed",
    "run:fail": "failed",
    "run:cancel": "cancelled",
    "run:retry": "pending",
}

_CALLBACK_NAMES = {
    "start": "on_start",
    "completed": "on_complete",
    "failed": "on_fail",
    "cancelled": "on_cancel",
}


class LiveRun(Observable):
    """One run's state: ``status``, ``progress``, ``output``, ``error``, ``waiting``, ``logs``.

    Args:
        client: the page's client (``await connect(...)``).
        run_id: the run (None: none yet; see :meth:`follow`).
        on_start / on_complete / on_fail / on_cancel: called with the view when the run
            becomes active (from no status, or again after a retry), completes, fails or is
            cancelled; a run already finished when the view loads it calls its callback
            once. Sync or async.
        on_change: called with the view after each change (also: ``view.changed``).
        max_logs: keep at most this many log lines, the newest (None: all).

    Attributes:
        run_id: the run followed.
        status: its status (None until known).
        progress: the last ``(current, total, message)`` Record, or None.
        output / error: a completed run's output, a failed run's error message.
        waiting: a waiting run's ``(kind, name, until)`` Record, else None.
        run: the run's record as last read (input, labels, times), or None.
        deleted: True once the run was deleted.
        logs: its log lines (see :class:`~durably_web.client.live.log_view.LiveLogs`).

    """

    def __init__(
        self,
        client: Any,
        run_id: str | None = None,
        on_start: Callable[[Any], Any] | None = None,
        on_complete: Callable[[Any], Any] | None = None,
        on_fail: Callable[[Any], Any] | None = None,
        on_cancel: Callable[[Any], Any] | None = None,
        on_change: Callable[[Any], Any] | None = None,
        max_logs: int | None = None,
    ) -> None:
        super().__init__(on_change)
        self.client = client
        self.callbacks = {
            "start": on_start,
            "completed": on_complete,
            "failed": on_fail,
            "cancelled": on_cancel,
        }
        self.run_id: str | None = None
        self._generation = 0
        self._versions = {"status": 0, "progress": 0}
        self._blank()
        self.log_view = LiveLogs(client, None, max_logs, lambda _view: self._notify())
        self._unwatch.append(hub_for(client).watch(RUN_EVENTS, self._on_event))
        self.follow(run_id)

    # -- what a page reads ------------------------------------------------------------------

    @property
    def logs(self) -> list[Record]:
        """The run's log lines, stored ones first."""
        return self.log_view.lines

    @property
    def is_pending(self) -> bool:
        """Queued: triggered (or retried), not claimed yet."""
        return self.status == "pending"

    @property
    def is_running(self) -> bool:
        """Running in a worker (the engine's ``leased``)."""
        return self.status == "leased"

    @property
    def is_waiting(self) -> bool:
        """Waiting for a sleep, a signal or a retry (engines with durable waits)."""
        return self.status == "waiting"

    @property
    def is_completed(self) -> bool:
        """Completed: ``output`` holds the job's output."""
        return self.status == "completed"

    @property
    def is_failed(self) -> bool:
        """Failed: ``error`` says why."""
        return self.status == "failed"

    @property
    def is_cancelled(self) -> bool:
        """Cancelled."""
        return self.status == "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Completed, failed or cancelled."""
        return is_terminal(self.status)

    @property
    def is_active(self) -> bool:
        """Queued, running or waiting."""
        return is_active(self.status)

    # -- what a page does -------------------------------------------------------------------

    def follow(self, run_id: str | None, snapshot: Record | None = None) -> None:
        """Show another run (from its stored state on); None: none.

        Args:
            run_id: the run.
            snapshot: the run's record, when the caller just read it (no read then).

        """
        self._switch(run_id, snapshot, None)

    def _switch(self, run_id: str | None, snapshot: Record | None, status: str | None) -> None:
        """Follow ``run_id``: from ``snapshot``, else from a read (``status`` meanwhile)."""
        if run_id == self.run_id:
            return
        self._generation += 1
        self.run_id = run_id
        self._blank()
        self.log_view.follow(run_id)
        if snapshot is not None:
            self._apply(snapshot, self._versions.copy())
        elif run_id is not None:
            if status is not None:
                self._set_status(status)
            self.refresh()
        self._notify()

    def refresh(self) -> Any:
        """Read the run again (a task; awaiting it is optional)."""
        if self.run_id is None or self.closed:
            return None
        self._begin()
        read = self._read(self._generation, self.run_id, self._versions.copy())
        return spawn(read, "reading run " + self.run_id)

    def close(self) -> None:
        """Stop following events (the log lines too); the view keeps its last state."""
        super().close()
        self.log_view.close()

    # -- how it works -----------------------------------------------------------------------

    def _blank(self) -> None:
        self.status: str | None = None
        self.progress: Record | None = None
        self.output: Any = None
        self.error: str | None = None
        self.waiting: Record | None = None
        self.run: Record | None = None
        self.deleted = False

    async def _read(self, generation: int, run_id: str, versions: dict[str, int]) -> None:
        try:
            run = await self.client.get_run(run_id)
            if generation != self._generation:
                return  # the view follows another run now
            if run is None:
                self.deleted = True
            else:
                self._apply(run, versions)
        finally:
            self._end()
        self._notify()

    def _apply(self, run: Record, versions: dict[str, int]) -> None:
        """Take a read run's fields, but not those an event changed since it was asked."""
        self.run = run
        if versions["progress"] == self._versions["progress"] and run.progress is not None:
            self.progress = run.progress
        if versions["status"] == self._versions["status"]:
            self.output = run.output
            self.error = run.error
            self.waiting = run.get("waiting")
            self._set_status(run.status)

    def _on_event(self, event: Any) -> None:
        if event.run_id != self.run_id or self.run_id is None:
            return
        kind = event.type
        if kind == "run:progress":
            self._versions["progress"] += 1
            self.progress = event.progress
        elif kind == "run:delete":
            self.deleted = True
        elif kind in ("run:complete", "run:fail") and event.get("sequence") is None:
            self.refresh()  # a server's trimmed event: the output or error is in the run
            return
        elif kind in _STATUS_OF:
            self._versions["status"] += 1
            if kind == "run:complete":
                self.output = event.get("output")
            elif kind == "run:fail":
                self.error = event.get("error")
            elif kind in ("run:retry", "run:start"):
                self.error = None
            self.waiting = event.get("waiting") if kind == "run:wait" else None
            self._set_status(_STATUS_OF[kind])
        else:
            return
        self._notify()

    def _set_status(self, status: str) -> None:
        old = self.status
        if status == old:
            return
        self.status = status
        if is_active(status) and not is_active(old):
            self._callback("start")
        elif status in self.callbacks:
            self._callback(status)

    def _callback(self, name: str) -> None:
        callback = self.callbacks.get(name)
        if callback is not None:
            call_handler(callback, self, _CALLBACK_NAMES[name])
