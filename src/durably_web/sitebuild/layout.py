"""Where the build's inputs, caches and outputs live, and how inputs are fingerprinted.

The inputs are package data of the installed ``durably_web`` (found from this package's own
directory, never from a checkout), plus the app's own directory when one is given::

    durably_web/web/pins/          package.json + package-lock.json (npm pins, exact versions,
                                   sha512 integrity), requirements-wasm.txt (PyPI wheel pins)
    durably_web/web/precompiled/   the stdlib zip and the wheels compiled to .pyc, with
                                   index.json (written when the durably-web wheel is built;
                                   absent in a checkout: see :mod:`.precompiled`)
    durably_web/web/runtime/       the engine worker, the service worker, offline.mjs
    durably_web/web/client/        the JS client pages import (index.mjs, ...)
    durably_web/web/dashboard/     the runs dashboard every site gets (index.html, ...)
    durably_web/web/py/            page-side Python copied as is (the page package's light root)
    durably_web/web/demo/          the demo app: index.html, demo.py, demo_table.py, jobs.py
    durably_web/web/starter/       what ``durably-web new`` writes
    durably_web/sitebuild/tools/   precompile.mjs + pyc_compile.py (run by Node, when needed)
    durably_web/**                 the sources of the durably_web wheel Pyodide loads
    APP/                           an app's files (``durably-web build APP``); else the demo

Build state goes under ``.build/`` of the *work directory* (the app's directory, or for the
demo the one :func:`find_root` finds); downloads are shared through :func:`user_cache`::

    .build/npm/packages/<name>/    the files taken from each pinned npm tarball
    .build/wheels/, pyc/, self/    downloaded wheels, the .pyc cache, durably_web's own wheel
    .build/stamp.json              fingerprint of the last build
    .build/site/                   the output, unless ``--out`` puts it elsewhere

A built site, as served at ``/``::

    /                              the app's own files (the demo: index.html, demo.py, ...)
    /durably-sw.js                 the service worker (:data:`SERVICE_WORKER`; generated)
    /_durably/runtime/             worker.mjs, runtime.mjs, sqlite_bridge.mjs, opfs.mjs,
                                   service_worker.js, offline.mjs
    /_durably/client/              index.mjs (what pages import) and the client's modules
    /_durably/dashboard/           the runs dashboard (``?server=``, ``?db=``, ``?jobs=``)
    /_durably/vendor/              pyodide/, sqlite-wasm/, pyscript/, micropython/, py/
    /_durably/manifest.json        every file of the site: path -> size, sha256 (its sha256
                                   is the build's id; the service worker is not listed)

Everything of durably_web's sits below :data:`PREFIX` (and the service worker, which must sit
at the top to control the whole site), so an app's own files never collide with the
runtime's. The fingerprint of the inputs is a sha256 over every input file's path and
content, so a touched but unchanged file does not trigger a rebuild and a changed one always
does.
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
    "SERVICE_WORKER",
    "VENDOR",
    "BuildError",
    "Layout",
    "ServeError",
    "WebError",
    "app_files",
    "check_app",
    "find_root",
    "input_files",
    "inputs_digest",
    "sha256_file",
    "user_cache",
    "walk",
    "write_atomic",
]

PACKAGE = Path(__file__).resolve().parents[1]
"""The directory of the installed ``durably_web`` package: where every build input is."""

PREFIX = "_durably"
"""The top-level directory (and URL path segment) of a built site holding durably_web's files."""

VENDOR = f"{PREFIX}/vendor"
"""The vendored runtimes and wheels' directory inside a site."""

SERVICE_WORKER = "durably-sw.js"
"""The service worker's file at the top of a site (its scope is the site's directory)."""

STATE = ".build"
"""The directory of the work directory holding build state and (by default) the built site."""

_IGNORED_DIRS = frozenset({"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"})


class WebError(Exception):
    """A ``durably-web build``, ``serve`` or ``new`` failure; the message is one line."""


class BuildError(WebError):
    """A build step failed (the registry, a hash mismatch, bad pins, a bad app directory)."""


class ServeError(WebError):
    """The server cannot start (the port is in use, the build is missing)."""


