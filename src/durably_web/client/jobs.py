"""Job handles of the page's client: ``durably.jobs.import_csv.trigger(...)``.

MicroPython-safe (see :mod:`durably_web.client.values`).
"""

import json

try:
    from collections.abc import Callable
    from typing import TYPE_CHECKING, Any
except ImportError:  # MicroPython: annotations are never evaluated there
    TYPE_CHECKING = False  # type: ignore[misc]  # typing's name is Final; absent here

from durably_web.client.values import Record, checked, plain, to_json
from durably_web.protocol.wire import options_to_wire

if TYPE_CHECKING:
    from durably_web.client.page_client import PageClient

__all__ = ["PageJobHandle", "PageJobs"]


class PageJobHandle:
    """A job registered in the worker: ``durably.jobs.<key>``."""

    def __init__(self, client: "PageClient", key: str, name: str) -> None:
        self._client = client
        self.key = key
        self.name = name

    async def trigger(
        self,
        input: Any,
        idempotency_key: str | None = None,
        concurrency_key: str | None = None,
        labels: dict[str, str] | None = None,
        coalesce: str | None = None,
    ) -> Record:
        """Create a run; return it with its ``disposition``.

        Raises:
            ValidationError: invalid input, labels or options; nothing was stored.
            ConflictError: a pending run holds the concurrency key.

        """
        options = _options(idempotency_key, concurrency_key, labels, coalesce)
        data = checked(input, f"input for job {self.name!r}")
        run: Record = await self._client._call("trigger", self.key, data, options)
        return run

    async def trigger_and_wait(
        self,
        input: Any,
        timeout: float | None = None,
        on_progress: Callable[[Any], Any] | None = None,
        on_log: Callable[[Any], Any] | None = None,
        idempotency_key: str | None = None,
        concurrency_key: str | None = None,
        labels: dict[str, str] | None = None,
        coalesce: str | None = None,
    ) -> Record:
        """Trigger, then wait; return the completed run (``.id``, ``.output``, ``.disposition``).

        ``on_progress`` and ``on_log`` see every progress and log of the run, even of one that
        finishes before the trigger's answer arrives (they listen before triggering).

        Raises:
            ValidationError: invalid input or options; nothing was stored.
            RunFailed / RunCancelled: the run did not complete.
            TimeoutError: it did not finish within ``timeout`` seconds.

        """
        options = _options(idempotency_key, concurrency_key, labels, coalesce)
        adapter = self._client._adapter

        input_json = json.dumps(checked(input, f"input for job {self.name!r}"))
        options_json = to_json(options, f"options for job {self.name!r}")

        def start(milliseconds: int, token: int) -> Any:
            return adapter.triggerAndWait(self.key, input_json, options_json, milliseconds, token)

        return await self._client._wait(start, timeout, on_progress, on_log)

    async def batch_trigger(self, items: list[Any]) -> list[Record]:
        """Create several runs in one transaction; items are inputs or ``{"input", "options"}``."""
        wire = []
        for index, item in enumerate(items):
            what = f"input for job {self.name!r} at index {index}"
            if isinstance(item, dict) and "input" in item and set(item) <= {"input", "options"}:
                entry = {
                    "input": checked(item["input"], what),
                    "options": options_to_wire(plain(item.get("options") or {})),
                }
            else:
                entry = {"input": checked(item, what)}
            wire.append(entry)
        runs: list[Record] = await self._client._call("batchTrigger", self.key, wire)
        return runs


class PageJobs:
    """The jobs the worker registered: ``jobs.import_csv`` or ``jobs["import_csv"]``."""

    def __init__(self, handles: dict[str, PageJobHandle]) -> None:
        self._handles = handles

    def __getattr__(self, key: str) -> PageJobHandle:
        try:
            return self._handles[key]
        except KeyError:
            known = ", ".join(sorted(self._handles))
            raise AttributeError(f"no job {key!r}; the job module defines: {known}") from None

    def __getitem__(self, key: str) -> PageJobHandle:
        return self._handles[key]

    def __iter__(self) -> Any:
        return iter(self._handles)

    def keys(self) -> Any:
        """Return the job keys."""
        return self._handles.keys()


def _options(
    idempotency_key: str | None,
    concurrency_key: str | None,
    labels: dict[str, str] | None,
    coalesce: str | None,
) -> dict[str, Any]:
    """Return a trigger's options by wire name (:mod:`durably_web.protocol.wire`)."""
    options = {
        "idempotency_key": idempotency_key,
        "concurrency_key": concurrency_key,
        "labels": plain(labels),
        "coalesce": coalesce,
    }
    return options_to_wire(options)
