"""The page-side package runs under MicroPython (PyScript's ``mpy``), not only CPython.

Runs ``micropython_client_check.py`` in MicroPython's WebAssembly build under Node, with
``durably_web/__init__.py`` (the page's light root) and the page package files laid out
as ``durably-web build`` serves them to pages. Skipped without node or the MicroPython
runtime (``durably-web build`` vendors it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from durably_web.webbuild.build import PAGE_PACKAGE_FILES

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
RUNTIMES = [
    ROOT / "web/vendor/micropython/micropython.mjs",
    ROOT / "web/node_modules/@micropython/micropython-webassembly-pyscript/micropython.mjs",
]


def test_page_package_runs_under_micropython(tmp_path: Path) -> None:
    node = shutil.which("node")
    runtime = next((path for path in RUNTIMES if path.exists()), None)
    if node is None or runtime is None:
        pytest.skip("needs node and MicroPython's PyScript build (run `durably-web build`)")
    package = tmp_path / "durably_web"
    package.mkdir()
    shutil.copy(ROOT / "web/py/durably_web/__init__.py", package / "__init__.py")
    folders = sorted({Path(rel).parent for rel in PAGE_PACKAGE_FILES})
    for rel in PAGE_PACKAGE_FILES:
        (package / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "src/durably_web" / rel, package / rel)
    mounts = [f"{package / folder}:{Path('/pkg/durably_web') / folder}" for folder in folders]
    result = subprocess.run(
        [
            node,
            str(HERE / "run_micropython.mjs"),
            str(runtime),
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
    # web/client/pyscript.mjs lists the page package for PyScript's `files`; the build
    # serves web/py/durably_web/__init__.py plus PAGE_PACKAGE_FILES. They must agree.
    page_list = ROOT / "web/client/pyscript.mjs"
    if not page_list.exists():
        pytest.skip("web/ is not here (the Pyodide test runner mounts only src/ and tests/)")
    source = page_list.read_text()
    listed = source.split("PAGE_PACKAGE_FILES = [", 1)[1].split("]", 1)[0]
    names = [part.strip().strip('"') for part in listed.split(",") if part.strip()]
    assert sorted(names) == sorted(["__init__.py", *PAGE_PACKAGE_FILES])
    assert (ROOT / "web/py/durably_web/__init__.py").is_file()
