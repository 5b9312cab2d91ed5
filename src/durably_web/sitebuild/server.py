"""The static server of ``durably-web serve``: a built site over HTTP/1.1 (standard library).

What each request gets is :class:`~durably_web.sitebuild.static.StaticSite`'s to decide (the
rules ``serve-api --static`` shares); this module only runs the threaded server: keep-alive,
``TCP_NODELAY`` (no Nagle delay on a kept-alive connection), one thread per connection, idle
connections closed after two minutes, quiet unless ``verbose``, clients that hang up
mid-answer ignored.

    server = make_server(Layout(root).site, port=0, mounts={"/jobs.py": Path("my_jobs.py")})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ...
    server.shutdown(); server.server_close()
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import socketserver
import sys
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from durably_web.sitebuild.static import StaticSite

__all__ = ["StaticServer", "is_loopback", "make_server"]


class StaticServer(ThreadingHTTPServer):
    """A threaded HTTP server for one :class:`StaticSite` (build it with :func:`make_server`)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], site: StaticSite, *, verbose: bool = False):
        self.site = site
        self.verbose = verbose
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


def make_server(
    site: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    mounts: Mapping[str, Path] | None = None,
    isolated: bool = False,
    verbose: bool = False,
) -> StaticServer:
    """Bind a server for the directory ``site`` (``serve_forever()`` it, then ``server_close()``).

    Args:
        site: the directory served at ``/`` (a built site: ``Layout(root).site``).
        host: the address to bind (``127.0.0.1`` by default; others expose the files).
        port: the TCP port; 0 picks a free one (read it from ``server.server_address``).
        mounts: more files at fixed URLs: ``{"/jobs.py": file}`` replaces the site's
            ``/jobs.py``; ``{"/check/": directory}`` serves a directory below ``/check/``.
        isolated: send COOP/COEP/CORP headers (cross-origin isolation).
        verbose: log every request to stderr.

    Raises:
        OSError: the address cannot be bound (``errno.EADDRINUSE`` when the port is taken).
        ValueError: a mount is not an absolute URL path or names a missing file or directory.

    """
    return StaticServer((host, port), StaticSite(site, mounts, isolated=isolated), verbose=verbose)


def is_loopback(host: str) -> bool:
    """Tell whether binding ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host(host: str | bytes | bytearray) -> str:
    return host if isinstance(host, str) else bytes(host).decode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "durably-web"
    timeout = 120  # idle keep-alive connections are closed after this
    # TCP_NODELAY: the headers and the body go out in two writes; with Nagle's algorithm the
    # body waits for the client's delayed ACK of the headers (40 ms on Linux) on every
    # request of a keep-alive connection after its first few (bench/BOOT-NOTES.md).
    disable_nagle_algorithm = True
    server: StaticServer

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: object) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _serve(self) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        with self.server.site.respond(self.command, self.path, headers) as response:
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            if self.command not in ("GET", "HEAD"):  # its body is unread: end the connection
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if not response.send_body:
                return
            if response.file is not None:
                shutil.copyfileobj(response.file, self.wfile, 1 << 20)
            else:
                self.wfile.write(response.body)
