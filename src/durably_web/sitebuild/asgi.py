"""A built site and a Durably API on one origin, as one ASGI app (``serve-api --static``).

::

    durably-web build                                          # .build/site: the demo's site
    durably-web serve-api .build/site/jobs.py --static .build/site
    # the demo, in server mode: http://127.0.0.1:8000/?server=/api/durably

:func:`site_app` routes paths under the API's mount point (``/api/durably`` by default) to the
app of :func:`durably_web.server.create_app` (its lifespan starts and stops the engine) and
every other request to :class:`StaticFiles`, which answers exactly as ``durably-web serve``
does: both front-ends ask :class:`~durably_web.sitebuild.static.StaticSite` (same path rule,
MIME types, revalidation, gzip, 405 for other methods). Standard library only; no web
framework needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from durably_web.sitebuild.static import Response, StaticSite

__all__ = ["SiteApp", "StaticFiles", "site_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_CHUNK = 1 << 20


class StaticFiles:
    """Serve the files of ``directory`` as an ASGI app, by :class:`StaticSite`'s rules.

    Args:
        directory: the served directory.
        mounts: more files at fixed URLs (see :func:`durably_web.sitebuild.server.make_server`).
        isolated: send the cross-origin isolation headers.

    """

    def __init__(
        self, directory: Path, mounts: Mapping[str, Path] | None = None, *, isolated: bool = False
    ) -> None:
        self.site = StaticSite(directory, mounts, isolated=isolated)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ``http`` request."""
        if scope["type"] != "http":
            return
        query = scope.get("query_string", b"").decode("latin-1")
        target = _raw_path(scope) + (f"?{query}" if query else "")
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers", [])
        }
        method = str(scope.get("method", "GET"))
        # Opening, stat-ing and gzipping a file block: off the event loop.
        response = await asyncio.to_thread(self.site.respond, method, target, headers)
        with response:
            await _send(response, send)


async def _send(response: Response, send: Send) -> None:
    headers = [(name.lower().encode(), value.encode()) for name, value in response.headers]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    if not response.send_body:
        await send({"type": "http.response.body", "body": b""})
    elif response.file is None:
        await send({"type": "http.response.body", "body": response.body})
    else:
        while True:
            chunk = await asyncio.to_thread(response.file.read, _CHUNK)
            more = len(chunk) == _CHUNK
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
            if not more:
                return


def _raw_path(scope: Scope) -> str:
    """Return the request path still percent-encoded (``path`` is decoded once already)."""
    raw = scope.get("raw_path")
    if isinstance(raw, bytes):
        return raw.partition(b"?")[0].decode("latin-1")
    return quote(str(scope.get("path") or "/"), safe="/", errors="surrogateescape")


class SiteApp:
    """One origin: ``api`` below ``api_path``, ``static`` everywhere else; lifespan to ``api``."""

    def __init__(self, api: ASGIApp, static: ASGIApp, api_path: str) -> None:
        self.api = api
        self.static = static
        self.api_path = "/" + api_path.strip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one ASGI connection."""
        if scope["type"] == "lifespan":
            await self.api(scope, receive, send)
            return
        path = str(scope.get("path") or "/")
        if path == self.api_path or path.startswith(self.api_path + "/"):
            await self.api(scope, receive, send)
        else:
            await self.static(scope, receive, send)


def site_app(api: Any, static: Path, api_path: str = "/api/durably") -> SiteApp:
    """Serve ``static`` at ``/`` and ``api`` at ``api_path`` on one origin.

    ``api`` is a :class:`~durably_web.server.DurablyApp`; it strips ``api_path`` from the paths
    it sees (its ``base_path`` is set here).
    """
    api_path = "/" + api_path.strip("/")
    if hasattr(api, "base_path"):
        api.base_path = api_path
    return SiteApp(api, StaticFiles(static), api_path)
