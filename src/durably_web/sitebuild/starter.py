"""``durably-web new DIR``: write the starter app (package data ``durably_web/web/starter/``).

The starter is a complete app: ``index.html`` (offline support, the engine's early boot,
PyScript), ``app.py`` (a button that triggers the job, live progress, the stored runs),
``jobs.py`` (one job of checkpointed steps), ``style.css`` and a short ``README.md``. ``DIR``
must not exist or be empty: nothing is ever overwritten.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from durably_web.sitebuild.layout import PACKAGE, BuildError, Layout, walk

__all__ = ["new_app"]


def new_app(directory: Path, *, package: Path = PACKAGE) -> list[Path]:
    """Copy the starter app into ``directory`` (created; it may exist if empty).

    Args:
        directory: where the app goes.
        package: the durably_web package directory (the installed one).

    Returns:
        The files written, sorted.

    Raises:
        BuildError: ``directory`` is a file or a non-empty directory, or cannot be written.

    """
    source = Layout(directory, package).starter
    files = list(walk(source))
    if not files:
        raise BuildError(f"{source} is missing: the durably-web install is incomplete")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        what = "is a file" if not directory.is_dir() else "is not empty"
        raise BuildError(f"{directory} {what}; give a new directory for the app")
    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for path in files:
            target = directory / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            os.chmod(target, 0o644)
            written.append(target)
    except OSError as exc:
        raise BuildError(f"cannot write the app into {directory}: {exc}") from exc
    return sorted(written)
