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
server-mode tests give it to ``durably-web serve-api --static`` instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from durably_web.sitebuild import Layout, build, make_server

__all__ = ["PAGES", "ROOT", "serve_site", "staged_site"]

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


def _link(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system after all
        shutil.copy2(source, target)
