"""Hatch build hook: ship the browser runtime's ``.pyc`` archives in the sdist and the wheel.

``durably-web build`` serves Pyodide a stdlib and wheels precompiled to ``.pyc`` (a page
boots about twice as fast), and only Pyodide's own CPython can compile them, under Node.
This hook does that once, when the distribution is built, so that installing durably-web
and building a site needs Python and the npm registry only: the archives go into
``durably_web/web/precompiled/`` (see ``src/durably_web/sitebuild/precompiled.py``).

- wheel / sdist of a checkout: compile (cached in ``.build/``) and include them; needs Node.
- wheel of an sdist: the sdist already holds them; nothing to do.
- editable install: nothing; ``durably-web build`` compiles in the checkout (with Node).

The site builder is loaded from ``src/`` without importing ``durably_web/__init__.py`` (the
engine needs pydantic, which the build environment does not have; the builder is standard
library only).
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.metadata.spec import DEFAULT_METADATA_VERSION, get_core_metadata_constructors

PACKAGE = "durably_web"
SHIPPED = "web/precompiled"


class PrecompiledArchives(BuildHookInterface):  # type: ignore[type-arg]
    """Add ``durably_web/web/precompiled/`` to the sdist and the wheel."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Compile the archives (or find them in an sdist) and include them."""
        if version == "editable":
            return
        root = Path(self.root)
        package = root / "src" / PACKAGE
        if (package / SHIPPED / "index.json").is_file():  # an sdist's: already included
            return
        metadata = get_core_metadata_constructors()[DEFAULT_METADATA_VERSION](self.metadata)
        files = _precompiled(package).package_archives(
            root, metadata, log=lambda line: self.app.display_info(f"precompile: {line}")
        )
        where = f"{PACKAGE}/{SHIPPED}"
        if self.target_name == "sdist":  # the sdist keeps the source layout
            where = f"src/{where}"
        for path in files:
            build_data["force_include"][str(path)] = f"{where}/{path.name}"


def _precompiled(package: Path) -> Any:
    """Import ``durably_web.sitebuild.precompiled`` from ``package`` without its package root."""
    saved = {name: module for name, module in sys.modules.items() if name.split(".")[0] == PACKAGE}
    stub = types.ModuleType(PACKAGE)
    stub.__path__ = [str(package)]
    sys.modules[PACKAGE] = stub
    try:
        return importlib.import_module(f"{PACKAGE}.sitebuild.precompiled")
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == PACKAGE]:
            if name not in saved:
                del sys.modules[name]
        sys.modules.update(saved)
