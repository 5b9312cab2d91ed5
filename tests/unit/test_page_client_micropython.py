"""The page-side package runs under MicroPython (PyScript's ``mpy``), not only CPython.

Runs ``micropython_client_check.py`` in MicroPython's WebAssembly build under Node, with
``durably_web/__init__.py`` (the page's light root) and the page package files laid out
as ``durably-web build`` serves them to pages. Node and the built site (``.build/site``, whose
vendored MicroPython this runs) are requirements: without them the test fails and says so.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from durably_web.sitebuild import Layout
from durably_web.sitebuild.build import PAGE_PACKAGE_FILES

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
LAYOUT = Layout(ROOT)
RUNTIME = LAYOUT.vendor / "micropython" / "micropython.mjs"
PAGE_ROOT = LAYOUT.page_py / "durably_web" / "__init__.py"


def test_page_package_runs_under_micropython(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is required: it runs MicroPython's WebAssembly build here")
    if not RUNTIME.is_file():
        pytest.fail(f"{RUNTIME} is missing: run `durably-web build` in {ROOT} first")
    package = tmp_path / "durably_web"
    package.mkdir()
    shutil.copy(PAGE_ROOT, package / "__init__.py")
    folders = sorted({Path(rel).parent for rel in PAGE_PACKAGE_FILES})
    for rel in PAGE_PACKAGE_FILES:
        (package / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(LAYOUT.package / rel, package / rel)
    mounts = [f"{package / folder}:{Path('/pkg/durably_web') / folder}" for folder in folders]
    result = subprocess.run(
        [
            node,
            str(HERE / "run_micropython.mjs"),
            str(RUNTIME),
            str(HERE / "micropython_client_check.py"),
            *mounts,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK micropython" in result.stdout


def test_pages_load_the_files_the_build_serves() -> None:
    # The JS client's pyscript.mjs lists the page package for PyScript's `files`; the build
    # serves web/py/durably_web/__init__.py plus PAGE_PACKAGE_FILES. They must agree.
    source = (LAYOUT.client / "pyscript.mjs").read_text()
    listed = source.split("PAGE_PACKAGE_FILES = [", 1)[1].split("]", 1)[0]
    names = [part.strip().strip('"') for part in listed.split(",") if part.strip()]
    assert sorted(names) == sorted(["__init__.py", *PAGE_PACKAGE_FILES])
    assert PAGE_ROOT.is_file()
