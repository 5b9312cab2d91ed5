"""Load a page module of the dashboard (a file next to its page, not in a package) on CPython."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import durably_web

DASHBOARD = Path(durably_web.__file__).parent / "web" / "dashboard"


def load_dashboard_module(name: str) -> ModuleType:
    """Return ``web/dashboard/NAME.py`` as a module, as the dashboard's page imports it."""
    spec = importlib.util.spec_from_file_location(f"dashboard_{name}", DASHBOARD / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
