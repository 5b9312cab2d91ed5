"""The npm step: fetch the pinned browser runtimes from the npm registry, with Python only.

No Node and no npm: each package named in ``durably_web/web/pins/package.json`` is
downloaded as the tarball the registry serves for its version in ``package-lock.json``
(``<registry>/<name>/-/<basename>-<version>.tgz``), its sha512 checked against the lock's
``integrity`` before anything is read from it, and only the files the build uses
(:data:`PACKAGES`) are extracted, into ``.build/npm/packages/<name>/`` (the package's own
paths: ``dist/index.mjs``, ...). None of these packages needs an install script or its
dependencies (PyScript's ``dist`` is bundled).

- The registry is ``https://registry.npmjs.org/`` unless ``DURABLY_WEB_NPM_REGISTRY`` names
  a mirror; the integrity check makes the source irrelevant. Proxies come from the usual
  ``https_proxy`` variables.
- Tarballs are kept in the user's cache (:func:`~durably_web.sitebuild.layout.user_cache`,
  ``npm/``) so every app and work directory downloads each version once; a cached tarball is
  verified again before every extraction.
- An extraction is skipped while ``.build/npm/packages/<name>/.integrity`` records the same
  integrity and file list and every file is there.

:func:`vendor_files` names what the site vendors (no source maps, no type declarations, no
Node-only builds): Pyodide's runtime (its stdlib zip is precompiled separately),
sqlite-wasm's browser build, PyScript's ``dist`` and MicroPython's wasm variants.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import io
import json
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from durably_web.sitebuild.layout import BuildError, Layout, user_cache, write_atomic

__all__ = [
    "DEFAULT_REGISTRY",
    "PACKAGES",
    "Pin",
    "fetch",
    "package_dir",
    "pyodide_dir",
    "pyodide_info",
    "read_pins",
    "registry",
    "vendor_files",
]

DEFAULT_REGISTRY = "https://registry.npmjs.org/"

PACKAGES: dict[str, tuple[str, ...]] = {
    # pyodide-lock.json: its `info` block (ABI, Python version) goes into our lock;
    # python_stdlib.zip: the source of the precompiled stdlib (only when it is not shipped).
    "pyodide": (
        "pyodide.mjs",
        "pyodide.asm.mjs",
        "pyodide.asm.wasm",
        "pyodide-lock.json",
        "python_stdlib.zip",
    ),
    # dist/node.mjs: sqlite-wasm under Node, for the engine's test suite on Pyodide.
    "@sqlite.org/sqlite-wasm": (
        "dist/index.mjs",
        "dist/sqlite3.wasm",
        "dist/sqlite3-opfs-async-proxy.js",
        "dist/node.mjs",
    ),
    "@pyscript/core": ("dist/*.js", "dist/*.css"),
    "@micropython/micropython-webassembly-pyscript": ("*.mjs", "*.wasm"),
}
"""Each vendored npm package and the files (``fnmatch`` patterns, ``*`` never crossing a
``/``) extracted from its tarball."""

_TIMEOUT = 60  # seconds without data before a download fails
_STAMP = ".integrity"


@dataclass(frozen=True, slots=True)
class Pin:
    """One pinned npm package: exact version and the lock's Subresource Integrity string."""

    name: str
    version: str
    integrity: str

    @property
    def url_path(self) -> str:
        """The tarball's path on a registry: ``@scope/name/-/name-1.0.0.tgz``."""
        return f"{self.name}/-/{self.name.rsplit('/', 1)[-1]}-{self.version}.tgz"


def registry() -> str:
    """Return the registry's base URL (ending with ``/``), from the environment or the default."""
    url = os.environ.get("DURABLY_WEB_NPM_REGISTRY") or DEFAULT_REGISTRY
    return url.rstrip("/") + "/"


