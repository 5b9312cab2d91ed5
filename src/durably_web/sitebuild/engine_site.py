"""The engine site: one tar of the Python packages the engine worker imports, and its manifest.

The engine worker (``web/runtime/boot.mjs``, ``web/runtime/engine_site.mjs``) does not install
its packages with Pyodide's ``loadPackage`` (one request and a Python-side unzip per wheel,
after the interpreter started): it fetches one tar, writes its files into site-packages before
Python starts and loads its WebAssembly extension modules (pydantic_core) there too, at the
same addresses at every boot. That is what makes a memory snapshot taken after the imports
restorable (``web/runtime/snapshot.mjs``).

Two files beside ``pyodide.mjs``:

- ``engine-site.tar``: every member of the served (precompiled) wheels of the engine's
  packages, :data:`ENGINE_ROOTS` and their dependencies in the lock, minus
  :data:`BROWSER_EXCLUDED`; ustar, sorted, fixed dates and modes (reproducible).
- ``engine.json``: ``format``, ``site`` (the tar's name), ``dynlibs`` (its extension
  modules, in load order), ``imports`` (what a boot imports, and a snapshot holds) and
  ``packages`` (name -> version).

A snapshot is keyed by the build id (the sha256 of the site's manifest), which changes with
any byte of these files, of Pyodide and of the stdlib.
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from durably_web.sitebuild.layout import BuildError

__all__ = [
    "BROWSER_EXCLUDED",
    "ENGINE_FORMAT",
    "ENGINE_IMPORTS",
    "ENGINE_ROOTS",
    "MANIFEST_FILE",
    "SITE_FILE",
    "engine_site",
]

ENGINE_FORMAT = 1
"""The ``format`` of ``engine.json``; ``web/runtime/engine_site.mjs`` reads only this one."""

ENGINE_ROOTS = ("durably-web", "pydantic")
"""The lock names the engine worker needs; their dependencies in the lock come with them."""

ENGINE_IMPORTS = ("durably_web.browser.boot",)
"""Modules every boot imports before the page's code, so a memory snapshot holds them."""

BROWSER_EXCLUDED = (
    "durably_web/__main__.pyc",
    "durably_web/cli/",
    "durably_web/client/",
    "durably_web/http_client/",
    "durably_web/server/",
    "durably_web/sitebuild/",
    "durably_web/webbuild/",
)
"""Members of the durably_web wheel the engine worker never imports (the CLI, the page
client, the HTTP client, the server, the site builder): left out of the tar."""

SITE_FILE = "engine-site.tar"
"""The tar's file name beside ``pyodide.mjs``."""

MANIFEST_FILE = "engine.json"
"""The manifest's file name beside ``pyodide.mjs``."""


def engine_site(lock: Mapping[str, Any], wheels: Iterable[Path]) -> dict[str, bytes]:
    """Build the tar and ``engine.json``.

    Args:
        lock: the lock the build serves (``build_lock``): names, versions, dependencies.
        wheels: the served (precompiled) wheels; the lock's ``file_name`` picks them.

    Returns:
        File name (beside ``pyodide.mjs``) -> bytes.

    Raises:
        BuildError: a needed package is not served, or a member name does not fit ustar.

    """
    packages = lock["packages"]
    names = _closure(packages, ENGINE_ROOTS)
    by_file = {path.name: path for path in wheels}
    members: dict[str, bytes] = {}
    for name in names:
        path = by_file.get(packages[name]["file_name"])
        if path is None:
            raise BuildError(f"the engine needs {name}, whose wheel is not served")
        with zipfile.ZipFile(path) as wheel:
            for info in wheel.infolist():
                if info.is_dir() or info.filename.startswith(BROWSER_EXCLUDED):
                    continue
                members[info.filename] = wheel.read(info)
    manifest = {
        "format": ENGINE_FORMAT,
        "site": SITE_FILE,
        "dynlibs": sorted(name for name in members if name.endswith(".so")),
        "imports": list(ENGINE_IMPORTS),
        "packages": {name: str(packages[name]["version"]) for name in names},
    }
    text = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    return {SITE_FILE: _tar(members), MANIFEST_FILE: text}


def _closure(packages: Mapping[str, Any], roots: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in packages:
            raise BuildError(f"the engine needs {name}, which the lock does not serve")
        seen.add(name)
        todo.extend(packages[name].get("depends", []))
    return sorted(seen)


def _tar(members: Mapping[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(members):
            data = members[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            try:
                tar.addfile(info, io.BytesIO(data))
            except ValueError as exc:
                raise BuildError(f"{name}: cannot go in the engine tar ({exc})") from exc
    return out.getvalue()
