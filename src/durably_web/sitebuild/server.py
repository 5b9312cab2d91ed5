"""The static server of ``durably-web serve``: the project's ``web/`` directory over HTTP/1.1.

Contract:

- ``GET`` and ``HEAD`` of files under ``web/`` (``/`` and ``/dir/`` serve ``index.html``;
  ``/dir`` redirects to ``/dir/``). No directory listings. ``..`` segments, backslashes and
  NUL are refused with 403, as is anything that resolves outside ``web/``; dot files and
  ``/node_modules/`` are 404, so the page can only depend on what ``web/vendor`` holds;
  paths over 4 KiB are 414 (the rule of :func:`durably_web.webbuild.paths.resolve`).
- ``/jobs.py`` (the demo page's job module) can be any file given at start (``--jobs``).
- MIME types: ``.wasm`` ``application/wasm`` (streaming compilation needs it), ``.mjs`` and
  ``.js`` JavaScript (module imports need it), ``.py`` ``text/x-python``, and so on.
- ``Cache-Control: no-cache`` with an ETag and ``Last-Modified``: the browser keeps its copy
  and revalidates it on every load (``304 Not Modified``), so a rebuilt file is never stale.
- gzip for compressible types when the request accepts it (``Vary: Accept-Encoding``); the
  compressed bytes are cached per file version. ``.zip`` and ``.whl`` are sent as they are:
  their members are already deflated.
- ``isolated``: ``Cross-Origin-Opener-Policy: same-origin``, ``Cross-Origin-Embedder-Policy:
  require-corp`` and ``Cross-Origin-Resource-Policy: same-origin`` on every response (needed
  only for SharedArrayBuffer; the opfs-sahpool VFS does not need them).
- Keep-alive, one thread per connection, quiet unless ``verbose``.
"""

from __future__ import annotations

import email.utils
import gzip
import ipaddress
import os
import shutil
import socket
import socketserver
import sys
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from durably_web.webbuild.paths import resolve, split_target

__all__ = ["COMPRESSIBLE", "MIME_TYPES", "DemoServer", "is_loopback", "make_server"]

MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".py": "text/x-python; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".map": "application/json",
    ".whl": "application/octet-stream",
    ".zip": "application/zip",
    ".ico": "image/x-icon",
    ".png": "image/png",
}
"""Content types by suffix; anything else is ``application/octet-stream``."""

COMPRESSIBLE = frozenset(
    {".html", ".js", ".mjs", ".json", ".wasm", ".css", ".py", ".svg", ".txt", ".map"}
)
"""Suffixes sent gzipped to clients that accept it."""


class DemoServer(ThreadingHTTPServer):
    """A threaded HTTP server for one ``web/`` directory (build it with :func:`make_server`)."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        web: Path,
        *,
        jobs: Path | None = None,
        isolated: bool = False,
        verbose: bool = False,
    ) -> None:
        self.web = web.resolve()
        self.jobs = jobs.resolve() if jobs is not None else None
        self.isolated = isolated
        self.verbose = verbose
        self._gzipped: dict[Path, tuple[tuple[int, int], bytes]] = {}
        self._gzip_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        """Return the server's base URL, such as ``http://127.0.0.1:8000/``."""
        host, port = _host(self.server_address[0]), self.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    def server_bind(self) -> None:
        """Bind without the reverse DNS lookup ``HTTPServer`` does (it can stall offline)."""
        socketserver.TCPServer.server_bind(self)
        host, port = _host(self.server_address[0]), self.server_address[1]
        self.server_name = host
        self.server_port = int(port)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """Ignore clients that hang up mid-response; report anything else."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)

    def gzipped(self, path: Path, version: tuple[int, int], read: Callable[[], bytes]) -> bytes:
        """Return a file gzipped, cached while ``path`` keeps its ``(size, mtime_ns)`` version.

        Args:
            path: the file.
            version: its size and mtime, from the open file.
            read: returns the open file's content (only called on a cache miss).

        """
        with self._gzip_lock:
            cached = self._gzipped.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        compressed = gzip.compress(read(), compresslevel=6, mtime=0)
        with self._gzip_lock:
            self._gzipped[path] = (version, compressed)
        return compressed


def make_server(
    root: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    jobs: Path | None = None,
    isolated: bool = False,
    *,
    verbose: bool = False,
) -> DemoServer:
    """Bind a server for ``root/web`` (call ``serve_forever()`` on it, then ``server_close()``).

    Args:
        root: the project root; its ``web/`` directory is served.
        host: the address to bind (``127.0.0.1`` by default; others expose the files).
        port: the TCP port; 0 picks a free one (read it from ``server.server_address``).
        jobs: a Python file served at ``/jobs.py`` instead of ``web/jobs.py``.
        isolated: send COOP/COEP/CORP headers (cross-origin isolation).
        verbose: log every request to stderr.

    Raises:
        OSError: the address cannot be bound (``errno.EADDRINUSE`` when the port is taken).

    """
    return DemoServer((host, port), root / "web", jobs=jobs, isolated=isolated, verbose=verbose)


def is_loopback(host: str) -> bool:
    """Tell whether binding ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def accepts_gzip(header: str | None) -> bool:
    """Tell whether an ``Accept-Encoding`` value allows gzip (``gzip;q=0`` refuses it)."""
    qualities: dict[str, float] = {}
    for item in (header or "").split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        qualities[coding.lower()] = quality
    for coding in ("gzip", "x-gzip", "*"):
        if coding in qualities:
            return qualities[coding] > 0
    return False


