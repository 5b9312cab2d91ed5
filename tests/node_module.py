"""Run a JS module of the package under Node with a script, for the tests that compare it with
its Python twin (``node`` is a project requirement: ``durably-web build`` needs it too)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["run_module"]


def run_module(script: str, module: Path, *args: str) -> Any:
    """Run ``script`` (an ES module: ``process.argv[1]`` is ``module``'s URL, then ``args``).

    Returns:
        The JSON the script printed on stdout.

    """
    node = shutil.which("node")
    assert node is not None, "node is required (durably-web build and these checks use it)"
    result = subprocess.run(
        [node, "--input-type=module", "-e", script, module.as_uri(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
