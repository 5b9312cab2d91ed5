"""Where the build's inputs, caches and outputs live, and how inputs are fingerprinted.

Everything is relative to the project root, the directory holding ``web/package.json``::

    web/package.json, web/package-lock.json   npm pins (exact versions)
    web/requirements-wasm.txt                 PyPI wheel pins, with sha256 hashes
    web/tools/                                precompile.mjs + pyc_compile.py (run by Node)
    web/py/                                   page-side Python, copied as is (optional)
    pyproject.toml, src/durably_web/          the durably_web wheel
    web/node_modules/                         npm ci (build state)
    .build/                                   downloaded wheels, caches, stamps (build state)
    web/vendor/                               the output: what the browser loads

The fingerprint of the inputs is a sha256 over every input file's path and content, so a
touched but unchanged file does not trigger a rebuild and a changed one always does.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BuildError",
    "Layout",
    "ServeError",
    "WebError",
    "find_root",
    "input_files",
    "inputs_digest",
    "sha256_file",
    "write_atomic",
]

_IGNORED_DIRS = frozenset({"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"})


class WebError(Exception):
    """A ``durably-web build`` or ``serve`` failure; the message is one line for the user."""


class BuildError(WebError):
    """A build step failed (a missing tool, the registry, a hash mismatch, bad pins)."""


class ServeError(WebError):
    """The server cannot start (the port is in use, the build is missing)."""


@dataclass(frozen=True, slots=True)
class Layout:
    """The paths of one project root (see the module docstring)."""

    root: Path

    @property
    def web(self) -> Path:
        """The directory the server serves."""
        return self.root / "web"

    @property
    def package_json(self) -> Path:
        """Return the npm pins file."""
        return self.web / "package.json"

    @property
    def package_lock(self) -> Path:
        """Return the npm lock, installed with ``npm ci``."""
        return self.web / "package-lock.json"

    @property
    def requirements(self) -> Path:
        """PyPI wheel pins with hashes."""
        return self.web / "requirements-wasm.txt"

    @property
    def tools(self) -> Path:
        """The Node precompile helpers."""
        return self.web / "tools"

    @property
    def page_py(self) -> Path:
        """Page-side Python sources, mirrored into ``vendor/py`` when present."""
        return self.web / "py"

    @property
    def node_modules(self) -> Path:
        """Where ``npm ci`` installs."""
        return self.web / "node_modules"

    @property
    def vendor(self) -> Path:
        """The build output."""
        return self.web / "vendor"

    @property
    def pyproject(self) -> Path:
        """Name, version and dependencies of the durably_web wheel."""
        return self.root / "pyproject.toml"

    @property
    def package_src(self) -> Path:
        """The sources of the durably_web wheel."""
        return self.root / "src" / "durably_web"

    @property
    def state(self) -> Path:
        """Build state: ``wheels/`` (pip downloads), ``self/``, ``pyc/`` (cache), stamps."""
        return self.root / ".build"


def find_root(start: Path | None = None) -> Path:
    """Find the project root: the nearest directory holding ``web/package.json``.

    Args:
        start: where to begin (default: the current directory). Its parents are searched
            next, then the checkout this package was imported from (``src/durably_web/../..``).

    Returns:
        The root, absolute.

    Raises:
        WebError: no such directory.

    """
    here = (start or Path.cwd()).resolve()
    package_root = Path(__file__).resolve().parents[3]
    for candidate in (here, *here.parents, package_root):
        if (candidate / "web" / "package.json").is_file():
            return candidate
    raise WebError(
        f"no project root: web/package.json not found in {here} or its parents "
        f"(nor in {package_root}); run this from a durably_web checkout"
    )


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _walk(directory: Path, suffix: str = "") -> Iterator[Path]:
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

    The pins, the Node helpers, the page-side Python, ``pyproject.toml`` and every file of
    ``src/durably_web`` (which also holds this build code, so a change to the build logic
    rebuilds too).
    """
    files = [layout.package_json, layout.package_lock, layout.requirements, layout.pyproject]
    files += _walk(layout.tools)
    files += _walk(layout.page_py, ".py")
    files += _walk(layout.package_src)
    return sorted({path for path in files if path.is_file()})


def inputs_digest(layout: Layout) -> str:
    """Hash every input file's path and content (hex sha256): the build's fingerprint."""
    digest = hashlib.sha256()
    for path in input_files(layout):
        rel = path.relative_to(layout.root).as_posix()
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
