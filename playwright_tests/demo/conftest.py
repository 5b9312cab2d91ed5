"""Fixtures for the demo page tests: a local server, Chromium profiles, an offline guard.

- ``site``: the built demo site (``.build/site``, rebuilt first when its inputs changed), copied
  with the test pages (:mod:`playwright_tests.site`), for the session.
- ``server``: ``site`` over HTTP on 127.0.0.1 (session scope), through ``durably-web
  serve``'s server.
- ``broken_server``: the same files, with a job module that fails to import at ``/jobs.py``.
- ``api_server``: server mode: ``durably-web serve-api SITE/jobs.py --static SITE`` (the
  documented command on ``site``) as a real process (uvicorn) on 127.0.0.1, with a fresh
  database (and the jobs' ledger) per test; the demo page at ``/?server=/api/durably``.
- ``live_api_server``: the same with the live views' test page's jobs (``/live/jobs.py``).

``browser`` (Chromium profiles that fail the test on any request leaving 127.0.0.1) comes
from ``playwright_tests/conftest.py``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from playwright_tests.demo.helpers import ApiServer, Server
from playwright_tests.site import serve_site, staged_site

BROKEN_JOBS = Path(__file__).with_name("broken_jobs.py")


@pytest.fixture(scope="session")
def site() -> Iterator[Path]:
    """The built demo site (rebuilt first if its inputs changed) with the test pages."""
    with staged_site() as directory:
        yield directory


@pytest.fixture(scope="session")
def server(site: Path) -> Iterator[Server]:
    """The demo's files on 127.0.0.1."""
    with serve_site(site) as url:
        yield Server(url)


@pytest.fixture(scope="session")
def broken_server(site: Path) -> Iterator[Server]:
    """The demo's files with a job module that raises on import at ``/jobs.py``."""
    with serve_site(site, jobs=BROKEN_JOBS) as url:
        yield Server(url)


API = "/api/durably"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _serve_api(jobs: Path, site: Path, workdir: Path) -> Iterator[ApiServer]:
    """Run ``durably-web serve-api JOBS --static SITE`` as a process until the block ends."""
    port = _free_port()
    log = workdir / "server.log"
    command = [
        sys.executable,
        "-m",
        "durably_web",
        "serve-api",
        str(jobs),
        "--static",
        str(site),
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


@pytest.fixture
def api_server(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The documented server-mode command, run as a process until the test ends."""
    workdir = tmp_path_factory.mktemp("api-server")  # the jobs' ledger.db lands here
    with _serve_api(site / "jobs.py", site, workdir) as server:
        yield server


@pytest.fixture
def live_api_server(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """Server mode for the live views' test page: its jobs (``/live/jobs.py``) in a server."""
    with _serve_api(site / "live" / "jobs.py", site, tmp_path_factory.mktemp("api")) as server:
        yield server
