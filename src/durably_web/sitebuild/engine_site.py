"""The engine site: one tar of the Python packages the engine worker imports, and its manifest.

The engine worker (``web/runtime/boot.mjs``, ``web/runtime/engine_site.mjs``) does not install
its packages with Pyodide's ``loadPackage`` (one request and a Python-side unzip per wheel,
after the interpreter started): it fetches one tar, writes its files into site-packages before
Python starts and loads its WebAssembly extension modules (pydantic_core) there too, at the
same addresses at every boot. That is what makes a memory snapshot taken after the imports
restorable (``web/runtime/snapshot.mjs``).

Four files beside ``pyodide.mjs``:

- ``engine-site.tar``: every member of the served (precompiled) wheels of the engine's
  packages, :data:`ENGINE_ROOTS` and their dependencies in the lock, minus
  :data:`BROWSER_EXCLUDED`, :data:`NOT_INSTALLED` and :data:`ON_FIRST_IMPORT` (which go
  into the rest zip); ustar, sorted, fixed dates and modes (reproducible).
- ``python_stdlib_core.zip`` and ``python_stdlib_rest.zip``: the served (precompiled) stdlib
  zip cut in two. The core holds the modules of ``stdlib_core.txt`` (what start-up, the
  engine and the demo's jobs import); the worker installs it as the stdlib and fetches the
  rest only when Python first imports one of its modules (``durably_web.browser.stdlib``).
  ``python_stdlib.zip`` stays whole for everything else (PyScript pages, the test runner).
- ``engine.json``: ``format``, ``site`` (the tar's name), ``dynlibs`` (its extension
  modules, in load order), ``imports`` (what a boot imports, and a snapshot holds),
  ``packages`` (name -> version), ``stdlib`` (the core zip's name) and ``stdlib_rest``
  (``file`` and the ``modules`` it holds).

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
    "NOT_INSTALLED",
    "ON_FIRST_IMPORT",
    "SITE_FILE",
    "STDLIB_CORE_FILE",
    "STDLIB_REST_FILE",
    "core_modules",
    "engine_site",
    "split_stdlib",
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
    "durably_web/storage/postgres/",
    "durably_web/webbuild/",
)
"""Members of the durably_web wheel the engine worker never imports (the CLI, the page
client, the HTTP client, the server, the site builder, the PostgreSQL store: a
``postgresql://`` URL in the worker gets the "PostgreSQL support is not installed" error):
left out of the tar."""

ON_FIRST_IMPORT = ("pydantic/v1/", "pydantic/mypy.pyc")
"""Members of the engine's packages that nothing imports unless a job does (pydantic's V1
copy, which pydantic itself imports only to warn about a V1 model mixed into V2; its mypy
plugin): moved from the tar into the rest zip, fetched on the first import of one of them
(-0.3 MB of brotli on every cold load)."""

NOT_INSTALLED = (".dist-info/RECORD", ".dist-info/sboms/")
"""dist-info members no one reads in the worker (pip's uninstall list, build SBOMs): left out
(METADATA, entry points and licences stay)."""

SITE_FILE = "engine-site.tar"
"""The tar's file name beside ``pyodide.mjs``."""

MANIFEST_FILE = "engine.json"
"""The manifest's file name beside ``pyodide.mjs``."""

STDLIB_CORE_FILE = "python_stdlib_core.zip"
"""The core stdlib zip's file name beside ``pyodide.mjs``."""

STDLIB_REST_FILE = "python_stdlib_rest.zip"
"""The rest of the stdlib, fetched on first use."""

CORE_MODULES = Path(__file__).with_name("stdlib_core.txt")
"""The list of the core stdlib modules (one per line, ``#`` comments)."""


def engine_site(lock: Mapping[str, Any], wheels: Iterable[Path], stdlib: Path) -> dict[str, bytes]:
    """Build the tar, the two stdlib parts and ``engine.json``.

    Args:
        lock: the lock the build serves (``build_lock``): names, versions, dependencies.
        wheels: the served (precompiled) wheels; the lock's ``file_name`` picks them.
        stdlib: the served (whole) stdlib zip, cut in two here.

    Returns:
        File name (beside ``pyodide.mjs``) -> bytes.

    Raises:
        BuildError: a needed package is not served, or a member name does not fit ustar.

    """
    packages = lock["packages"]
    names = _closure(packages, ENGINE_ROOTS)
    by_file = {path.name: path for path in wheels}
    members: dict[str, bytes] = {}
    later: dict[str, bytes] = {}
    for name in names:
        path = by_file.get(packages[name]["file_name"])
        if path is None:
            raise BuildError(f"the engine needs {name}, whose wheel is not served")
        with zipfile.ZipFile(path) as wheel:
            for info in wheel.infolist():
                member = info.filename
                if info.is_dir() or member.startswith(BROWSER_EXCLUDED):
                    continue
                if _dist_info_skipped(member):
                    continue
                into = later if member.startswith(ON_FIRST_IMPORT) else members
                into[member] = wheel.read(info)
    core, rest, rest_modules = split_stdlib(stdlib, core_modules(), later)
    manifest = {
        "format": ENGINE_FORMAT,
        "site": SITE_FILE,
        "dynlibs": sorted(name for name in members if name.endswith(".so")),
        "imports": list(ENGINE_IMPORTS),
        "packages": {name: str(packages[name]["version"]) for name in names},
        "stdlib": STDLIB_CORE_FILE,
        "stdlib_rest": {"file": STDLIB_REST_FILE, "modules": rest_modules},
    }
    text = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    return {
        SITE_FILE: _tar(members),
        STDLIB_CORE_FILE: core,
        STDLIB_REST_FILE: rest,
        MANIFEST_FILE: text,
    }


def core_modules() -> frozenset[str]:
    """Read the module names of ``stdlib_core.txt`` (beside this module)."""
    lines = CORE_MODULES.read_text().splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def split_stdlib(
    stdlib: Path, core: frozenset[str], extra: Mapping[str, bytes] | None = None
) -> tuple[bytes, bytes, list[str]]:
    """Cut a stdlib zip in two: the members of the ``core`` modules, and the others.

    ``extra`` members (:data:`ON_FIRST_IMPORT` of the engine's packages) are added to the
    rest, deflated, and their modules to its list.

    A module is ``a/b.pyc`` or ``a/b/__init__.pyc``; other files (data, ``py.typed``) go with
    their package. Members keep their order, names and dates; the core's are stored, not
    deflated: compressed as a whole on the wire (brotli) it is 30% smaller, and zipimport
    reads its modules without inflating them at every boot. The rest keeps its compression
    (it is fetched rarely, and sent as it is).

    Returns:
        The core zip, the rest zip and the sorted module names in the rest.

    """
    parts: dict[bool, list[tuple[zipfile.ZipInfo, bytes]]] = {True: [], False: []}
    rest_modules = set()
    with zipfile.ZipFile(stdlib) as source:
        for info in source.infolist():
            if info.is_dir():
                continue
            module = _module(info.filename)
            in_core = (module if module is not None else _package(info.filename)) in core
            parts[in_core].append((info, source.read(info)))
            if module is not None and not in_core:
                rest_modules.add(module)
    for member, data in sorted((extra or {}).items()):
        info = zipfile.ZipInfo(member, _EPOCH)
        info.external_attr, info.compress_type = 0o644 << 16, zipfile.ZIP_DEFLATED
        parts[False].append((info, data))
        module = _module(member)
        if module is not None:
            rest_modules.add(module)
    out = []
    for in_core in (True, False):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for info, data in parts[in_core]:
                copy = zipfile.ZipInfo(info.filename, info.date_time)
                copy.external_attr = info.external_attr
                copy.compress_type = zipfile.ZIP_STORED if in_core else info.compress_type
                archive.writestr(copy, data)
        out.append(buffer.getvalue())
    return out[0], out[1], sorted(rest_modules)


_EPOCH = (1980, 1, 1, 0, 0, 0)  # the zip format's first date: reproducible members


def _dist_info_skipped(member: str) -> bool:
    top, _, rest = member.partition("/")
    return top.endswith(".dist-info") and any(
        f".dist-info/{rest}".startswith(skipped) for skipped in NOT_INSTALLED
    )


def _module(member: str) -> str | None:
    if not member.endswith(".pyc"):
        return None
    name = member.removesuffix(".pyc").removesuffix("/__init__")
    return name.replace("/", ".")


def _package(member: str) -> str:
    return member.rpartition("/")[0].replace("/", ".")


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
