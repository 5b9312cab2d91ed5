"""Fixtures for the demo page tests: a local server, Chromium profiles, an offline guard.

- ``server``: the project's ``web/`` over HTTP on 127.0.0.1 (session scope), through
  ``durably_web.webbuild``'s server when it is there, else a small stdlib server. Set
  ``DURABLY_WEB_ROOT`` to serve another project root (a directory holding ``web/``).
- ``broken_server``: the same files, with a job module that fails to import at ``/jobs.py``.
- ``browser``: opens persistent Chromium contexts (Debian's ``/usr/bin/chromium``), one fresh
  profile per test unless a test reopens the same one; records every request of every
  context and fails the test if one left 127.0.0.1. Request routing is not used: it would
  disable the HTTP cache.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from playwright_tests.demo.helpers import Browser, Server

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
BROKEN_JOBS = Path(__file__).with_name("broken_jobs.py")


class _Handler(SimpleHTTPRequestHandler):
    """Fallback static handler: correct MIME types, revalidation, optional ``/jobs.py``."""

    protocol_version = "HTTP/1.1"
    extensions_map = {  # noqa: RUF012 - the stdlib's own class attribute
        **SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".py": "text/x-python; charset=utf-8",
        ".json": "application/json",
        ".whl": "application/zip",
    }
    jobs: Path | None = None

    def translate_path(self, path: str) -> str:
        if self.jobs is not None and path.split("?")[0] == "/jobs.py":
            return str(self.jobs)
        return super().translate_path(path)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(jobs: Path | None = None) -> Iterator[Server]:
    root = Path(os.environ.get("DURABLY_WEB_ROOT", ROOT))
    web = root / "web"
    if not (web / "vendor" / "pyscript").is_dir():
        pytest.skip(f"{web}/vendor is missing: run `durably-web build` first")
    server: ThreadingHTTPServer
    try:
        if "DURABLY_WEB_ROOT" in os.environ:
            raise ImportError("a custom root is served by the stdlib server (symlinks)")
        from durably_web.webbuild.server import make_server

        server = make_server(root, port=0, jobs=jobs)
    except ImportError:
        handler = type("Handler", (_Handler,), {"jobs": jobs})
        server = ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(web))
        )
        server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield Server(f"http://{host!s}:{port}")
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """The demo's files on 127.0.0.1."""
    yield from _serve()


@pytest.fixture(scope="session")
def broken_server() -> Iterator[Server]:
    """The demo's files with a job module that raises on import at ``/jobs.py``."""
    yield from _serve(BROKEN_JOBS)


@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Any]:
    """One Playwright driver per module (one process cannot run two sync drivers at once,
    so it must be gone before other modules' tests start theirs).
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium: apt-get install -y chromium")
    with sync_api.sync_playwright() as playwright:
        yield playwright


@pytest.fixture
def browser(playwright_instance: Any, tmp_path: Path) -> Iterator[Browser]:
    """Chromium profiles for one test; fails the test if any request left 127.0.0.1."""
    opened = Browser(playwright_instance, CHROMIUM, tmp_path)
    try:
        yield opened
    finally:
        opened.close_all()
        shutil.rmtree(tmp_path, ignore_errors=True)
    foreign = [url for url in opened.requests if not opened.is_local(url)]
    assert not foreign, f"requests left 127.0.0.1: {foreign[:10]}"
    assert opened.requests, "no request was recorded"
