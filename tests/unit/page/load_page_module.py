"""Load a page module (a file next to its page, not in a package) on CPython: the dashboard's
and the demo's."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import durably_web

WEB = Path(durably_web.__file__).parent / "web"
DASHBOARD = WEB / "dashboard"


def load_dashboard_module(name: str) -> ModuleType:
    """Return ``web/dashboard/NAME.py`` as a module, as the dashboard's page imports it."""
    return load_page_module(DASHBOARD / f"{name}.py")


def load_page_module(path: Path) -> ModuleType:
    """Return the page module at ``path`` (``web/<page>/<name>.py``) as a module."""
    spec = importlib.util.spec_from_file_location(f"page_{path.parent.name}_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
