"""``connect()`` for PyScript pages: load ``web/client/python.mjs`` and boot the engine worker.

The JS module is imported with a dynamic ``import()`` (through ``Function``, since Python
cannot spell it), which works in MicroPython and Pyodide alike and needs no PyScript
``js_modules`` entry. Its URL defaults to ``client/python.mjs`` beside ``./client.mjs``,
resolved against the page; pass ``client=`` when ``client.mjs`` lives elsewhere.
Only this module and :mod:`durably_web.client.remote` (through the adapter) touch JS.
"""

import json

try:
    from collections.abc import Callable
    from typing import Any
except ImportError:  # MicroPython: annotations are never evaluated there
    pass

from durably_web import errors
from durably_web.client.dispatch import Dispatcher, unwrap
from durably_web.client.remote import DurablyClient

__all__ = ["connect"]


def _create_proxy(function: Callable[..., Any]) -> Any:
    """Make a Python function callable from JS for as long as JS keeps it."""
    try:
        from pyscript.ffi import create_proxy
    except ImportError:
        try:
            from pyodide.ffi import create_proxy  # noqa: TID251 - Pyodide without PyScript
        except ImportError:
            return function  # MicroPython without PyScript proxies functions by itself
    return create_proxy(function)


async def connect(
    jobs: str | None = None,
    worker: str | None = None,
    packages: list[str] | None = None,
    database: str = "/durably.db",
    durability: str = "NORMAL",
    options: dict[str, Any] | None = None,
    on_status: Callable[[Any], Any] | None = None,
    client: str = "./client.mjs",
    ready_timeout: float = 30.0,
    ping_interval: float = 2.0,
    missed_pings: int = 3,
    max_attempts: int = 3,
    url: str | None = None,
) -> DurablyClient:
    """Start the engine worker for this page; return its client once the engine is ready.

    Args:
        jobs: URL of the job module (a ``.py`` file defining jobs), relative to the page.
        worker: URL of the worker script (default: ``worker.mjs`` beside ``client.mjs``).
        packages: extra packages for the jobs: names in the vendored lock, or wheel URLs.
        database: the database file in the origin's OPFS pool.
        durability: ``"NORMAL"`` (WAL; survives a killed tab) or ``"FULL"`` (fsync each commit).
        options: ``create_durably`` options, snake_case (``{"polling_interval": 0.5}``).
        on_status: called with a record ``(status, stage, attempt, error, at)`` on every change,
            boot stages included, so the page can show progress before this returns.
        client: URL of ``client.mjs``, relative to the page.
        ready_timeout: seconds the worker has to report ready before it is restarted.
        ping_interval: seconds between the watchdog's pings.
        missed_pings: unanswered pings in a row after which the worker is restarted.
        max_attempts: worker starts in a row before the client gives up (status failed).
        url: a durably_web server's endpoint (server-connected mode): not available on
            pages yet; raises. On CPython use ``durably_web.client.http.connect_http``.

    Raises:
        ConflictError: code ``open_in_another_tab``: another tab owns this database.
        DurablyError: the engine did not boot; ``code`` names why (``opfs_unavailable``,
            ``job_module_failed``, ``worker_failed``, ...).

    """
    if url is not None:
        raise errors.DurablyError(
            "connect(url=...) (server-connected mode over HTTP + SSE) is not available on "
            "PyScript pages yet; use connect(jobs=...) for the in-browser engine",
        )
    import js  # noqa: TID251 - the page side of the browser runtime

    base = js.document.baseURI
    client_url = js.URL.new(client, base).href
    adapter_url = js.URL.new("./client/python.mjs", client_url).href
    module = await js.Function.new("url", "return import(url)")(adapter_url)
    config = {
        "jobs": jobs,
        "packages": packages or [],
        "database": database,
        "durability": durability,
        "options": options or {},
        "readyTimeout": int(ready_timeout * 1000),
        "pingInterval": int(ping_interval * 1000),
        "missedPings": missed_pings,
        "maxAttempts": max_attempts,
    }
    if worker is not None:
        config["worker"] = js.URL.new(worker, base).href
    dispatcher = Dispatcher(on_status)
    adapter = module.pyConnect(json.dumps(config), _create_proxy(dispatcher.receive))
    ready = unwrap(await adapter.ready)
    return DurablyClient(adapter, dispatcher, ready["jobs"])
