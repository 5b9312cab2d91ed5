"""The rest of the standard library, fetched on first import.

The engine worker installs only the core of the stdlib zip (``python_stdlib_core.zip``: what
Pyodide's start-up, the engine and the demo's jobs import; 1.8 of 4.5 MB, see
``durably_web.sitebuild.engine_site``). :func:`install` appends a finder to ``sys.meta_path``
that, the first time Python imports a module of the rest (one the core zip does not have),
fetches ``python_stdlib_rest.zip`` synchronously (a worker may block on a synchronous
``XMLHttpRequest``), writes it into the file system and puts it on ``sys.path``; a package of
the core whose submodule is in the rest (``email.mime``) gets the rest's directory on its
``__path__``.

The finder holds no JavaScript object until it fetches, so a memory snapshot taken after
:func:`install` is valid (``web/runtime/snapshot.mjs``); :func:`refetch_after_restore`
writes the rest again when the snapshot was taken after it was fetched (the file system is
not in a snapshot).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

__all__ = ["REST_PATH", "RestOfStdlib", "install", "refetch_after_restore"]

REST_PATH = "/lib/python_stdlib_rest.zip"
"""Where the rest of the stdlib is written (beside Pyodide's ``/lib/python3XY.zip``)."""

_GET = """(url) => {
  const request = new XMLHttpRequest();
  request.open("GET", url, false); // a worker may wait: the import cannot
  request.responseType = "arraybuffer";
  request.send();
  return request.status === 200 ? new Uint8Array(request.response) : request.status;
}"""


class RestOfStdlib(importlib.abc.MetaPathFinder):
    """Find the modules of the rest zip, fetching it on first use.

    Args:
        url: the absolute URL of ``python_stdlib_rest.zip``.
        modules: the dotted names of the modules it holds.

    """

    def __init__(self, url: str, modules: Sequence[str]) -> None:
        self.url = url
        self.modules = frozenset(modules)
        self.fetched = False

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        """Find ``fullname`` in the rest zip (fetching it first), or None if it is not there.

        Raises:
            ImportError: the rest zip cannot be fetched (the message says why).

        """
        if fullname not in self.modules:
            return None
        if not self.fetched:
            self.fetch()
        parent = fullname.rpartition(".")[0]
        if not parent:
            return importlib.machinery.PathFinder.find_spec(fullname)
        package_path = getattr(sys.modules.get(parent), "__path__", None)
        if package_path is None:
            return None
        extra = f"{REST_PATH}/{parent.replace('.', '/')}"
        if extra not in package_path:
            package_path.append(extra)
        return importlib.machinery.PathFinder.find_spec(fullname, package_path)

    def fetch(self) -> None:
        """Fetch the rest zip (synchronously), write it to :data:`REST_PATH`, add it to the path.

        Raises:
            ImportError: the request failed.

        """
        from pyodide.code import run_js

        # Not `from js import XMLHttpRequest`: the js module keeps what it hands out, and a JS
        # object Python holds makes a later memory snapshot impossible.
        get = run_js(_GET)
        response = get(self.url)
        del get
        if isinstance(response, int):
            raise ImportError(
                f"cannot fetch the rest of the standard library ({self.url}): HTTP {response}"
            )
        data = response.to_bytes()
        del response
        with open(REST_PATH, "wb") as file:
            file.write(data)
        if REST_PATH not in sys.path:
            sys.path.append(REST_PATH)
        importlib.invalidate_caches()
        self.fetched = True


def install(url: str, modules_json: str) -> RestOfStdlib:
    """Append a :class:`RestOfStdlib` for ``url`` to ``sys.meta_path`` (called by the worker).

    Args:
        url: the absolute URL of ``python_stdlib_rest.zip``.
        modules_json: the modules it holds, as a JSON list (``engine.json``'s
            ``stdlib_rest.modules``).

    """
    finder = RestOfStdlib(url, json.loads(modules_json))
    sys.meta_path.insert(0, finder)  # before Pyodide's finder of unvendored modules
    return finder


def refetch_after_restore() -> None:
    """Write the rest zip again if it had been fetched before a memory snapshot was taken."""
    for finder in sys.meta_path:
        if isinstance(finder, RestOfStdlib) and finder.fetched:
            finder.fetch()
