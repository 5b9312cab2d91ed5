"""Fixtures for the demo page tests: a local server, Chromium profiles, an offline guard.

- ``server``: the project's ``web/`` over HTTP on 127.0.0.1 (session scope), through
  ``durably_web.webbuild``'s server when it is there, else a small stdlib server. Set
  ``DURABLY_WEB_ROOT`` to serve another project root (a directory holding ``web/``).
- ``broken_server``: the same files, with a job module that fails to import at ``/jobs.py``.
- ``api_server``: server mode: ``durably-web serve-api web/jobs.py --static web`` as a real
  process (uvicorn) on 127.0.0.1, with a fresh database (and the jobs' ledger) per test; the
  demo page at ``/?server=/api/durably``.
- ``browser``: opens persistent Chromium contexts (Debian's ``/usr/bin/chromium``), one fresh
  profile per test unless a test reopens the same one; records every request of every
  context and fails the test if one left 127.0.0.1. Request routing is not used: it would
  disable the HTTP cache.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from playwright_tests.browser import CHROMIUM
from playwright_tests.demo.helpers import ApiServer, Browser, Server

ROOT = Path(__file__).resolve().parents[2]
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


API = "/api/durably"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The documented server-mode command, run as a process until the test ends."""
    web = ROOT / "web"
    if not (web / "vendor" / "pyscript").is_dir():
        pytest.skip(f"{web}/vendor is missing: run `durably-web build` first")
    pytest.importorskip("uvicorn")
    workdir = tmp_path_factory.mktemp("api-server")  # the jobs' ledger.db lands here
    port = _free_port()
    log = workdir / "server.log"
    command = [
        sys.executable,
        "-m",
        "durably_web",
        "serve-api",
        str(web / "jobs.py"),
        "--static",
        str(web),
        "--base-path",
        API,
        "--db",
        str(workdir / "demo.db"),
        "--port",
        str(port),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"serve-api exited with {process.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}{API}/jobs", timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"serve-api did not answer within 60 s:\n{log.read_text()}")
            time.sleep(0.2)
        yield ApiServer(url, API, log)
    finally:
        process.terminate()  # uvicorn shuts down gracefully on SIGTERM (engine stopped)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


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
