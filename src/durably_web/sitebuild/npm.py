"""The npm step: install the pinned browser runtimes and pick the files the browser loads.

The pins (``durably_web/web/pins/package.json`` + ``package-lock.json``) are copied into
``.build/npm/`` (the package itself may be read-only), where
``npm ci --ignore-scripts --no-audit --no-fund`` installs exactly what the lock says into
``.build/npm/node_modules``; none of these packages needs an install script. The step is
skipped while a stamp of ``package.json`` + the lock matches and ``node_modules`` is there.
Every installed version must equal its pin in ``package.json``.

:func:`vendor_files` names what is copied into the site's vendor directory (no source maps, no type
declarations, no Node-only builds): Pyodide's runtime (its stdlib zip is precompiled
separately), sqlite-wasm's browser build, PyScript's ``dist`` and MicroPython's wasm variants.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from durably_web.sitebuild.layout import BuildError, Layout, sha256_file, write_atomic

__all__ = ["install", "pyodide_dir", "pyodide_info", "vendor_files"]

PYODIDE_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm")
SQLITE_FILES = ("index.mjs", "sqlite3.wasm", "sqlite3-opfs-async-proxy.js")

_COMMAND = ("npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund")


def pyodide_dir(layout: Layout) -> Path:
    """Return the directory of the installed ``pyodide`` npm package."""
    return layout.node_modules / "pyodide"


def pyodide_info(layout: Layout) -> dict[str, Any]:
    """Return the ``info`` block of Pyodide's own lock: ABI, platform, arch, Python version.

    Raises:
        BuildError: Pyodide is not installed or its lock has no ``info``.

    """
    lock = pyodide_dir(layout) / "pyodide-lock.json"
    try:
        info = json.loads(lock.read_text())["info"]
    except (OSError, ValueError, KeyError) as exc:
        raise BuildError(f"cannot read Pyodide's lock info from {lock}: {exc}") from exc
    if not isinstance(info, dict) or not {"abi_version", "arch", "python"} <= info.keys():
        raise BuildError(f"{lock}: unexpected info block {info!r}")
    return info


def install(layout: Layout, *, force: bool, log: Callable[[str], None]) -> None:
    """Run ``npm ci`` in ``.build/npm`` unless the installed tree already matches the lock.

    Args:
        layout: the project.
        force: reinstall even when the stamp matches.
        log: receives one progress line per action.

    Raises:
        BuildError: npm is missing, fails (registry, network), or installed another version
            than a pin.

    """
    for path in (layout.package_json, layout.package_lock):
        if not path.is_file():
            raise BuildError(f"{path} is missing (it pins the browser runtimes)")
    stamp = layout.state / "stamps" / "npm.json"
    wanted = f"{sha256_file(layout.package_json)} {sha256_file(layout.package_lock)}"
    installed = (layout.node_modules / ".package-lock.json").is_file()
    if not force and installed and _read_stamp(stamp) == wanted:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError("npm not found on PATH; install Node.js 20+ with npm to build the site")
    log(f"npm ci in {layout.npm} (pins from package-lock.json)")
    for pin in (layout.package_json, layout.package_lock):
        copy = layout.npm / pin.name
        if not copy.is_file() or copy.read_bytes() != pin.read_bytes():
            write_atomic(copy, pin.read_bytes())
    try:
        result = subprocess.run(
            [npm, *_COMMAND[1:]],
            cwd=layout.npm,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise BuildError(f"cannot run npm: {exc}") from exc
    if result.returncode != 0:
        raise BuildError(f"npm ci failed: {_npm_error(result.stderr or result.stdout)}")
    _check_pins(layout)
    write_atomic(stamp, (json.dumps({"inputs": wanted}) + "\n").encode())


def vendor_files(layout: Layout) -> dict[str, Path]:
    """Map each vendor path (``pyodide/...``) taken from ``node_modules`` to its source file.

    Raises:
        BuildError: an expected file is missing (a package changed its layout).

    """
    modules = layout.node_modules
    plan = {f"pyodide/{name}": pyodide_dir(layout) / name for name in PYODIDE_FILES}
    sqlite = modules / "@sqlite.org" / "sqlite-wasm" / "dist"
    plan.update({f"sqlite-wasm/{name}": sqlite / name for name in SQLITE_FILES})
    pyscript = modules / "@pyscript" / "core" / "dist"
    micropython = modules / "@micropython" / "micropython-webassembly-pyscript"
    for directory, prefix, suffixes in (
        (pyscript, "pyscript", (".js", ".css")),
        (micropython, "micropython", (".mjs", ".wasm")),
    ):
        if not directory.is_dir():
            raise BuildError(f"{directory} is missing; rerun with --force to reinstall")
        for path in sorted(directory.iterdir()):
            if path.is_file() and path.suffix in suffixes:
                plan[f"{prefix}/{path.name}"] = path
    missing = [str(path) for path in plan.values() if not path.is_file()]
    if missing:
        raise BuildError(f"npm package file missing: {missing[0]}; rerun with --force")
    return plan


def _read_stamp(path: Path) -> str | None:
    try:
        value = json.loads(path.read_text()).get("inputs")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _check_pins(layout: Layout) -> None:
    pins = json.loads(layout.package_json.read_text()).get("dependencies", {})
    for name, version in sorted(pins.items()):
        manifest = layout.node_modules / name / "package.json"
        try:
            installed = json.loads(manifest.read_text())["version"]
        except (OSError, ValueError, KeyError) as exc:
            raise BuildError(f"npm did not install {name}: {exc}") from exc
        if installed != version:
            raise BuildError(
                f"npm installed {name}@{installed} but pins/package.json pins {version!r}; "
                "pins must be exact versions matching pins/package-lock.json"
            )


def _npm_error(output: str) -> str:
    """Extract the informative part of npm's error output, on one line."""
    lines = [line.strip() for line in output.splitlines()]
    errors = [
        line.removeprefix("npm error").strip() for line in lines if line.startswith("npm error")
    ]
    code = next((e.split()[1] for e in errors if e.startswith("code ") and len(e.split()) > 1), "")
    skip = ("code ", "errno ", "syscall ", "A complete log", "/")
    detail = next((e for e in errors if e and not e.startswith(skip)), "")
    if not detail:
        detail = next((line for line in reversed(lines) if line), "no output")
    return f"{code}: {detail}" if code else detail
