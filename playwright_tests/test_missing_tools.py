"""A browser test whose tool is missing fails, saying what to install; it never skips.

Runs ``test_react_compat.py`` in a child pytest with npm off ``PATH``, then with Chromium
pointed at a missing file (``DURABLY_CHROMIUM``): both must fail at once with the fixture's
message. Nothing heavy starts (no server, no browser, no npm).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from playwright_tests.site import ROOT

TARGET = "playwright_tests/test_react_compat.py::test_use_job_triggers_and_follows_progress_to_the_output"


def child_pytest(env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", TARGET, "-q", "-rfEs", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0, result.stdout
    return result.stdout


def test_without_npm_the_react_page_test_fails(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # the Python of this run only: no node, no npm
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = {**os.environ, "PATH": str(bin_dir)}
    assert shutil.which("npm", path=env["PATH"]) is None
    out = child_pytest(env)
    assert "npm (Node.js 20+) is needed to build the React page" in out
    assert " error" in out and "skipped" not in out


def test_without_chromium_the_react_page_test_fails(tmp_path: Path) -> None:
    out = child_pytest({**os.environ, "DURABLY_CHROMIUM": str(tmp_path / "no-chromium")})
    assert f"{tmp_path / 'no-chromium'} is missing (apt-get install -y chromium)" in out
    assert " error" in out and "skipped" not in out
