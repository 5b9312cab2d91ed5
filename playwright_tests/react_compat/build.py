"""Build the React compatibility page into ``dist/``: ``npm ci``, then esbuild, when stale.

    .venv/bin/python -m playwright_tests.react_compat.build [--force]

``npm ci`` runs when ``node_modules`` is missing or older than ``package-lock.json``
(exact pins, install scripts off); the bundle is rebuilt when any source is newer than it.
Only the npm registry is contacted, and only by ``npm ci``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["DIST", "ROOT", "ensure_bundle"]

ROOT = Path(__file__).resolve().parent
DIST = ROOT / "dist"
_SOURCES = ("app.jsx", "index.html", "package.json", "package-lock.json")
_OUTPUTS = ("app.js", "index.html")
# npm writes this file at the end of every install: its age is the install's.
_INSTALLED = ROOT / "node_modules" / ".package-lock.json"


def _mtime(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


def _npm(*args: str) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not on PATH; the React compatibility page needs Node.js 20+")
    done = subprocess.run(
        [npm, *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"npm {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )


def ensure_bundle(*, force: bool = False) -> Path:
    """Install and bundle if needed; return the directory to serve (``dist/``)."""
    if force or _mtime(_INSTALLED) < _mtime(ROOT / "package-lock.json"):
        _npm("ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
    newest_source = max(_mtime(_INSTALLED), *(_mtime(ROOT / name) for name in _SOURCES))
    oldest_output = min(_mtime(DIST / name) for name in _OUTPUTS)
    if force or oldest_output <= newest_source:
        _npm("run", "--silent", "build")
        shutil.copyfile(ROOT / "index.html", DIST / "index.html")
    return DIST


if __name__ == "__main__":
    print(ensure_bundle(force="--force" in sys.argv[1:]))
