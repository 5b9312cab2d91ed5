"""Where the build's inputs, caches and outputs live, and how inputs are fingerprinted.

The inputs are package data of the installed ``durably_web`` (found from this package's own
directory, never from a checkout)::

    durably_web/web/pins/          package.json + package-lock.json (npm pins, exact versions),
                                   requirements-wasm.txt (PyPI wheel pins with sha256 hashes)
    durably_web/web/runtime/       the engine worker and its modules (worker.mjs, ...)
    durably_web/web/client/        the JS client pages import (index.mjs, ...)
    durably_web/web/dashboard/     the runs dashboard every site gets (index.html, ...)
    durably_web/web/py/            page-side Python copied as is (the page package's light root)
    durably_web/web/demo/          the demo app: index.html, demo.py, demo_table.py, jobs.py
    durably_web/sitebuild/tools/   precompile.mjs + pyc_compile.py (run by Node)
    durably_web/**                 the sources of the durably_web wheel Pyodide loads

Build state and the output go under ``.build/`` of the *work directory* (see
:func:`find_root`)::

    .build/npm/                    a copy of the npm pins and ``npm ci``'s node_modules
    .build/wheels/, pyc/, self/    downloaded wheels, the .pyc cache, durably_web's own wheel
    .build/stamp.json, stamps/     fingerprints of the last build
    .build/site/                   the output: a static site (URL layout below)

A built site, as served at ``/``::

    /                              the app's own files (the demo: index.html, demo.py, ...)
    /_durably/runtime/             worker.mjs, runtime.mjs, sqlite_bridge.mjs, opfs.mjs
    /_durably/client/              index.mjs (what pages import) and the client's modules
    /_durably/dashboard/           the runs dashboard (``?server=``, ``?db=``, ``?jobs=``)
    /_durably/vendor/              pyodide/, sqlite-wasm/, pyscript/, micropython/, py/
    /_durably/manifest.json        every file of the site: path -> size, sha256

Everything of durably_web's sits below :data:`PREFIX`, so an app's own files never collide
with the runtime's. The fingerprint of the inputs is a sha256 over every input file's path
and content, so a touched but unchanged file does not trigger a rebuild and a changed one
always does.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "PACKAGE",
    "PREFIX",
    "VENDOR",
    "BuildError",
    "Layout",
    "ServeError",
    "WebError",
    "find_root",
    "input_files",
    "inputs_digest",
    "sha256_file",
    "walk",
    "write_atomic",
]

PACKAGE = Path(__file__).resolve().parents[1]
"""The directory of the installed ``durably_web`` package: where every build input is."""

PREFIX = "_durably"
"""The top-level directory (and URL path segment) of a built site holding durably_web's files."""

VENDOR = f"{PREFIX}/vendor"
"""The vendored runtimes and wheels' directory inside a site."""

STATE = ".build"
"""The directory of the work directory holding build state and the built site."""

_IGNORED_DIRS = frozenset({"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"})


class WebError(Exception):
    """A ``durably-web build`` or ``serve`` failure; the message is one line for the user."""


class BuildError(WebError):
    """A build step failed (a missing tool, the registry, a hash mismatch, bad pins)."""


class ServeError(WebError):
    """The server cannot start (the port is in use, the build is missing)."""


@dataclass(frozen=True, slots=True)
class Layout:
    """The paths of one build (see the module docstring).

    Attributes:
        root: the work directory: build state and the built site go in its ``.build/``.
        package: the ``durably_web`` package directory the inputs are read from (the installed
            one; tests pass a copy).

    """

    root: Path
    package: Path = field(default=PACKAGE)

    @property
    def web(self) -> Path:
        """The package data: runtime, client, page package root, demo, pins."""
        return self.package / "web"

    @property
    def pins(self) -> Path:
        """The npm and PyPI pins."""
        return self.web / "pins"

    @property
    def package_json(self) -> Path:
        """Return the npm pins file."""
        return self.pins / "package.json"

    @property
    def package_lock(self) -> Path:
        """Return the npm lock, installed with ``npm ci``."""
        return self.pins / "package-lock.json"

    @property
    def requirements(self) -> Path:
        """PyPI wheel pins with hashes."""
        return self.pins / "requirements-wasm.txt"

    @property
    def runtime(self) -> Path:
        """The engine worker's modules, served at ``/_durably/runtime/``."""
        return self.web / "runtime"

    @property
    def client(self) -> Path:
        """The JS client, served at ``/_durably/client/``."""
        return self.web / "client"

    @property
    def dashboard(self) -> Path:
        """The runs dashboard (on ``durably_web.client.live``), at ``/_durably/dashboard/``."""
        return self.web / "dashboard"

    @property
    def page_py(self) -> Path:
        """Page-side Python sources, served as they are below ``/_durably/vendor/py/``."""
        return self.web / "py"

    @property
    def app(self) -> Path:
        """The app whose files are served at ``/``: the demo."""
        return self.web / "demo"

    @property
    def tools(self) -> Path:
        """The Node precompile helpers."""
        return self.package / "sitebuild" / "tools"

    @property
    def state(self) -> Path:
        """Build state: ``npm/``, ``wheels/``, ``self/``, ``pyc/``, stamps, and the site."""
        return self.root / STATE

    @property
    def npm(self) -> Path:
        """Where the npm pins are copied and ``npm ci`` runs."""
        return self.state / "npm"

    @property
    def node_modules(self) -> Path:
        """Where ``npm ci`` installs."""
        return self.npm / "node_modules"

    @property
    def site(self) -> Path:
        """The build output: the directory a static server serves."""
        return self.state / "site"

    @property
    def vendor(self) -> Path:
        """The vendored runtimes and wheels inside the site."""
        return self.site / VENDOR


def find_root(start: Path | None = None) -> Path:
    """Find the work directory: the nearest one, from ``start`` up, that holds a build.

    A directory holds a build when its ``.build/stamp.json`` exists (every build writes it).
    With none, ``start`` itself is the work directory: a first build goes there.

    Args:
        start: where to begin (default: the current directory).

    Returns:
        The work directory, absolute.

    """
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / STATE / "stamp.json").is_file():
            return candidate
    return here


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def walk(directory: Path, suffix: str = "") -> Iterator[Path]:
    """Every file below ``directory`` ending with ``suffix``, sorted, caches excluded.

    Bytecode files and the directories of :data:`_IGNORED_DIRS` are skipped.
    """
    if not directory.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if d not in _IGNORED_DIRS)
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")) or not name.endswith(suffix):
                continue
            yield Path(dirpath) / name


def input_files(layout: Layout) -> list[Path]:
    """Every file the build output depends on, sorted (bytecode caches excluded).

    Every file of the ``durably_web`` package: the pins, the runtime, the client, the demo,
    the Node helpers and the sources of the wheel (which also hold this build code, so a
    change to the build logic rebuilds too).
    """
    return sorted(walk(layout.package))


def inputs_digest(layout: Layout, extra: bytes = b"") -> str:
    """Hash every input file's path and content, and ``extra`` (hex sha256): the fingerprint.

    Args:
        layout: the build.
        extra: further input that is not a file (the project metadata of the wheel).

    """
    digest = hashlib.sha256(extra)
    for path in input_files(layout):
        rel = path.relative_to(layout.package).as_posix()
        digest.update(f"{rel}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    A server reading ``path`` at the same time sees the old file or the new one, never half.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
