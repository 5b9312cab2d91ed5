"""The page's Durably for PyScript (MicroPython or Pyodide), in worker or server mode.

The engine runs in a Web Worker of the page (worker mode) or in a server reached over
HTTP + SSE (server mode). This wraps the JS client (``durably_web/web/client/index.mjs``)
through its JSON adapter ``python.mjs``, whatever the mode (the JS client picks it; see
:func:`durably_web.client.page.connect`): every call sends JSON text and gets JSON text
back (``{"ok", "result" | "error"}``), so the code path is the same in both interpreters and
no JS proxy reaches the caller. The one Python function
handed to JS (``Dispatcher.receive`` in :mod:`durably_web.client.dispatch`) gets status
changes, events and wait callbacks.

Written in the subset MicroPython shares with CPython (see :mod:`durably_web.client.values`).
Timeouts are seconds here (the JS client takes milliseconds).
"""

try:
    from collections.abc import Callable
    from typing import Any
except ImportError:  # MicroPython: annotations are never evaluated there
    pass

from durably_web.client.dispatch import Dispatcher, Subscription, unwrap
from durably_web.client.jobs import PageJobHandle, PageJobs
from durably_web.client.values import Record, from_wire, to_json

__all__ = ["PageClient"]


class PageClient:
    """The page's Durably: a local instance's methods, answered by the engine worker or server."""

    def __init__(self, adapter: Any, dispatcher: Dispatcher, jobs: list[dict[str, str]]) -> None:
        self._adapter = adapter
        self._dispatcher = dispatcher
        self._next_token = 1
        handles = {job["key"]: PageJobHandle(self, job["key"], job["name"]) for job in jobs}
        self.jobs = PageJobs(handles)

    @property
    def status(self) -> str:
        """One of booting, ready, restarting, failed, closed."""
        return str(self._dispatcher.status.status)

    @property
    def role(self) -> str:
        """Where the engine runs, seen from this tab.

        ``leader``: in this tab's worker; ``follower``: in another tab's (calls, subscriptions
        and events go through it, and this tab takes over if it goes away); ``server``.
        """
        return str(self._dispatcher.status.get("role", "follower"))

    async def _call(self, method: str, *args: Any) -> Any:
        return from_wire(unwrap(await self._adapter.call(method, to_json(list(args), method))))

    def on(self, event_type: str, handler: Callable[[Any], Any]) -> Callable[[], None]:
        """Call ``handler(event)`` for each event of ``event_type`` (``"*"``: all; ``"status"``:
        the client's status changes). Sync or async handlers. Returns an unsubscribe function.
        """  # noqa: D205 - the summary needs both lines
        if event_type == "status":
            self._dispatcher.status_handlers.append(handler)
            return lambda: self._dispatcher.status_handlers.remove(handler)
        token = unwrap(self._adapter.on(event_type))  # ValidationError for an unknown type
        self._dispatcher.listeners[token] = handler

        def unsubscribe() -> None:
            self._dispatcher.listeners.pop(token, None)
            self._adapter.off(token)

        return unsubscribe

    def subscribe(self, run_id: str) -> Subscription:
        """Iterate over a run's events, its current state first, ending after it finishes."""
        return Subscription(self._adapter, run_id)

    async def wait_for_run(
        self,
        run_id: str,
        timeout: float | None = None,
        on_progress: Callable[[Any], Any] | None = None,
        on_log: Callable[[Any], Any] | None = None,
    ) -> Record:
        """Return the completed run; raise RunFailed, RunCancelled or TimeoutError (seconds)."""

        def start(milliseconds: int, token: int) -> Any:
            return self._adapter.wait(run_id, milliseconds, token)

        return await self._wait(start, timeout, on_progress, on_log)

    async def _wait(
        self,
        start: Callable[[int, int], Any],
        timeout: float | None,
        on_progress: Callable[[Any], Any] | None,
        on_log: Callable[[Any], Any] | None,
    ) -> Record:
        """Run an adapter wait (``start(timeout_ms, token)``), routing its callbacks."""
        token = self._next_token
        self._next_token += 1
        self._dispatcher.waiters[token] = (on_progress, on_log)
        try:
            milliseconds = 0 if timeout is None else max(1, int(timeout * 1000))
            run: Record = from_wire(unwrap(await start(milliseconds, token)))
            return run
        finally:
            self._dispatcher.waiters.pop(token, None)

    async def get_run(self, run_id: str) -> Record | None:
        """Return the run, or None."""
        run: Record | None = await self._call("getRun", run_id)
        return run

    async def get_runs(
        self,
        status: str | None = None,
        job_name: str | None = None,
        labels: dict[str, str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Record]:
        """Return runs, newest first, filtered like ``Durably.get_runs``."""
        query = {
            "status": status,
            "jobName": job_name,
            "labels": labels,
            "limit": limit,
            "offset": offset,
        }
        runs: list[Record] = await self._call(
            "getRuns", {key: value for key, value in query.items() if value is not None}
        )
        return runs

    async def get_steps(self, run_id: str) -> list[Record]:
        """Return the run's step records."""
        steps: list[Record] = await self._call("getSteps", run_id)
        return steps

    async def get_logs(self, run_id: str) -> list[Record]:
        """Return the run's log records."""
        logs: list[Record] = await self._call("getLogs", run_id)
        return logs

    async def cancel(self, run_id: str) -> Record:
        """Cancel a pending or running run."""
        run: Record = await self._call("cancel", run_id)
        return run

    async def retry(self, run_id: str) -> Record:
        """Re-run a failed or cancelled run in place; completed steps replay."""
        run: Record = await self._call("retry", run_id)
        return run

    async def retrigger(self, run_id: str) -> Record:
        """Start a new run with the same input."""
        run: Record = await self._call("retrigger", run_id)
        return run

    async def delete_run(self, run_id: str) -> Record:
        """Delete a finished run with its steps and logs."""
        run: Record = await self._call("deleteRun", run_id)
        return run

    async def purge_runs(self, older_than: Any, limit: int = 500) -> int:
        """Delete finished runs older than ``older_than`` ("7d", "12h", or a datetime)."""
        cutoff = older_than if isinstance(older_than, str) else older_than.isoformat()
        count: int = await self._call("purgeRuns", {"olderThan": cutoff, "limit": limit})
        return count

    async def close(self) -> None:
        """Let go of the engine; a leader tab's worker stops and the next tab takes over.

        Returns once another tab (or client) may lead.
        """
        unwrap(await self._adapter.close())

    def _kill_worker(self) -> None:
        """Test hook: terminate the worker behind the client's back (the watchdog restarts it).

        Does nothing in server mode.
        """
        self._adapter.killWorker()
