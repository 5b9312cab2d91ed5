"""The engine's dataclasses run the bytecode the site build compiled for their methods.

Only the Pyodide runs have it (``tests/pyodide``; see ``test_browser_boot.py``): the
durably-web wheel they install is the build's compiled one, which holds
``durably_web/__dataclass_code__.marshal`` (``durably_web/_dataclass_code.py``). Every
dataclass a browser boot's imports create must have been recorded by the build, so that a
cold boot compiles none of their generated methods again.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from typing import Any


def test_a_browser_boots_imports_compile_no_dataclass_source() -> None:
    from durably_web import _dataclass_code

    assert _dataclass_code.loaded, "the installed durably-web wheel has no dataclass code"
    installed = vars(dataclasses)["exec"]
    assert installed is _dataclass_code._exec
    compiled: list[str] = []

    def spy(source: Any, scope: Any = None, names: Any = None, /) -> None:
        if isinstance(source, str) and source not in _dataclass_code.loaded:
            compiled.append(source.splitlines()[1].strip())  # "def __init__(self, ...):"
        installed(source, scope, names)

    # Import the engine afresh, as a boot does (engine.json's imports), then put the modules
    # this process already had back.
    kept = {
        name: module
        for name, module in sys.modules.items()
        if name.partition(".")[0] == "durably_web" and module is not _dataclass_code
    }
    for name in kept:
        del sys.modules[name]
    dataclasses.exec = spy  # type: ignore[attr-defined]
    try:
        importlib.import_module("durably_web.browser.boot")
        created = [name for name in sys.modules if name.startswith("durably_web.")]
    finally:
        dataclasses.exec = installed  # type: ignore[attr-defined]
        for name in [name for name in sys.modules if name.partition(".")[0] == "durably_web"]:
            if sys.modules[name] is not _dataclass_code:
                del sys.modules[name]
        sys.modules.update(kept)
    assert "durably_web.events" in created and "durably_web.models" in created
    assert not compiled, compiled
