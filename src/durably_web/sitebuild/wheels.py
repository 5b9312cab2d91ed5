"""The wheels step: download the hash-pinned PyPI wheels Pyodide serves.

``web/pins/requirements-wasm.txt`` pins every wheel as ``name==version --hash=sha256:...``. They
are downloaded with ``pip download --no-deps --only-binary=:all: --require-hashes`` for
Pyodide's platform (``pyemscripten_<abi>_<arch>``, CPython ``X.Y``, both read from Pyodide's
own lock) into ``.build/wheels``. The hashes make the download source irrelevant: pip here
may also read local indexes, and a wheel is only accepted if its sha256 is pinned.

The step is skipped when a wheel with a pinned hash is already cached for every pin. Bumping
a pin means replacing its version and hash (``pip download --no-deps ...`` prints the hash).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from durably_web.sitebuild.layout import BuildError, Layout, sha256_file

__all__ = ["Pin", "download", "normalize", "read_requirements"]


@dataclass(frozen=True, slots=True)
class Pin:
    """One pinned wheel: its version and the sha256 hashes it may have."""

    version: str
    hashes: frozenset[str]


def normalize(name: str) -> str:
    """PEP 503 normalised project name: the key Pyodide's lock file uses."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_requirements(path: Path) -> dict[str, Pin]:
    """Read ``name==version --hash=sha256:...`` pins (one or more hashes each).

    Returns:
        Normalised name -> pin.

    Raises:
        BuildError: the file is missing, or a line is not an exact pin with a hash.

    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise BuildError(f"cannot read {path}: {exc}") from exc
    pins: dict[str, Pin] = {}
    for raw in re.sub(r"\\\n", " ", text).splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.match(r"([A-Za-z0-9._-]+)==([^\s;]+)", line)
        hashes = frozenset(re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
        if not match or not hashes:
            raise BuildError(f"{path.name}: need 'name==version --hash=sha256:<hex>': {line}")
        pins[normalize(match[1])] = Pin(match[2], hashes)
    if not pins:
        raise BuildError(f"{path.name} pins no wheel")
    return pins


def download(
    layout: Layout, info: dict[str, Any], *, log: Callable[[str], None]
) -> dict[str, Path]:
    """Make sure every pinned wheel is in ``.build/wheels``; download the missing ones.

    Args:
        layout: the project.
        info: Pyodide's lock ``info`` (Python version, ABI, arch).
        log: receives one progress line per action.

    Returns:
        Normalised name -> the cached wheel (its sha256 is pinned).

    Raises:
        BuildError: pip is missing or fails (registry, network), or a hash does not match.

    """
    pins = read_requirements(layout.requirements)
    cache = layout.state / "wheels"
    cache.mkdir(parents=True, exist_ok=True)
    wheels = _cached(cache, pins)
    if wheels is not None:
        return wheels
    if importlib.util.find_spec("pip") is None:
        raise BuildError(f"pip is not installed for {sys.executable}; it downloads the wheels")
    python = ".".join(str(info["python"]).split(".")[:2])
    platform = f"pyemscripten_{info['abi_version']}_{info['arch']}"
    log(f"pip download {len(pins)} wheels for {platform} (cp{python}) into {cache}")
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--require-hashes", "--python-version", python, "--implementation", "cp",
        "--platform", platform, "--disable-pip-version-check", "--no-input",
        "--progress-bar", "off", "-r", str(layout.requirements), "-d", str(cache),
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BuildError(f"cannot run pip: {exc}") from exc
    if result.returncode != 0:
        raise BuildError(_pip_error(result.stderr + result.stdout, layout.requirements.name))
    wheels = _cached(cache, pins)
    if wheels is None:
        raise BuildError("pip download succeeded but a pinned wheel is not in .build/wheels")
    return wheels


def _cached(cache: Path, pins: dict[str, Pin]) -> dict[str, Path] | None:
    """Find the cached wheel of every pin by its hash; None if any is missing."""
    by_hash = {sha256_file(path): path for path in sorted(cache.glob("*.whl"))}
    found: dict[str, Path] = {}
    for name, pin in sorted(pins.items()):
        match = next((by_hash[h] for h in sorted(pin.hashes) if h in by_hash), None)
        if match is None:
            return None
        found[name] = match
    return found


def _pip_error(output: str, requirements: str) -> str:
    """Summarise pip's failure on one line; a hash mismatch names the wheel and both hashes."""
    if "DO NOT MATCH THE HASHES" in output:
        what = re.search(r"^\s+(\S+==\S+) from ", output, re.MULTILINE)
        expected = re.search(r"Expected sha256 ([0-9a-f]+)", output)
        got = re.search(r"Got\s+([0-9a-f]+)", output)
        return (
            f"hash mismatch for {what[1] if what else 'a wheel'}: {requirements} pins sha256 "
            f"{expected[1] if expected else '?'}, the download has {got[1] if got else '?'}"
        )
    errors = [line.strip() for line in output.splitlines() if line.startswith("ERROR:")]
    detail = (
        errors[0]
        if errors
        else next(
            (line.strip() for line in reversed(output.splitlines()) if line.strip()), "no output"
        )
    )
    return f"pip download failed: {detail.removeprefix('ERROR:').strip()}"
