"""The page-side package runs under MicroPython (PyScript's ``mpy``), not only CPython.

Runs ``micropython_client_check.py`` (the client) and ``page/live_check.py`` (the live views
of ``durably_web.client.live``) in MicroPython's WebAssembly build under Node, with
``durably_web/__init__.py`` (the page's light root) and the page package files laid out
as ``durably-web build`` serves them to pages. Node and the built site (``.build/site``, whose
vendored MicroPython this runs) are requirements: without them the test fails and says so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from durably_web.sitebuild import Layout
from durably_web.sitebuild.build import PAGE_PACKAGE_FILES, page_files, page_files_json

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
LAYOUT = Layout(ROOT)
RUNTIME = LAYOUT.vendor / "micropython" / "micropython.mjs"
PAGE_ROOT = LAYOUT.page_py / "durably_web" / "__init__.py"


def run_under_micropython(tmp_path: Path, script: Path, *mounts: str) -> str:
    """Run ``script`` (its ``main()``) under MicroPython with the page package; return stdout.

    ``mounts`` are more ``host_dir:guest_dir`` folders whose ``.py`` files the script reads.
    """
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
    package_mounts = [
        f"{package / folder}:{Path('/pkg/durably_web') / folder}" for folder in folders
    ]
    result = subprocess.run(
        [
            node,
            str(HERE / "run_micropython.mjs"),
            str(RUNTIME),
            str(script),
            *package_mounts,
            *mounts,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK micropython" in result.stdout
    return result.stdout


def test_page_package_runs_under_micropython(tmp_path: Path) -> None:
    run_under_micropython(tmp_path, HERE / "micropython_client_check.py")


def test_live_views_run_under_micropython(tmp_path: Path) -> None:
    # tests/unit/page/live_check.py: every live view and DOM helper over a fake adapter.
    output = run_under_micropython(
        tmp_path, HERE / "page" / "live_check.py", f"{HERE / 'page'}:/page"
    )
    assert "live views checked micropython" in output


def test_pages_load_the_files_the_build_serves() -> None:
    # pyscript.mjs gives PyScript the files the build lists in _durably/vendor/py/files.json,
    # written from the same plan that copies them: the light root plus PAGE_PACKAGE_FILES.
    served = page_files(LAYOUT)
    listed = json.loads(page_files_json(served))
    assert listed == sorted(
        ["durably_web/__init__.py", *(f"durably_web/{rel}" for rel in PAGE_PACKAGE_FILES)]
    )
    assert all(path.is_file() for path in served.values())
    assert PAGE_ROOT.is_file()


def test_pyscript_module_declares_no_file_list_of_its_own() -> None:
    # The list has one home (PAGE_PACKAGE_FILES); a copy in the JS could drift from it again.
    source = (LAYOUT.client / "pyscript.mjs").read_text()
    assert "py/files.json" in source
    copied = [rel for rel in PAGE_PACKAGE_FILES if f'"{rel}"' in source]
    assert not copied, f"pyscript.mjs names page package files itself: {copied}"


def test_every_live_module_is_served_to_pages() -> None:
    live = LAYOUT.package / "client" / "live"
    modules = {path.relative_to(LAYOUT.package).as_posix() for path in live.glob("*.py")}
    assert modules and modules <= set(PAGE_PACKAGE_FILES), modules - set(PAGE_PACKAGE_FILES)