def _host(host: str | bytes | bytearray) -> str:
    return host if isinstance(host, str) else bytes(host).decode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "durably-web"
    timeout = 120  # idle keep-alive connections are closed after this
    server: DemoServer

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def log_message(self, format: str, *args: object) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        if self.server.isolated:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        super().end_headers()

    def _serve(self, *, body: bool) -> None:
        target = self._resolve()
        if target is None:
            return
        try:
            file = target.open("rb")
        except OSError:
            self._plain(HTTPStatus.NOT_FOUND)
            return
        with file:
            stat = os.fstat(file.fileno())
            suffix = target.suffix.lower()
            compressible = suffix in COMPRESSIBLE
            encode = compressible and accepts_gzip(self.headers.get("Accept-Encoding"))
            etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}{"-gz" if encode else ""}"'
            headers = {
                "ETag": etag,
                "Last-Modified": email.utils.formatdate(stat.st_mtime, usegmt=True),
            }
            if compressible:
                headers["Vary"] = "Accept-Encoding"
            if self._not_modified(etag, stat.st_mtime):
                self.send_response(HTTPStatus.NOT_MODIFIED)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                return
            data: bytes | None = None
            if encode:
                version = (stat.st_size, stat.st_mtime_ns)
                data = self.server.gzipped(target, version, file.read)
                headers["Content-Encoding"] = "gzip"
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", MIME_TYPES.get(suffix, "application/octet-stream"))
            self.send_header("Content-Length", str(stat.st_size if data is None else len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if not body:
                return
            if data is None:
                shutil.copyfileobj(file, self.wfile, 1 << 20)
            else:
                self.wfile.write(data)

    def _not_modified(self, etag: str, mtime: float) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
            return "*" in tags or etag in tags
        since = self.headers.get("If-Modified-Since")
        if since is None:
            return False
        try:
            date = email.utils.parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        return date.tzinfo is not None and int(mtime) <= date.timestamp()

    def _resolve(self) -> Path | None:
        """Return the file a request names, or None after answering with an error or redirect."""
        path, query = split_target(self.path)
        if self.server.jobs is not None and unquote(path) == "/jobs.py":
            return self.server.jobs
        status, found = resolve(self.server.web, path)
        if status == HTTPStatus.MOVED_PERMANENTLY:
            location = f"{found}?{query}" if query else str(found)
            self._plain(HTTPStatus.MOVED_PERMANENTLY, location=location)
            return None
        if not isinstance(found, Path):
            self._plain(HTTPStatus(status))
            return None
        return found

    def _plain(self, status: HTTPStatus, *, body: bool = True, location: str | None = None) -> None:
        text = f"{status.value} {status.phrase}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(text)))
        if location is not None:
            self.send_header("Location", location)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(text)
