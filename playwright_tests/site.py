"""The built demo site with the test pages beside it, on 127.0.0.1, for the browser tests.

``durably-web build`` writes the demo's site into ``.build/site`` (the app at ``/``, the
runtime, client and vendored files below ``/_durably/``). :func:`staged_site` builds it when
its inputs changed (a no-op otherwise) and makes a temporary copy of it (hard links) with
the test pages added, which no product build ever contains:

- ``/check/``: the self-check pages (``pages/check``: every client method, the JS client's
  lifecycle);
- ``/tests/``: the Pyodide test runner (``pages/tests``); its inputs are staged into
  ``/tests/assets/`` by ``tests/pyodide/assets.py``;
- ``/live/``: the live views' test page (``pages/live``), with its own job module.

:func:`serve_site` serves such a directory with ``durably-web serve``'s server; the
server-mode tests give it to ``durably-web serve-api --static`` instead. :func:`seed_caches`
lets an app's build (``build(app, app=app)``) reuse this checkout's downloads and compiled
archives, and :class:`SiteServer` serves a site on a port that survives a stop and a start
(a service worker belongs to an origin: host and port), with ``durably-web serve``'s rules or
as a plain static host.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from durably_web.sitebuild import Layout, build, make_server

__all__ = ["PAGES", "ROOT", "SiteServer", "seed_caches", "serve_site", "staged_site"]

ROOT = Path(__file__).resolve().parents[1]
PAGES = Path(__file__).with_name("pages")


@contextmanager
def staged_site() -> Iterator[Path]:
    """Yield a temporary copy of the current demo site with the test pages; delete it after."""
    site = build(ROOT).site
    state = Layout(ROOT).state  # the site's file system: hard links work
    out = Path(tempfile.mkdtemp(prefix="test-site-", dir=state))
    try:
        shutil.copytree(site, out, dirs_exist_ok=True, copy_function=_link)
        for name in ("check", "tests", "live"):
            shutil.copytree(PAGES / name, out / name, ignore=shutil.ignore_patterns("__pycache__"))
        yield out
    finally:
        shutil.rmtree(out, ignore_errors=True)


@contextmanager
def serve_site(site: Path, *, jobs: Path | None = None, isolated: bool = False) -> Iterator[str]:
    """Serve ``site`` on a free port of 127.0.0.1; yield the base URL (no trailing slash).

    Args:
        site: the directory to serve (a :func:`staged_site`).
        jobs: a job module served at ``/jobs.py`` instead of the demo's.
        isolated: send the cross-origin isolation headers.

    """
    mounts = {"/jobs.py": jobs} if jobs is not None else {}
    server = make_server(site, port=0, mounts=mounts, isolated=isolated)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.url.rstrip("/")
    finally:
        server.shutdown()
        server.server_close()


def seed_caches(root: Path) -> None:
    """Give the work directory ``root`` this checkout's npm files (shared, read-only use) and
    compiled archives and wheels (copied), so building an app there needs no Node and no
    download. The checkout's demo build must be current (``build(ROOT)``)."""
    repo, layout = Layout(ROOT), Layout(root)
    layout.npm_packages.parent.mkdir(parents=True, exist_ok=True)
    layout.npm_packages.symlink_to(repo.npm_packages)
    shutil.copytree(repo.state / "pyc", layout.state / "pyc")
    shutil.copytree(repo.state / "wheels", layout.state / "wheels")


class SiteServer:
    """A site on 127.0.0.1 at a fixed free port, stopped and started again at will.

    ``plain=True`` serves it as a generic static host does instead: Python's
    ``http.server`` with its default headers (``Last-Modified``, no ``Cache-Control``, no
    ETag, no compression, no cross-origin isolation), types from ``/etc/mime.types``.
    """

    def __init__(self, site: Path, *, plain: bool = False) -> None:
        self.site = site
        self.plain = plain
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The site's URL, ending with ``/``."""
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> SiteServer:
        """Serve the site (again)."""
        assert self._server is None, "already serving"
        if self.plain:
            handler = functools.partial(_PlainHandler, directory=str(self.site))
            self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        else:
            self._server = make_server(self.site, port=self.port)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving: connections are refused until the next :meth:`start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _PlainHandler(http.server.SimpleHTTPRequestHandler):
    """The standard library's static file handler, quiet."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _link(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system after all
        shutil.copy2(source, target)
