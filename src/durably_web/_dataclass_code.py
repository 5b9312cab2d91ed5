"""Bytecode, compiled at build time, for the methods ``dataclasses`` generates for the engine.

``dataclasses`` writes the source of each class's ``__init__``, ``__repr__``, ``__eq__``,
``__hash__`` and frozen ``__setattr__``/``__delattr__`` and compiles it with ``exec`` when the
class is created: in Pyodide about 1.5 ms a class, ~70 ms of CPU for the engine's 47 classes
on every cold boot of a browser worker, half of the engine's imports (``bench/BOOT-NOTES.md``).

The site build compiles the durably_web wheel with Pyodide's own CPython
(``sitebuild/tools/pyc_compile.py``); it also imports the engine there, keeps each source
``dataclasses`` generated with the code object ``compile`` made of it, and writes the pairs
beside this module as :data:`FILE` (only in that compiled wheel, so only the browser engine,
and a Pyodide under Node, has it). Imported first by ``durably_web/__init__.py``, this module
makes ``dataclasses`` execute the stored code object for a source it finds there: the very code
``compile`` would give (the same CPython, source text and flags; a file of another CPython's
magic number is ignored). Any other source (a class of the page's own, a changed one) is
compiled as before. Without the file (CPython installs, a checkout) nothing changes.
"""

from __future__ import annotations

import builtins
import dataclasses
import marshal
import os
from types import CodeType
from typing import Any

__all__ = ["FILE", "loaded", "read"]

FILE = "__dataclass_code__.marshal"
"""The file beside this module: ``marshal`` of ``(magic number, {source: code object})``."""


def read(path: str) -> dict[str, CodeType]:
    """Return the code objects stored in ``path`` by their source, or ``{}``.

    ``{}`` when the file is missing or unreadable, or was written by a CPython of another
    magic number (its bytecode would not run here).
    """
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError:
        return {}
    from importlib.util import MAGIC_NUMBER

    try:
        magic, codes = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        return {}
    if magic != MAGIC_NUMBER or not isinstance(codes, dict):
        return {}
    return {
        source: code
        for source, code in codes.items()
        if isinstance(source, str) and isinstance(code, CodeType)
    }


loaded = read(os.path.join(os.path.dirname(__file__), FILE))
"""Generated source -> its compiled code object, from :data:`FILE` (empty without it)."""


def _exec(source: Any, scope: Any = None, names: Any = None, /) -> None:
    if not isinstance(source, str):
        builtins.exec(source, scope, names)
        return
    code = loaded.get(source)
    if code is None:
        # What `exec(source)` does in dataclasses' own frame, whose code has no __future__
        # flags to inherit: compile with none (this module's `annotations` must not leak in).
        code = compile(source, "<string>", "exec", dont_inherit=True)
    builtins.exec(code, scope, names)


if loaded:
    dataclasses.exec = _exec  # type: ignore[attr-defined]
