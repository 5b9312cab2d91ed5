"""Answers and pushes from the JS adapter (``web/client/python.mjs``), on the Python side.

- :func:`unwrap` turns an adapter reply ``{"ok", "result" | "error"}`` into a value or the
  matching durably_web error (``TimeoutError`` for a wait that timed out).
- :class:`Dispatcher` is the one Python function JS calls (``receive(kind, json)``): status
  changes, events for ``on()`` handlers, progress and logs for a wait's callbacks. Handlers
  may be sync or async; their errors are printed, never raised into JS.
- :class:`Subscription` reads one run's events with ``async for``.
- :func:`call_handler` and :func:`spawn` run page callbacks and background work the same way
  everywhere (errors printed, tasks kept referenced); :func:`js_callable` makes a Python
  function callable from JS. The live views (:mod:`durably_web.client.live`) use them too.

MicroPython-safe (see :mod:`durably_web.client.values`).
"""

import json

try:
    from collections.abc import Callable
    from typing import Any
except ImportError:  # MicroPython: annotations are never evaluated there
    pass

from durably_web.client.values import Record, event_from_wire, from_wire
from durably_web.errors import error_from_wire

__all__ = ["Dispatcher", "Subscription", "call_handler", "js_callable", "report", "spawn", "unwrap"]

_Timeout: type[Exception]
try:
    _Timeout = TimeoutError
except NameError:  # MicroPython has no builtin TimeoutError; its asyncio has one
    import asyncio

    _Timeout = asyncio.TimeoutError
# Tasks running async handlers, referenced until they finish (MicroPython tasks have no
# add_done_callback, so each removes itself).
_TASKS: set[Any] = set()


def unwrap(text: Any) -> Any:
    """Return the result of an adapter reply ``{"ok", "result" | "error"}``, or raise."""
    reply = json.loads(str(text))
    if reply.get("ok"):
        return reply.get("result")
    error = reply.get("error") or {}
    if error.get("code") == "timeout":
        raise _Timeout(error.get("error") or "timed out")
    raise error_from_wire(error)


def report(where: str, exc: BaseException) -> None:
    """Print a failure of page code that has no caller to raise it to (a handler, a task)."""
    print(f"durably_web: {where} failed: {type(exc).__name__}: {exc}")


def spawn(awaitable: Any, where: str) -> Any:
    """Run ``awaitable`` as a background task, kept referenced until it ends; return the task.

    Its failure is printed (:func:`report`), never raised: nobody awaits it. The task can be
    awaited too (its result is None after a failure).
    """
    import asyncio

    async def guarded() -> Any:
        try:
            return await awaitable
        except Exception as exc:  # noqa: BLE001 - a background failure is only reported
            report(where, exc)
            return None
        finally:
            _TASKS.discard(task)

    task = asyncio.create_task(guarded())
    _TASKS.add(task)
    return task


def call_handler(handler: Callable[[Any], Any], value: Any, where: str) -> None:
    """Call a sync or async handler; its errors are printed, never raised into the caller."""
    try:
        result = handler(value)
        if result is not None and hasattr(result, "send"):  # a coroutine (MicroPython: generator)
            spawn(result, where)
    except Exception as exc:  # noqa: BLE001 - a handler's failure is only reported
        report(where, exc)


def js_callable(function: Callable[..., Any]) -> Any:
    """Make a Python function callable from JS for as long as JS keeps it."""
    try:
        from pyscript.ffi import create_proxy
    except ImportError:
        try:
            from pyodide.ffi import create_proxy  # noqa: TID251 - Pyodide without PyScript
        except ImportError:
            return function  # MicroPython without PyScript proxies functions by itself
    return create_proxy(function)


class Dispatcher:
    """Routes the adapter's pushes (``receive(kind, json)``) to Python handlers."""

    def __init__(self, on_status: Callable[[Any], Any] | None) -> None:
        self.status_handlers: list[Callable[[Any], Any]] = [on_status] if on_status else []
        self.listeners: dict[int, Callable[[Any], Any]] = {}
        self.waiters: dict[int, tuple[Any, Any]] = {}
        self.status = Record({"status": "booting", "attempt": 0})

    def receive(self, kind: Any, text: Any) -> None:
        """Handle one push from JS: ``kind`` is status, event or wait; ``text`` is JSON."""
        data = json.loads(str(text))
        kind = str(kind)
        if kind == "status":
            error = data.get("error")
            data["error"] = error_from_wire(error) if error else None
            self.status = from_wire(data)
            for handler in list(self.status_handlers):
                call_handler(handler, self.status, "a status handler")
        elif kind == "event":
            listener = self.listeners.get(data["token"])
            if listener is not None:
                call_handler(listener, event_from_wire(data["event"]), "an event handler")
        elif kind == "wait":
            on_progress, on_log = self.waiters.get(data["token"], (None, None))
            if data["kind"] == "progress" and on_progress is not None:
                call_handler(
                    on_progress, from_wire({"progress": data["value"]}).progress, "on_progress"
                )
            elif data["kind"] == "log" and on_log is not None:
                call_handler(on_log, event_from_wire(data["value"]), "on_log")


class Subscription:
    """``async for event in durably.subscribe(run_id)``: current state first, ends after the end."""

    def __init__(self, adapter: Any, run_id: str) -> None:
        self._adapter = adapter
        self._id = adapter.subscribe(run_id)
        self.run_id = run_id

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> Record:
        result = unwrap(await self._adapter.next(self._id))
        if result["done"]:
            raise StopAsyncIteration
        return event_from_wire(result["value"])

    async def aclose(self) -> None:
        """Stop following the run (call it after a ``break``)."""
        self._adapter.unsubscribe(self._id)
