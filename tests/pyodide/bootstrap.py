"""Put the test-only wheels (pytest and its dependencies) on ``sys.path`` inside Pyodide.

Standard library only: this runs before pytest is importable. The wheels are pure Python
(``tests/pyodide/requirements.txt``); each is unpacked into one directory that is prepended to
``sys.path``, so ``importlib.metadata`` finds their ``.dist-info`` as it would on CPython.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

__all__ = ["install_wheels"]

SITE = "/tmp/durably-test-site"


def install_wheels(directory: str, site: str = SITE) -> list[str]:
    """Unpack every ``*.whl`` in ``directory`` into ``site``; return the wheel names.

    Raises:
        FileNotFoundError: ``directory`` holds no wheel (the harness forgot to provide them).

    """
    wheels = sorted(Path(directory).glob("*.whl"))
    if not wheels:
        raise FileNotFoundError(
            f"no test wheels in {directory} (run: python -m tests.pyodide.assets)"
        )
    target = Path(site)
    target.mkdir(parents=True, exist_ok=True)
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(target)
    if site not in sys.path:
        sys.path.insert(0, site)
    return [wheel.name for wheel in wheels]
