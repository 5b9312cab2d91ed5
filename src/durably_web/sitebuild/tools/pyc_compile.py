"""Rewrite zip archives (the stdlib zip, wheels) with .py files compiled to .pyc.

Runs INSIDE Pyodide (see precompile.mjs, run by ``durably-web build``): a .pyc
is only valid for the exact CPython that wrote it (magic number, bytecode), and
the only CPython 3.14 on the build machine is Pyodide's.

Contract:
- every ``*.py`` member becomes a sourceless ``*.pyc`` next to where the ``.py``
  was (sourceless imports need that place, not ``__pycache__``); a module that
  does not compile keeps its ``.py`` and is reported;
- the .pyc is hash-based and unchecked (PEP 552): no timestamps, so the output
  is byte-for-byte reproducible and the importer never looks for the source;
- ``co_filename`` is the path the module will have at run time, so tracebacks
  name real paths (the source text itself is gone);
- other members are copied unchanged; every member gets a fixed date so the
  archive's sha256 only depends on its contents;
- for a wheel, ``RECORD`` is rewritten to list the new files and hashes and the
  ``WHEEL`` tags follow the new file name (``py3-none-any`` -> ``cp314-none-any``,
  as Pyodide's own ``pyodide py-compile`` names them);
- a job with ``dataclass_imports`` (durably_web's own wheel) also gets the bytecode
  of the methods ``dataclasses`` generates while those modules are imported from the
  compiled wheel: ``<package>/__dataclass_code__.marshal``, the marshal of
  ``(magic number, {generated source: code object})``, which
  ``durably_web/_dataclass_code.py`` reads (its ``FILE``) so that a cold boot does not
  compile them again.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import marshal
import site
import sys
import zipfile

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
DATACLASS_CODE = "__dataclass_code__.marshal"  # durably_web/_dataclass_code.py FILE
# PEP 552 flags: bit 0 = hash-based, bit 1 = check_source. 0b01: unchecked hash.
UNCHECKED_HASH_FLAGS = (0b01).to_bytes(4, "little")


def pyc_bytes(source: bytes, runtime_path: str) -> bytes:
    """Compile ``source`` the way the import system does and serialise it."""
    code = compile(source, runtime_path, "exec", dont_inherit=True, optimize=0)
    return (
        importlib.util.MAGIC_NUMBER
        + UNCHECKED_HASH_FLAGS
        + importlib.util.source_hash(source)
        + marshal.dumps(code)
    )


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def _write(out: zipfile.ZipFile, name: str, data: bytes, external_attr: int) -> None:
    info = zipfile.ZipInfo(name, FIXED_DATE)
    info.external_attr = external_attr or (0o644 << 16)
    info.compress_type = zipfile.ZIP_STORED if name.endswith("/") else zipfile.ZIP_DEFLATED
    out.writestr(info, data)


def compile_archive(
    src: str,
    dst: str,
    runtime_prefix: str,
    wheel_tag: str | None,
    dataclass_imports: list[str] | None = None,
) -> dict:
    """Compile ``src`` into ``dst``; ``runtime_prefix`` is where members live at run time.

    ``wheel_tag`` (e.g. ``cp314-none-any``) marks ``src`` as a wheel whose
    ``RECORD`` and ``WHEEL`` must be rewritten. ``dataclass_imports``: modules to
    import from the compiled archive, recording the dataclass code they generate.
    """
    compiled = 0
    failed: list[str] = []
    members: list[tuple[str, bytes, int]] = []
    with zipfile.ZipFile(src) as zin:
        for info in zin.infolist():
            name = info.filename
            if name.endswith(".pyc") or "/__pycache__/" in "/" + name:
                continue  # stale bytecode from the source archive
            data = b"" if info.is_dir() else zin.read(info)
            if name.endswith(".py"):
                try:
                    data = pyc_bytes(data, runtime_prefix + name)
                except (SyntaxError, ValueError) as exc:
                    failed.append(f"{name}: {exc}")
                else:
                    name += "c"
                    compiled += 1
            members.append((name, data, info.external_attr))

    if dataclass_imports:
        _write_zip(dst, members)  # imported from, then written again with the code
        package = dataclass_imports[0].split(".", 1)[0]
        code = dataclass_code(dst, dataclass_imports)
        members.append((f"{package}/{DATACLASS_CODE}", code, 0o644 << 16))
    if wheel_tag is not None:
        members = _rewrite_wheel_metadata(members, wheel_tag)
    _write_zip(dst, members)
    return {"src": src, "dst": dst, "compiled": compiled, "failed": failed}


def _write_zip(dst: str, members: list[tuple[str, bytes, int]]) -> None:
    with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for name, data, attr in members:
            _write(zout, name, data, attr)


def dataclass_code(archive: str, imports: list[str]) -> bytes:
    """Import ``imports`` from ``archive`` (zipimport) and return the dataclass code they made.

    Every source ``dataclasses`` executes meanwhile is compiled as its own ``exec``
    would compile it (no inherited ``__future__`` flags: dataclasses.py has none),
    kept with its code object, and executed. The modules imported are forgotten
    again. Returns the marshal of ``(MAGIC_NUMBER, {source: code})``.
    """
    import dataclasses

    codes = {}

    def record(source, scope=None, names=None, /):
        code = compile(source, "<string>", "exec", dont_inherit=True)
        codes[source] = code
        exec(code, scope, names)

    before = set(sys.modules)
    sys.path.insert(0, archive)
    dataclasses.exec = record
    try:
        for name in imports:
            importlib.import_module(name)
    finally:
        del dataclasses.exec
        sys.path.remove(archive)
        for name in set(sys.modules) - before:
            del sys.modules[name]
    if not codes:
        raise ValueError(f"importing {imports} from {archive} created no dataclass")
    return marshal.dumps((importlib.util.MAGIC_NUMBER, codes))


def _rewrite_wheel_metadata(
    members: list[tuple[str, bytes, int]], wheel_tag: str
) -> list[tuple[str, bytes, int]]:
    dist_info = next(
        name.split("/", 1)[0]
        for name, _, _ in members
        if name.split("/", 1)[0].endswith(".dist-info")
    )
    record_name = f"{dist_info}/RECORD"
    wheel_name = f"{dist_info}/WHEEL"
    out = []
    for name, data, attr in members:
        if name == wheel_name:
            lines = [line for line in data.decode().splitlines() if not line.startswith("Tag:")]
            lines.append(f"Tag: {wheel_tag}")
            data = ("\n".join(lines) + "\n").encode()
        if name != record_name:
            out.append((name, data, attr))
    rows = [
        f"{name},{_record_hash(data)},{len(data)}"
        for name, data, _ in out
        if not name.endswith("/")
    ]
    rows.append(f"{record_name},,")
    out.append((record_name, ("\n".join(rows) + "\n").encode(), 0o644 << 16))
    return out


def runtime_prefix(kind: str) -> str:
    """Where an archive's members live when Pyodide runs them."""
    if kind == "stdlib":  # Pyodide writes the stdlib zip to /lib/python3XY.zip
        return f"/lib/python{sys.version_info.major}{sys.version_info.minor}.zip/"
    if kind == "wheel":
        return site.getsitepackages()[0] + "/"
    raise ValueError(f"unknown archive kind {kind!r}")


def wheel_tag(dst: str) -> str:
    """Return the tag of the output wheel's file name; it must name this interpreter."""
    tag = dst.rsplit("/", 1)[-1].removesuffix(".whl").split("-", 2)[-1]
    expected = f"cp{sys.version_info.major}{sys.version_info.minor}-"
    if not tag.startswith(expected):
        raise ValueError(f"{dst}: tag {tag!r} does not start with {expected!r}")
    return tag


def main(jobs_json: str) -> str:
    """Run every job of a JSON list; return a JSON report (called from precompile.mjs).

    A job is ``{"kind": "stdlib" | "wheel", "src": path, "dst": path}``, optionally with
    ``"dataclass_imports": [module, ...]`` (see :func:`dataclass_code`).
    """
    jobs = json.loads(jobs_json)
    report = [
        compile_archive(
            job["src"],
            job["dst"],
            runtime_prefix(job["kind"]),
            wheel_tag(job["dst"]) if job["kind"] == "wheel" else None,
            job.get("dataclass_imports"),
        )
        for job in jobs
    ]
    return json.dumps(
        {"python": sys.version, "magic": importlib.util.MAGIC_NUMBER.hex(), "archives": report}
    )
