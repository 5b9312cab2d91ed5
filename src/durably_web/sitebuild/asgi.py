"""A static directory and a Durably API on one origin, as one ASGI app (``serve-api --static``).

::

    durably-web serve-api web/jobs.py --static web          # the demo, in server mode:
    # http://127.0.0.1:8000/?server=/api/durably

:func:`site_app` routes paths under the API's mount point (``/api/durably`` by default) to the
app of :func:`durably_web.server.create_app` (its lifespan starts and stops the engine) and
every other ``GET``/``HEAD`` to :class:`StaticFiles`, which serves a directory the way
``durably-web serve`` does (:mod:`durably_web.webbuild.server`), by the same path rule
(:func:`durably_web.webbuild.paths.resolve`): ``index.html`` for directories, no listings,
``..``/backslash/NUL refused (403), dot files and ``node_modules`` hidden (404), the same
MIME types, ``Cache-Control: no-cache`` with an ETag (304 on a match).
No gzip: this is for one machine. Standard library only; no web framework needed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from durably_web.webbuild.paths import resolve
from durably_web.webbuild.server import MIME_TYPES

__all__ = ["SiteApp", "StaticFiles", "site_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_CHUNK = 1 << 20


class StaticFiles:
    """Serve the files of ``directory`` (``GET``/``HEAD``) as an ASGI app."""

    def __init__(self, directory: Path) -> None:
        self.root = directory.resolve()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ``http`` request."""
        if scope["type"] != "http":
            return
        method = str(scope.get("method", "GET")).upper()
        if method not in ("GET", "HEAD"):
            await _plain(send, 405, [(b"allow", b"GET, HEAD")])
            return
        status, found = resolve(self.root, _raw_path(scope))
        if status == 301:
            query = scope.get("query_string", b"")
            location = str(found).encode() + (b"?" + query if query else b"")
            await _plain(send, 301, [(b"location", location)])
            return
        if not isinstance(found, Path):
            await _plain(send, status)
            return
        await self._file(found, scope, send, body=method == "GET")

    async def _file(self, path: Path, scope: Scope, send: Send, *, body: bool) -> None:
        try:
            file = path.open("rb")
        except OSError:
            await _plain(send, 404)
            return
        with file:
            stat = os.fstat(file.fileno())
            etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
            headers = [
                (b"content-type", MIME_TYPES.get(path.suffix, "application/octet-stream").encode()),
                (b"cache-control", b"no-cache"),
                (b"etag", etag.encode()),
                (b"x-content-type-options", b"nosniff"),
            ]
            for name, value in scope.get("headers", []):
                if name.lower() == b"if-none-match":
                    tags = {t.strip().removeprefix("W/") for t in value.decode().split(",")}
                    if etag in tags or "*" in tags:
                        await send(
                            {"type": "http.response.start", "status": 304, "headers": headers}
                        )
                        await send({"type": "http.response.body", "body": b""})
                        return
            headers.append((b"content-length", str(stat.st_size).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            if not body:
                await send({"type": "http.response.body", "body": b""})
                return
            while True:
                chunk = await asyncio.to_thread(file.read, _CHUNK)
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


async def _plain(send: Send, status: int, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    text = f"{status}\n".encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(text)),
    ]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": text})


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
