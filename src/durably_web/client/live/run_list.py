"""``live.runs(durably, job_name=..., page_size=20)``: a page of runs, kept up to date.

Upstream's ``useRuns``: the runs of one page (newest first), filtered by job, status and
labels, with ``page``, ``has_more``, ``next_page`` / ``prev_page`` / ``go_to_page`` /
``refresh``. Live on every page: a ``run:progress`` event updates its run in place; a
lifecycle event (trigger, start, wait, complete, fail, cancel, retry, delete) of a matching
run reads the page again. Reads never pile up: events that come while a read is in flight
cause one more read after it, however many they are (a batch of 120 triggers: one or two
reads).

MicroPython-safe (see :mod:`durably_web.client.values`).
"""

import asyncio

try:
    from collections.abc import Callable
    from typing import Any
except ImportError:  # MicroPython: annotations are never evaluated there
    pass

from durably_web.client.dispatch import spawn
from durably_web.client.live.hub import hub_for
from durably_web.client.live.observable import Observable
from durably_web.client.values import Record, with_fields

__all__ = ["LIFECYCLE_EVENTS", "LiveRuns"]

LIFECYCLE_EVENTS = (
    "run:trigger",
    "run:coalesced",
    "run:start",
    "run:wait",
    "run:complete",
    "run:fail",
    "run:cancel",
    "run:retry",
    "run:delete",
)
"""Events that may change which runs a page holds, or their status: the page is read again."""


def _names(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


class LiveRuns(Observable):
    """One page of runs, newest first: ``runs``, ``page``, ``has_more``, ``error``.

    Args:
        client: the page's client (``await connect(...)``).
        job_name: only runs of this job name, or of any of these names.
        status: only runs with this status, or any of these statuses.
        labels: only runs with all these labels.
        page_size: runs per page (at least 1).
        page: the page to show first (0 is the newest runs).
        live: follow events (False: only :meth:`refresh` reads the page again).
        on_change: called with the view after each change (also: ``view.changed``).

    Attributes:
        runs: the runs of the page, as Records (``id``, ``job_name``, ``status``, ...).
        page: the page shown (0-based).
        has_more: whether an older page exists.
        error: the error of the last read, or None (the runs shown stay as they were).

    """

    def __init__(
        self,
        client: Any,
        job_name: Any = None,
        status: Any = None,
        labels: dict[str, str] | None = None,
        page_size: int = 10,
        page: int = 0,
        live: bool = True,
        on_change: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(on_change)
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        self.client = client
        self.page_size = page_size
        self.page = max(0, page)
        self.runs: list[Record] = []
        self.has_more = False
        self.error: Exception | None = None
        self.job_name: list[str] | None = None
        self.status: list[str] | None = None
        self.labels: dict[str, str] | None = None
        self._reading = False
        self._again = False
        self._done = asyncio.Event()
        self._done.set()
        if live:
            types = LIFECYCLE_EVENTS + ("run:progress",)  # noqa: RUF005 - MicroPython-safe
            self._unwatch.append(hub_for(client).watch(types, self._on_event))
        self.set_filter(job_name, status, labels)

    def __iter__(self) -> Any:
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)

    def set_filter(self, job_name: Any = None, status: Any = None, labels: Any = None) -> Any:
        """Show the first page of other runs (the same arguments as the constructor's)."""
        self.job_name = _names(job_name)
        self.status = _names(status)
        self.labels = dict(labels) if labels else None
        return self.go_to_page(0) if self.page else self.refresh()

    def next_page(self) -> Any:
        """Show the next (older) page, if ``has_more``; return the read (a task) or None."""
        return self.go_to_page(self.page + 1) if self.has_more else None

    def prev_page(self) -> Any:
        """Show the previous (newer) page; return the read (a task)."""
        return self.go_to_page(self.page - 1)

    def go_to_page(self, page: int) -> Any:
        """Show page ``page`` (0: the newest runs); return the read (a task).

        ``page`` changes at once (and ``loading`` is True); ``runs`` once the read answers.
        """
        self.page = max(0, page)
        self._request()
        self._notify()
        return spawn(self._done.wait(), "reading the runs")

    def refresh(self) -> Any:
        """Read the page again; return a task that ends once the page shown is current."""
        self._request()
        return spawn(self._done.wait(), "reading the runs")

    def matches(self, event: Any) -> bool:
        """Tell whether an event's run may belong to the runs this view shows."""
        if self.job_name is not None and event.job_name not in self.job_name:
            return False
        labels = getattr(event, "labels", None)
        if self.labels and labels is not None:
            for key in self.labels:
                if labels.get(key) != self.labels[key]:
                    return False
        return True

    def _request(self) -> None:
        if self._reading:
            self._again = True  # read once more after the read in flight
            return
        self._reading = True
        self._done.clear()
        self._begin()
        spawn(self._read_until_current(), "reading the runs")

    async def _read_until_current(self) -> None:
        try:
            while True:
                self._again = False
                await self._read()
                if not self._again or self.closed:
                    break
        finally:
            self._reading = False
            self._done.set()
            self._end()
            self._notify()

    async def _read(self) -> None:
        query = (self.page, self.job_name, self.status, self.labels)
        try:
            runs = await self.client.get_runs(
                status=self.status,
                job_name=self.job_name,
                labels=self.labels,
                limit=self.page_size + 1,
                offset=self.page * self.page_size,
            )
        except Exception as exc:  # noqa: BLE001 - shown as the view's error
            self.error = exc
            return
        if query != (self.page, self.job_name, self.status, self.labels):
            self._again = True  # the page or filter changed meanwhile: read that one
            return
        self.error = None
        self.has_more = len(runs) > self.page_size
        self.runs = runs[: self.page_size]

    def _on_event(self, event: Any) -> None:
        if not self.matches(event):
            return
        if event.type != "run:progress":
            self._request()
            return
        for index, run in enumerate(self.runs):
            if run.id == event.run_id:
                self.runs[index] = with_fields(run, progress=event.progress)
                self._notify()
                return
