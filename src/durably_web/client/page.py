"""``connect()`` for PyScript pages: the engine in a Web Worker, or a server over HTTP + SSE.

``connect(jobs=...)`` boots the engine in a Web Worker of the page; ``connect(url=...)``
connects to a server's Durably endpoint (``durably_web.server.create_app``, or upstream
Durably's handler). Both return the same :class:`~durably_web.client.page_client.PageClient`,
so a page's code differs only in that call. Under PyScript, both go through
the JS client's ``python.mjs``, imported with a dynamic ``import()`` (through ``Function``,
since Python cannot spell it), which works in MicroPython and Pyodide alike and needs no
PyScript ``js_modules`` entry. Its URL is ``python.mjs`` beside the client's ``index.mjs``,
which defaults to ``./_durably/client/index.mjs`` (where ``durably-web build`` puts it),
resolved against the page; pass ``client=`` when the page is elsewhere in the site.

On CPython (no ``js`` module: a script, a test), ``connect(url=...)`` returns the httpx
client :class:`~durably_web.http_client.HttpClient` (``connect_http``), which has the same
methods; ``connect(jobs=...)`` needs a browser there.
Only this module and :mod:`durably_web.client.page_client` (through the adapter) touch JS.
"""

import json

try:
    from collections.abc import Callable
    from typing import TYPE_CHECKING, Any
except ImportError:  # MicroPython: annotations are never evaluated there
    TYPE_CHECKING = False  # type: ignore[misc]  # typing's name is Final; absent here

from durably_web.client.dispatch import Dispatcher, js_callable, unwrap
from durably_web.client.page_client import PageClient
from durably_web.errors import DurablyError

if TYPE_CHECKING:
    from durably_web.http_client import HttpClient

__all__ = ["connect"]


async def connect(
    jobs: str | None = None,
    worker: str | None = None,
    packages: list[str] | None = None,
    database: str = "/durably.db",
    durability: str = "NORMAL",
    options: dict[str, Any] | None = None,
    on_status: Callable[[Any], Any] | None = None,
    client: str = "./_durably/client/index.mjs",
    ready_timeout: float = 30.0,
    ping_interval: float = 2.0,
    missed_pings: int = 3,
    max_attempts: int = 3,
    url: str | None = None,
    listen: list[str] | None = None,
) -> "PageClient | HttpClient":
    """Start the engine worker for this page, or connect to a server; return the client.

    Worker mode (``jobs=``) returns once the engine is ready; server mode (``url=``) once the
    server's jobs are known. The client has the same methods either way. In worker mode every
    tab of the site may connect to the same database: the first runs the engine worker (its
    ``role`` is ``leader``), the others forward through it (``follower``) and one of them takes
    over when it closes (docs/browser-client.md, "Several tabs").

    Args:
        jobs: URL of the job module (a ``.py`` file defining jobs), relative to the page.
        worker: URL of the worker script (default: the site's ``_durably/runtime/worker.mjs``).
        packages: extra packages for the jobs: names in the vendored lock, or wheel URLs.
        database: the database file in the origin's OPFS pool.
        durability: ``"NORMAL"`` (WAL; survives a killed tab) or ``"FULL"`` (fsync each commit).
        options: ``create_durably`` options, snake_case (``{"polling_interval": 0.5}``).
        on_status: called with a record ``(status, role, stage, attempt, error, at)`` on every
            change, boot stages included, so the page can show progress before this returns.
        client: URL of the JS client's ``index.mjs``, relative to the page.
        ready_timeout: seconds the worker has to report ready before it is restarted (and a
            follower tab has to hear from the tab running the engine).
        ping_interval: seconds between the watchdog's pings.
        missed_pings: unanswered pings in a row after which the worker is restarted.
        max_attempts: worker starts in a row before the client gives up (status failed).
        url: a server's Durably endpoint, relative to the page (``"/api/durably"``) or
            absolute: server-connected mode over HTTP + SSE, no worker (only ``on_status``,
            ``listen`` and ``client`` apply). On CPython: the endpoint's absolute URL (the
            other arguments do not apply there).
        listen: event types to listen for from the start (worker mode: from the worker's
            boot, so the ``run:start`` of a run it reclaims reaches the page). Events of these
            types that arrive before the first ``on()`` handler for their type are kept and
            delivered to it.

    Raises:
        DurablyError: the engine did not boot; ``code`` names why (``opfs_unavailable``,
            ``job_module_failed``, ``worker_failed``, ``leader_unreachable``, ...); in server
            mode the server's error or ``network_error``.

    """
    try:
        import js  # noqa: TID251 - the page side of the browser runtime
    except ImportError:  # CPython: no page, no worker
        js = None
    if js is None:
        if url is None:
            raise DurablyError(
                "connect(jobs=...) runs the engine in a browser Web Worker; outside a page use "
                "connect(url=...) for a server, or create_durably(...) for a local engine",
            )
        from durably_web.http_client import connect_http

        return await connect_http(url)
    base = js.document.baseURI
    client_url = js.URL.new(client, base).href
    adapter_url = js.URL.new("./python.mjs", client_url).href
    module = await js.Function.new("url", "return import(url)")(adapter_url)
    config: dict[str, Any] = {"listen": listen or []}
    if url is not None:
        config["url"] = js.URL.new(url, base).href
    else:
        config.update(
            jobs=jobs,
            packages=packages or [],
            database=database,
            durability=durability,
            options=options or {},
            readyTimeout=int(ready_timeout * 1000),
            pingInterval=int(ping_interval * 1000),
            missedPings=missed_pings,
            maxAttempts=max_attempts,
        )
        if worker is not None:
            config["worker"] = js.URL.new(worker, base).href
    dispatcher = Dispatcher(on_status)
    adapter = module.pyConnect(json.dumps(config), js_callable(dispatcher.receive))
    ready = unwrap(await adapter.ready)
    return PageClient(adapter, dispatcher, ready["jobs"])
