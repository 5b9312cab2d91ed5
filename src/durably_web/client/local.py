"""The page client's interface over an in-process engine, on CPython: ``LocalClient(durably)``.

A page's client answers with :class:`~durably_web.client.values.Record` objects (runs,
steps, logs, events in their wire form, with snake_case attributes); a local
:class:`~durably_web.Durably` answers with its own dataclasses. ``LocalClient`` wraps any
engine with Durably's methods (a local ``Durably``, or the CPython
:class:`~durably_web.http_client.HttpClient`) and converts its answers and events to what a
page's client gives, field for field (through the same wire form). So code written for a
page, the live views of :mod:`durably_web.client.live` included, runs unchanged in a CPython
script or test::

    durably = create_durably("sqlite:///app.db").register({"import_csv": import_csv})
    await durably.init()
    job = live.job(LocalClient(durably), "import_csv")

Not served to pages (it is not in ``PAGE_PACKAGE_FILES``): a page has ``connect()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from durably_web.client.jobs import PageJobs
from durably_web.client.values import Record, event_from_wire, from_wire

__all__ = ["LocalClient", "LocalJobHandle"]


def _record(value: Any) -> Any:
    """Convert an engine answer (a record, a list of them, None, a number) to the page's."""
    if isinstance(value, list):
        return [_record(item) for item in value]
    to_wire = getattr(value, "to_wire", None)
    return from_wire(to_wire()) if to_wire is not None else value


class LocalJobHandle:
    """``client.jobs.<key>`` over an engine's job handle."""

    def __init__(self, handle: Any, key: str) -> None:
        self._handle = handle
        self.key = key
        self.name: str = handle.name

    async def trigger(self, input: Any, **options: Any) -> Record:
        """Trigger the job (the engine's options); return the run."""
        run: Record = _record(await self._handle.trigger(input, **options))
        return run

    async def trigger_and_wait(self, input: Any, **options: Any) -> Record:
        """Trigger, then wait; return the completed run, as a page's client does."""
        result = await self._handle.trigger_and_wait(input, **options)
        run: Record = _record(result.run)
        return run

    async def batch_trigger(self, items: list[Any]) -> list[Record]:
        """Trigger several runs in one transaction."""
        runs: list[Record] = _record(await self._handle.batch_trigger(items))
        return runs


class LocalClient:
    """A page client's methods over an engine in this process (see the module docstring)."""

    status = "ready"

    def __init__(self, durably: Any) -> None:
        self.durably = durably
        handles = {key: LocalJobHandle(handle, key) for key, handle in durably.jobs.items()}
        self.jobs = PageJobs(handles)  # type: ignore[arg-type]  # the same interface

    def on(self, event_type: str, handler: Callable[[Any], Any]) -> Callable[[], None]:
        """Call ``handler(event)`` with each event of ``event_type``, as a page's Record."""
        unsubscribe: Callable[[], None] = self.durably.on(
            event_type, lambda event: handler(event_from_wire(event.to_wire()))
        )
        return unsubscribe

    async def get_run(self, run_id: str) -> Record | None:
        """Return the run, or None."""
        run: Record | None = _record(await self.durably.get_run(run_id))
        return run

    async def get_runs(self, **filters: Any) -> list[Record]:
        """Return runs, newest first (filters as ``Durably.get_runs``; None: not given)."""
        given = {name: value for name, value in filters.items() if value is not None}
        runs: list[Record] = _record(await self.durably.get_runs(**given))
        return runs

    async def get_steps(self, run_id: str) -> list[Record]:
        """Return the run's step records."""
        steps: list[Record] = _record(await self.durably.get_steps(run_id))
        return steps

    async def get_logs(self, run_id: str) -> list[Record]:
        """Return the run's stored log lines."""
        logs: list[Record] = _record(await self.durably.get_logs(run_id))
        return logs

    async def cancel(self, run_id: str) -> Record:
        """Cancel a pending or running run."""
        run: Record = _record(await self.durably.cancel(run_id))
        return run

    async def retry(self, run_id: str) -> Record:
        """Re-run a failed or cancelled run in place."""
        run: Record = _record(await self.durably.retry(run_id))
        return run

    async def retrigger(self, run_id: str) -> Record:
        """Start a new run with the same input."""
        run: Record = _record(await self.durably.retrigger(run_id))
        return run

    async def delete_run(self, run_id: str) -> Record:
        """Delete a finished run with its steps and logs."""
        run: Record = _record(await self.durably.delete_run(run_id))
        return run

    async def wait_for_run(self, run_id: str, timeout: float | None = None) -> Record:
        """Return the completed run; raise RunFailed, RunCancelled or TimeoutError."""
        run: Record = _record(await self.durably.wait_for_run(run_id, timeout=timeout))
        return run
