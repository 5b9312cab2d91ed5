"""``live.logs(durably, run_id)``: a run's log lines, the stored ones first, then live.

Upstream's ``useJobLogs``, plus the lines stored before the page opened (so a reload keeps
them). Each line is a Record ``(run_id, step_name, level, message, data, timestamp)``;
``timestamp`` is the ISO time it was written (None for a live line from a server's event
stream, which carries no time). The engine keeps a run's lines until it completes (or
always, with ``preserve_steps``), so a finished run may have no stored lines.

A line can be both stored and in flight as an event while the stored ones are read; such a
line is shown once (lines that arrive during the read are matched against the last stored
lines before they are appended).

MicroPython-safe (see :mod:`durably_web.client.values`).
"""

try:
    from collections.abc import Callable
    from typing import Any
except ImportError:  # MicroPython: annotations are never evaluated there
    pass

from durably_web.client.dispatch import report, spawn
from durably_web.client.live.hub import hub_for
from durably_web.client.live.observable import Observable
from durably_web.client.values import Record

__all__ = ["LiveLogs", "log_line"]


def log_line(record: Any) -> Record:
    """Return a stored log record or a ``log:write`` event as one log line."""
    return Record(
        {
            "run_id": record.run_id,
            "step_name": getattr(record, "step_name", None),
            "level": record.level,
            "message": record.message,
            "data": getattr(record, "data", None),
            "timestamp": getattr(record, "created_at", None) or getattr(record, "timestamp", None),
        }
    )


def _same(a: Record, b: Record) -> bool:
    return (a.level, a.message, a.step_name, a.data) == (b.level, b.message, b.step_name, b.data)


def _unseen(stored: list[Record], arrived: list[Record]) -> list[Record]:
    """Return the lines of ``arrived`` that are not among the last stored lines."""
    tail = stored[-len(arrived) :] if arrived else []
    fresh = []
    for line in arrived:
        for index, candidate in enumerate(tail):
            if _same(candidate, line):
                tail.pop(index)
                break
        else:
            fresh.append(line)
    return fresh


class LiveLogs(Observable):
    """A run's log lines, kept up to date: ``lines``, ``clear()``, ``follow(run_id)``.

    Args:
        client: the page's client (``await connect(...)``).
        run_id: the run to show (None: none yet; see :meth:`follow`).
        max_logs: keep at most this many lines, the newest (None: all).
        on_change: called with the view after each change (also: ``view.changed``).

    """

    def __init__(
        self,
        client: Any,
        run_id: str | None = None,
        max_logs: int | None = None,
        on_change: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(on_change)
        if max_logs is not None and max_logs < 1:
            raise ValueError(f"max_logs must be at least 1, got {max_logs}")
        self.client = client
        self.max_logs = max_logs
        self.run_id: str | None = None
        self.lines: list[Record] = []
        self._generation = 0
        self._arrived: list[Record] | None = None  # lines that came while the stored are read
        self._unwatch.append(hub_for(client).watch(("log:write",), self._on_event))
        self.follow(run_id)

    def __iter__(self) -> Any:
        return iter(self.lines)

    def __len__(self) -> int:
        return len(self.lines)

    def follow(self, run_id: str | None) -> None:
        """Show another run's lines (its stored ones, then live); None: none."""
        if run_id == self.run_id:
            return
        self._generation += 1
        self.run_id = run_id
        self.lines = []
        self._arrived = None
        if run_id is not None and not self.closed:
            self._arrived = []
            self._begin()
            spawn(self._load(self._generation, run_id), "reading the stored log lines")
        self._notify()

    def clear(self) -> None:
        """Forget the lines shown so far (stored ones included); new lines still arrive."""
        self.lines = []
        if self._arrived is not None:  # the stored lines, once read, are not shown either
            self._arrived = None
            self._generation += 1
        self._notify()

    async def _load(self, generation: int, run_id: str) -> None:
        try:
            try:
                stored = [log_line(log) for log in await self.client.get_logs(run_id)]
            except Exception as exc:  # noqa: BLE001 - the live lines still come
                report("reading the stored log lines of " + run_id, exc)
                stored = []
            if generation != self._generation:
                return  # followed another run, or cleared, meanwhile
            arrived = self._arrived or []
            self._arrived = None
            self.lines = stored
            self._add(_unseen(stored, arrived))
        finally:
            self._end()
        self._notify()

    def _on_event(self, event: Any) -> None:
        if event.run_id != self.run_id or self.run_id is None:
            return
        line = log_line(event)
        if self._arrived is not None:
            self._arrived.append(line)
            return
        self._add([line])
        self._notify()

    def _add(self, lines: list[Record]) -> None:
        self.lines.extend(lines)
        excess = 0 if self.max_logs is None else len(self.lines) - self.max_logs
        if excess > 0:
            del self.lines[:excess]
