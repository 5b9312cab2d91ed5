"""durably_web._dataclass_code: the build's bytecode for generated dataclass methods.

The file itself is written by the site build with Pyodide's CPython (``pyc_compile.py``
``dataclass_code``) and only the browser engine's wheel has it: its use there is pinned by
``tests/in_pyodide/test_dataclass_code.py`` (the engine's classes run that bytecode) and
``tests/integration/test_sitebuild.py`` (the wheel and the engine tar hold it). Here, on this
CPython: what :func:`read` accepts, and that ``exec`` runs the stored code for its source and
compiles any other source as ``dataclasses``' own ``exec`` would.
"""

from __future__ import annotations

import dataclasses
import marshal
from importlib.util import MAGIC_NUMBER
from pathlib import Path

import pytest

from durably_web import _dataclass_code
from durably_web._dataclass_code import FILE, read

SOURCE = "def __create_fn__():\n def f(self):\n  return 1\n return (f,)"


def test_the_patch_is_there_exactly_when_the_file_is() -> None:
    # A CPython install (a checkout, a server) has no file and leaves dataclasses alone; the
    # build's compiled wheel (Pyodide, and this suite's run under Node) has it.
    has_file = (Path(_dataclass_code.__file__).parent / FILE).is_file()
    assert bool(_dataclass_code.loaded) == has_file
    assert vars(dataclasses).get("exec") is (_dataclass_code._exec if has_file else None)


def test_read_takes_a_file_of_this_cpython_and_ignores_any_other(tmp_path: Path) -> None:
    code = compile(SOURCE, "<string>", "exec", dont_inherit=True)
    good = tmp_path / "good"
    good.write_bytes(marshal.dumps((MAGIC_NUMBER, {SOURCE: code})))
    assert read(str(good)) == {SOURCE: code}
    other = tmp_path / "other"  # another CPython's bytecode would not run here
    other.write_bytes(marshal.dumps((b"\x00\x00\r\n", {SOURCE: code})))
    broken = tmp_path / "broken"
    broken.write_bytes(marshal.dumps((MAGIC_NUMBER, {SOURCE: code}))[:-9])
    not_codes = tmp_path / "not_codes"
    not_codes.write_bytes(marshal.dumps((MAGIC_NUMBER, {SOURCE: "text", 1: code})))
    for path in (other, broken, not_codes, tmp_path / "missing"):
        assert read(str(path)) == {}, path.name


def test_exec_runs_the_stored_code_for_its_source_and_compiles_any_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Stored under SOURCE: code that returns 2, so running it (not SOURCE) shows.
    stored = compile(SOURCE.replace("return 1", "return 2"), "<string>", "exec")
    monkeypatch.setattr(_dataclass_code, "loaded", {SOURCE: stored})
    names: dict[str, object] = {}
    _dataclass_code._exec(SOURCE, {}, names)
    assert names["__create_fn__"]()[0](None) == 2  # type: ignore[operator]
    # Any other source is compiled without this module's `from __future__ import annotations`.
    other = "def __create_fn__():\n def f(self, x: int):\n  return x\n return (f,)"
    _dataclass_code._exec(other, {}, names)
    function = names["__create_fn__"]()[0]  # type: ignore[operator]
    assert function(None, 3) == 3 and function.__annotations__ == {"x": int}