def read_pins(layout: Layout) -> dict[str, Pin]:
    """Read every package of ``package.json`` with its version and integrity from the lock.

    Raises:
        BuildError: a file is missing or unreadable, a pin is not an exact version, the lock
            disagrees with it, or a package has no sha512 integrity.

    """
    try:
        wanted = json.loads(layout.package_json.read_text())["dependencies"]
        locked = json.loads(layout.package_lock.read_text())["packages"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BuildError(f"cannot read the npm pins in {layout.pins}: {exc}") from exc
    pins = {}
    for name in sorted(wanted):
        entry = locked.get(f"node_modules/{name}") if isinstance(locked, dict) else None
        if not isinstance(entry, dict):
            raise BuildError(f"{layout.package_lock.name} has no entry for {name}")
        if entry.get("version") != wanted[name]:
            raise BuildError(
                f"{layout.package_json.name} pins {name} {wanted[name]!r} but "
                f"{layout.package_lock.name} locks {entry.get('version')!r}: pins must be exact"
            )
        integrity = entry.get("integrity")
        if not isinstance(integrity, str) or not integrity.startswith("sha512-"):
            raise BuildError(f"{layout.package_lock.name}: {name} has no sha512 integrity")
        pins[name] = Pin(name, wanted[name], integrity)
    missing = sorted(set(PACKAGES) - set(pins))
    if missing:
        raise BuildError(f"{layout.package_json.name} does not pin {', '.join(missing)}")
    return pins


def package_dir(layout: Layout, name: str) -> Path:
    """Return where the files of the npm package ``name`` are extracted."""
    return layout.npm_packages / name


def pyodide_dir(layout: Layout) -> Path:
    """Return the directory of the extracted ``pyodide`` package."""
    return package_dir(layout, "pyodide")


def pyodide_info(layout: Layout) -> dict[str, Any]:
    """Return the ``info`` block of Pyodide's own lock: ABI, platform, arch, Python version.

    Raises:
        BuildError: Pyodide is not extracted or its lock has no ``info``.

    """
    lock = pyodide_dir(layout) / "pyodide-lock.json"
    try:
        info = json.loads(lock.read_text())["info"]
    except (OSError, ValueError, KeyError) as exc:
        raise BuildError(f"cannot read Pyodide's lock info from {lock}: {exc}") from exc
    if not isinstance(info, dict) or not {"abi_version", "arch", "python"} <= info.keys():
        raise BuildError(f"{lock}: unexpected info block {info!r}")
    return info


def fetch(layout: Layout, *, force: bool, log: Callable[[str], None]) -> None:
    """Make ``.build/npm/packages/`` hold the pinned files of every vendored package.

    Args:
        layout: the build.
        force: download and extract again even when the stamps match.
        log: receives one progress line per action.

    Raises:
        BuildError: the registry cannot be reached or refuses, a tarball does not match its
            integrity, or it lacks a file the build needs.

    """
    pins = read_pins(layout)
    for name, patterns in PACKAGES.items():
        pin = pins[name]
        target = package_dir(layout, name)
        stamp = json.dumps({"integrity": pin.integrity, "files": patterns})
        if not force and _current(target, stamp, patterns):
            continue
        data = _tarball(pin, force=force, log=log)
        _extract(pin, data, patterns, target)
        write_atomic(target / _STAMP, stamp.encode())


def vendor_files(layout: Layout) -> dict[str, Path]:
    """Map each vendor path (``pyodide/...``) to its extracted source file.

    Raises:
        BuildError: an expected file is missing (run the build with ``--force``).

    """
    pyodide = pyodide_dir(layout)
    plan = {
        f"pyodide/{name}": pyodide / name
        for name in ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm")
    }
    sqlite = package_dir(layout, "@sqlite.org/sqlite-wasm") / "dist"
    for name in ("index.mjs", "sqlite3.wasm", "sqlite3-opfs-async-proxy.js"):
        plan[f"sqlite-wasm/{name}"] = sqlite / name
    for directory, prefix in (
        (package_dir(layout, "@pyscript/core") / "dist", "pyscript"),
        (package_dir(layout, "@micropython/micropython-webassembly-pyscript"), "micropython"),
    ):
        if not directory.is_dir():
            raise BuildError(f"{directory} is missing; rerun the build with --force")
        for path in sorted(directory.iterdir()):
            if path.is_file() and path.suffix in (".js", ".css", ".mjs", ".wasm"):
                plan[f"{prefix}/{path.name}"] = path
    missing = [str(path) for path in plan.values() if not path.is_file()]
    if missing:
        raise BuildError(f"npm package file missing: {missing[0]}; rerun the build with --force")
    return plan


def _current(target: Path, stamp: str, patterns: tuple[str, ...]) -> bool:
    try:
        if (target / _STAMP).read_text() != stamp:
            return False
    except OSError:
        return False
    present = [p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()]
    return all(any(_matches(rel, pattern) for rel in present) for pattern in patterns)


def _matches(rel: str, pattern: str) -> bool:
    """Match a package path against a pattern whose ``*`` does not cross a ``/``."""
    return rel.count("/") == pattern.count("/") and fnmatch.fnmatchcase(rel, pattern)


def _verify(pin: Pin, data: bytes) -> bool:
    digest = base64.b64encode(hashlib.sha512(data).digest()).decode()
    return f"sha512-{digest}" == pin.integrity


def _tarball(pin: Pin, *, force: bool, log: Callable[[str], None]) -> bytes:
    """Return the tarball's bytes, verified: from the user cache, else from the registry."""
    cached = user_cache() / "npm" / pin.url_path
    if not force and cached.is_file():
        data = cached.read_bytes()
        if _verify(pin, data):
            return data
    url = registry() + pin.url_path
    log(f"download {pin.name}@{pin.version} from {url}")
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT) as response:
            data = bytes(response.read())
    except urllib.error.HTTPError as exc:
        raise BuildError(
            f"cannot download {pin.name}@{pin.version} from {url}: HTTP {exc.code}"
        ) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BuildError(f"cannot download {pin.name}@{pin.version} from {url}: {reason}") from exc
    if not _verify(pin, data):
        got = base64.b64encode(hashlib.sha512(data).digest()).decode()
        raise BuildError(
            f"integrity mismatch for {pin.name}@{pin.version} from {url}: package-lock.json "
            f"pins {pin.integrity}, the download has sha512-{got}"
        )
    write_atomic(cached, data)
    return data


def _extract(pin: Pin, data: bytes, patterns: tuple[str, ...], target: Path) -> None:
    """Write the members matching ``patterns`` into ``target`` (emptied first)."""
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive.getmembers():
                # npm tarballs put everything below one top directory (usually `package/`).
                rel = member.name.split("/", 1)[1] if "/" in member.name else ""
                if not member.isfile() or not any(_matches(rel, p) for p in patterns):
                    continue
                if ".." in rel.split("/") or rel.startswith("/"):
                    raise BuildError(f"{pin.name}@{pin.version}: unsafe path {member.name!r}")
                extracted = archive.extractfile(member)
                if extracted is not None:
                    found[rel] = extracted.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BuildError(f"{pin.name}@{pin.version}: not a readable tarball: {exc}") from exc
    for pattern in patterns:
        if not any(_matches(rel, pattern) for rel in found):
            raise BuildError(f"{pin.name}@{pin.version} has no file matching {pattern!r}")
    if target.exists():
        shutil.rmtree(target)
    for rel, content in sorted(found.items()):
        write_atomic(target / rel, content)