@dataclass(frozen=True, slots=True)
class Layout:
    """The paths of one build (see the module docstring).

    Attributes:
        root: the work directory: build state goes in its ``.build/``.
        package: the ``durably_web`` package directory the inputs are read from (the installed
            one; tests pass a copy).
        app_dir: the app whose files are served at ``/``; None: the demo of the package.
        out: where the site is written; None: ``.build/site`` of ``root``.

    """

    root: Path
    package: Path = field(default=PACKAGE)
    app_dir: Path | None = None
    out: Path | None = None

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
        """Return the npm lock: exact versions and sha512 integrity of the tarballs."""
        return self.pins / "package-lock.json"

    @property
    def requirements(self) -> Path:
        """PyPI wheel pins with hashes."""
        return self.pins / "requirements-wasm.txt"

    @property
    def precompiled(self) -> Path:
        """The archives precompiled when the durably-web wheel was built (may be absent)."""
        return self.web / "precompiled"

    @property
    def runtime(self) -> Path:
        """The engine worker's and the service worker's modules: ``/_durably/runtime/``."""
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
    def starter(self) -> Path:
        """The starter app ``durably-web new`` copies."""
        return self.web / "starter"

    @property
    def app(self) -> Path:
        """The app whose files are served at ``/``: ``app_dir``, else the demo."""
        return self.app_dir if self.app_dir is not None else self.web / "demo"

    @property
    def tools(self) -> Path:
        """The Node precompile helpers."""
        return self.package / "sitebuild" / "tools"

    @property
    def state(self) -> Path:
        """Build state: ``npm/``, ``wheels/``, ``self/``, ``pyc/``, the stamp (and the site)."""
        return self.root / STATE

    @property
    def npm_packages(self) -> Path:
        """Where the files of the npm tarballs are extracted, one directory per package."""
        return self.state / "npm" / "packages"

    @property
    def site(self) -> Path:
        """The build output: the directory a static server serves."""
        return self.out if self.out is not None else self.state / "site"

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


def user_cache() -> Path:
    """Return the per-user download cache (verified tarballs are shared by every build).

    ``DURABLY_WEB_CACHE`` if set, else ``$XDG_CACHE_HOME/durably-web``, else
    ``~/.cache/durably-web``.
    """
    explicit = os.environ.get("DURABLY_WEB_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "durably-web"


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


def check_app(app: Path) -> Path:
    """Return ``app`` if it is an app directory (it has an ``index.html``).

    Raises:
        BuildError: it is not (missing, or without ``index.html``).

    """
    if not (app / "index.html").is_file():
        what = "no such directory" if not app.is_dir() else "it has no index.html"
        raise BuildError(
            f"{app} is not an app directory ({what}); `durably-web new DIR` writes a starter app"
        )
    return app


def app_files(layout: Layout) -> dict[str, Path]:
    """Map the app's files to their paths at the top of the site.

    Every file of the app's directory, except dot files and directories, bytecode caches, and
    the site itself when ``--out`` puts it inside the app.

    Raises:
        BuildError: the app has no ``index.html``, or a file takes a name the runtime owns
            (``_durably/``, :data:`SERVICE_WORKER`).

    """
    app = check_app(layout.app)
    skip = layout.site.resolve()
    files = {}
    for dirpath, dirnames, filenames in os.walk(app):
        directory = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".")
            and d not in _IGNORED_DIRS
            and (directory / d).resolve() != skip
        )
        for name in sorted(filenames):
            if name.startswith(".") or name.endswith((".pyc", ".pyo")):
                continue
            rel = (directory / name).relative_to(app).as_posix()
            if rel.split("/")[0] == PREFIX or rel == SERVICE_WORKER:
                raise BuildError(
                    f"{directory / name}: {rel.split('/')[0]} is reserved for durably_web's "
                    "files in a site; rename it"
                )
            files[rel] = directory / name
    return files


def input_files(layout: Layout) -> list[Path]:
    """Every file of the ``durably_web`` package, sorted (bytecode caches excluded).

    The pins, the runtime, the client, the demo, the precompiled archives, the Node helpers
    and the sources of the wheel, which also hold this build code (so a change to the build
    logic rebuilds too).
    """
    return sorted(walk(layout.package))


def inputs_digest(layout: Layout, extra: bytes = b"") -> str:
    """Return the build's fingerprint (hex sha256).

    It covers every package file's path and content (:func:`input_files`), the app's files
    (:func:`app_files`) when the app is not the demo, where the site goes, and ``extra``.

    Args:
        layout: the build.
        extra: further input that is not a file (the project metadata of the wheel).

    """
    digest = hashlib.sha256(extra)
    digest.update(f"site\0{layout.site.resolve()}\n".encode())
    for path in input_files(layout):
        rel = path.relative_to(layout.package).as_posix()
        digest.update(f"package/{rel}\0{sha256_file(path)}\n".encode())
    if layout.app_dir is not None:
        for rel, path in app_files(layout).items():
            digest.update(f"app/{rel}\0{sha256_file(path)}\n".encode())
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
