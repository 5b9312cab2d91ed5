"""What the Pyodide test harnesses need, made current: the built site and the test wheels.

- :func:`ensure_build` runs ``durably-web build`` (:func:`durably_web.sitebuild.build`): a
  no-op when ``.build/site`` matches its inputs, which include every file of the durably_web
  package, so the tests always run the durably-web wheel of the current sources; it returns
  the site's vendor directory (``.build/site/_durably/vendor``).
- :func:`ensure_test_wheels` downloads pytest and its pure-Python dependencies, pinned with
  hashes in ``tests/pyodide/requirements.txt``, into ``.build/test-wheels`` (test-only: never
  part of the site), skipping pip when every pinned file is already there.
- :func:`stage_browser_assets` copies those wheels and a zip of ``tests/`` into a directory
  the Chromium run serves at ``/tests/assets/`` (``playwright_tests/site.py``).

Run ``python -m tests.pyodide.assets`` to prepare both before using
``node tests/pyodide/run_in_node.mjs`` by hand.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

__all__ = [
    "REQUIREMENTS",
    "ROOT",
    "WHEELS",
    "ensure_build",
    "ensure_test_wheels",
    "pinned_hashes",
    "stage_browser_assets",
]

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "tests" / "pyodide" / "requirements.txt"
WHEELS = ROOT / ".build" / "test-wheels"
# Pyodide 314's CPython; pure-Python wheels only.
_PIP_TARGET = ["--python-version", "3.14", "--implementation", "py", "--platform", "any"]


class AssetError(Exception):
    """A harness input could not be prepared (pip, the build)."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pinned_hashes(requirements: Path = REQUIREMENTS) -> set[str]:
    """Every ``--hash=sha256:`` of the requirements file."""
    return set(re.findall(r"--hash=sha256:([0-9a-f]{64})", requirements.read_text()))


def ensure_test_wheels(target: Path = WHEELS) -> Path:
    """Make ``target`` hold exactly the pinned test wheels; return it.

    Raises:
        AssetError: pip failed, or a downloaded file matches no pinned hash.

    """
    wanted = pinned_hashes()
    target.mkdir(parents=True, exist_ok=True)
    have = {_sha256(path): path for path in target.glob("*.whl")}
    if not wanted <= set(have):
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--only-binary=:all:", "--require-hashes", *_PIP_TARGET,
            "-r", str(REQUIREMENTS), "-d", str(target),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise AssetError(f"pip download of the test wheels failed:\n{result.stderr}")
        have = {_sha256(path): path for path in target.glob("*.whl")}
    for digest, path in have.items():
        if digest not in wanted:  # an old pin: it must not shadow the new one in Pyodide
            path.unlink()
    missing = wanted - set(have)
    if missing:
        raise AssetError(f"no wheel in {target} matches the pinned sha256 {sorted(missing)}")
    return target


def ensure_build(root: Path = ROOT) -> Path:
    """Run the product build (a no-op when current); return the site's vendor directory."""
    from durably_web.sitebuild import build

    return build(root).vendor


def stage_browser_assets(out: Path, wheels: Path = WHEELS, root: Path = ROOT) -> Path:
    """Copy the test wheels and a zip of ``root/tests/`` into ``out`` (emptied first); return it.

    ``index.json`` there lists the wheel file names for the test page's worker.
    """
    if out.exists():
        shutil.rmtree(out)
    (out / "wheels").mkdir(parents=True)
    names = []
    for wheel in sorted(wheels.glob("*.whl")):
        shutil.copyfile(wheel, out / "wheels" / wheel.name)
        names.append(wheel.name)
    with zipfile.ZipFile(out / "tests.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        tests = root / "tests"
        for dirpath, dirnames, filenames in os.walk(tests):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in sorted(filenames):
                if name.endswith(".py"):
                    path = Path(dirpath) / name
                    archive.write(path, path.relative_to(root).as_posix())
    (out / "index.json").write_text(json.dumps({"wheels": names, "tests": "tests.zip"}))
    return out


def main() -> int:
    """Prepare the built site and the test wheels; print where they are."""
    try:
        vendor = ensure_build()
        wheels = ensure_test_wheels()
    except Exception as exc:  # noqa: BLE001 - a command-line entry point: report, exit 1
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"vendored runtime: {vendor}\ntest wheels: {wheels}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
