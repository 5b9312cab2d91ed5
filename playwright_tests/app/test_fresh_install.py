"""From the package to a running app, as a new user does it, outside this checkout (issue 9, 1).

In a temporary directory: build the sdist of this checkout (with Node: the build hook
compiles the browser runtime's ``.pyc`` archives into it), build the wheel from that sdist
and ``pip install`` it into a fresh virtual environment, then ``durably-web new app``,
``durably-web build app`` and ``durably-web serve app`` with a ``PATH`` holding only that
environment's ``bin`` (no Node, no npm) and an empty download cache: the build fetches the
pinned npm tarballs itself. Chromium opens the app, triggers the starter job and sees it
complete. Run it alone with::

    .venv/bin/pytest playwright_tests/app/test_fresh_install.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from playwright_tests.app.helpers import StarterPage
from playwright_tests.demo.helpers import Browser
from playwright_tests.site import ROOT

pytestmark = pytest.mark.browser


def run(command: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command; fail the test with its output if it fails; return its stdout."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def test_a_new_app_from_the_released_package_builds_and_runs_without_node(
    tmp_path_factory: pytest.TempPathFactory, browser: Browser
) -> None:
    work = tmp_path_factory.mktemp("fresh-install")
    assert not work.is_relative_to(ROOT)
    dist = work / "dist"

    # The release: the sdist, built where Node is (its hook compiles the archives).
    tools = work / "tools"
    run([sys.executable, "-m", "venv", tools], cwd=work)
    run([tools / "bin" / "python", "-m", "pip", "install", "-q", "hatchling"], cwd=work)
    run([tools / "bin" / "python", "-m", "hatchling", "build", "-t", "sdist", "-d", dist], cwd=ROOT)
    [sdist] = dist.glob("durably_web-*.tar.gz")

    # The user's machine: Python and the package registries, nothing else on PATH.
    venv = work / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=work)
    bare = {
        key: value
        for key, value in os.environ.items()
        if key.startswith(("PIP_", "SSL_", "REQUESTS_", "HTTP", "HTTPS", "NO_PROXY"))
    }
    env = {**bare, "PATH": str(venv / "bin"), "HOME": str(work / "home")}
    env["DURABLY_WEB_CACHE"] = str(work / "cache")
    assert shutil.which("node", path=env["PATH"]) is None
    assert shutil.which("npm", path=env["PATH"]) is None
    pip: list[str | Path] = [venv / "bin" / "python", "-m", "pip", "--disable-pip-version-check"]
    run([*pip, "wheel", "-q", "--no-deps", "-w", dist, sdist], cwd=work, env=env)
    [wheel] = dist.glob("durably_web-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert "durably_web/web/precompiled/index.json" in archive.namelist()
    run([*pip, "install", "-q", wheel], cwd=work, env=env)

    cli = venv / "bin" / "durably-web"
    run([cli, "new", "app"], cwd=work, env=env)
    built = run([cli, "build", "app"], cwd=work, env=env)
    assert "download pyodide@" in built  # from the registry, into the empty cache
    assert "precompile" not in built and "pip download" not in built  # shipped in the wheel
    site = work / "app" / ".build" / "site"
    shipped = venv.glob("lib/python*/site-packages/durably_web/web/precompiled/python_stdlib.zip")
    [stdlib] = list(shipped)
    assert (site / "_durably/vendor/pyodide/python_stdlib.zip").read_bytes() == stdlib.read_bytes()

    server = subprocess.Popen(
        [cli, "serve", "app", "--port", "0"],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert line.startswith("Serving the app in app at http://127.0.0.1:"), line
        url = line.rsplit(" ", 1)[1].strip()
        page = StarterPage(browser.open().new_page()).goto(url)
        run_id = page.count_primes(1_000_000)
        shown = page.wait_completed(run_id)
        assert shown["text"] == "78,498 primes · the largest is 999,983"
        assert shown["max"] == shown["value"] == 20
    finally:
        server.terminate()
        server.communicate(timeout=30)  # waits, and closes its pipes
