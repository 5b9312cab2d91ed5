"""``pyodide-lock.json`` for the wheels we serve, and only those.

What Pyodide 314 checks (read from its ``pyodide.asm.mjs``): ``info.abi_version`` must equal
its ABI, so ``info`` is copied from Pyodide's own lock; keys are PEP 503 names and
``depends`` holds such keys; every entry needs an ``imports`` list; ``sha256`` is verified
(as SRI) against the file as served, so it is the hash of the precompiled wheel.

Pyodide's own ~350 entries are left out on purpose: their files are not vendored, so loading
one would 404 in the browser and, under Node, silently fall back to the CDN. ``micropip`` is
in the lock because PyScript's ``packages`` loads it by name.

Each entry is read from the wheel itself: name and version from ``METADATA``, imports from
``top_level.txt`` (or the top-level entries), dependencies from ``Requires-Dist`` without
extras. A dependency that is not served, or served at a version outside a ``==``, ``>=``,
``>``, ``<=`` or ``<`` bound, stops the build instead of failing at load time in a browser.
"""

from __future__ import annotations

import email.parser
import json
import re
import zipfile
from pathlib import Path
from typing import Any

from durably_web.sitebuild.layout import BuildError, sha256_file
from durably_web.sitebuild.wheels import normalize

__all__ = ["build_lock", "lock_entry", "render_lock"]


def build_lock(info: dict[str, Any], wheels: list[Path]) -> dict[str, Any]:
    """Make a lock with Pyodide's ``info`` and one entry per served wheel.

    Args:
        info: the ``info`` block of Pyodide's own lock.
        wheels: the wheels as served (precompiled).

    Raises:
        BuildError: a wheel is unreadable or needs a dependency that is not served.

    """
    metadata = {path: _read_metadata(path) for path in wheels}
    served = {normalize(meta["Name"]): meta["Version"] for meta in metadata.values()}
    packages = {}
    python = _version(str(info["python"]))
    for path, meta in metadata.items():
        packages[normalize(meta["Name"])] = lock_entry(path, meta, served, python)
    return {"info": dict(info), "packages": dict(sorted(packages.items()))}


def render_lock(lock: dict[str, Any]) -> bytes:
    """Serialise a lock: sorted keys, one-space indent, a final newline."""
    return (json.dumps(lock, indent=1, sort_keys=True) + "\n").encode()


def lock_entry(
    wheel: Path, meta: dict[str, Any], served: dict[str, str], python: tuple[int, ...]
) -> dict[str, Any]:
    """Make one ``packages`` entry of the lock.

    Args:
        wheel: the served wheel.
        meta: what :func:`_read_metadata` read from it.
        served: normalised name -> version of every served wheel.
        python: Pyodide's Python version, for ``python_version`` markers.

    """
    depends = []
    for requirement in meta["requires"]:
        spec, _, marker = requirement.partition(";")
        if "extra" in marker:
            continue
        if marker.strip():
            # Only `python_version <op> "X.Y"` is evaluated (as in `; python_version < "3.9"`).
            test = re.fullmatch(
                r"\s*python_(?:full_)?version\s*(==|>=|<=|>|<)\s*[\"']([\d.]+)[\"']\s*", marker
            )
            if test is None:
                raise BuildError(f"{wheel.name}: cannot evaluate the marker of {requirement!r}")
            if not _satisfies(python, test[1], _version(test[2])):
                continue
        match = re.match(r"\s*([A-Za-z0-9._-]+)\s*(?:\[[^]]*\])?\s*(.*)", spec)
        if match is None:
            raise BuildError(f"{wheel.name}: cannot parse requirement {requirement!r}")
        dep = normalize(match[1])
        if dep not in served:
            raise BuildError(f"{wheel.name} needs {requirement!r}, which is not served")
        for op, wanted in re.findall(r"(==|>=|<=|>|<)\s*([^,\s)]+)", match[2]):
            if not _satisfies(_version(served[dep]), op, _version(wanted)):
                raise BuildError(f"{wheel.name} needs {requirement!r}, served: {served[dep]}")
        depends.append(dep)
    return {
        "name": meta["Name"],
        "version": meta["Version"],
        "file_name": wheel.name,
        "install_dir": "site",
        "sha256": sha256_file(wheel),
        "package_type": "package",
        "imports": meta["imports"],
        "depends": sorted(set(depends)),
        "unvendored_tests": False,
    }


def _read_metadata(wheel: Path) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            tops = {name.split("/")[0] for name in names}
            dist_info = next(top for top in sorted(tops) if top.endswith(".dist-info"))
            message = email.parser.Parser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
            if f"{dist_info}/top_level.txt" in names:
                imports = archive.read(f"{dist_info}/top_level.txt").decode().split()
            else:
                imports = sorted(
                    {
                        re.sub(r"\..*$", "", top)
                        for top in tops
                        if not top.endswith((".dist-info", ".data"))
                    }
                )
    except (OSError, zipfile.BadZipFile, KeyError, StopIteration) as exc:
        raise BuildError(f"cannot read the metadata of {wheel.name}: {exc}") from exc
    if not message["Name"] or not message["Version"]:
        raise BuildError(f"{wheel.name}: METADATA has no Name or Version")
    return {
        "Name": message["Name"],
        "Version": message["Version"],
        "requires": message.get_all("Requires-Dist") or [],
        "imports": imports,
    }


def _version(text: str) -> tuple[int, ...]:
    """Parse a version's release numbers, padded to three (``2.14`` -> ``(2, 14, 0)``)."""
    numbers = [int(part) for part in re.findall(r"\d+", text.split("+")[0].split("rc")[0])[:3]]
    return tuple(numbers + [0] * (3 - len(numbers)))


def _satisfies(have: tuple[int, ...], op: str, wanted: tuple[int, ...]) -> bool:
    return {
        "==": have == wanted,
        ">=": have >= wanted,
        "<=": have <= wanted,
        ">": have > wanted,
        "<": have < wanted,
    }[op]
