"""A wheel of durably_web itself, written directly with :mod:`zipfile` (no build backend).

It holds every file of ``src/durably_web`` (modules, the ``.sql`` files, ``py.typed``; not
bytecode caches) under ``durably_web/``, plus ``<name>-<version>.dist-info/`` with
``METADATA`` (name, version, summary, Requires-Python, Requires-Dist from
``pyproject.toml``), ``WHEEL`` (``py3-none-any``), ``top_level.txt`` and ``RECORD``.

It is byte-for-byte reproducible: members are sorted, dated 1980-01-01 and stored with fixed
permissions, so the file only changes when a source file (or the project metadata) does. It
is rebuilt on every build that is not a no-op; that takes milliseconds, and the precompile
cache is keyed by its sha256, so an unchanged wheel is not recompiled.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tomllib
import zipfile
from pathlib import Path
from typing import Any

from durably_web.webbuild.layout import BuildError, Layout, input_files, write_atomic

__all__ = ["build_self_wheel", "project_metadata"]

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_PACKAGE = "durably_web"


def project_metadata(layout: Layout) -> dict[str, Any]:
    """Read the ``[project]`` table of ``pyproject.toml``.

    Raises:
        BuildError: the file is missing, is not TOML, or has no name and version.

    """
    try:
        project = tomllib.loads(layout.pyproject.read_text())["project"]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise BuildError(f"cannot read [project] from {layout.pyproject}: {exc}") from exc
    if not isinstance(project, dict) or not {"name", "version"} <= project.keys():
        raise BuildError(f"{layout.pyproject}: [project] needs a static name and version")
    return project


def build_self_wheel(layout: Layout) -> Path:
    """Write ``.build/self/durably_web-<version>-py3-none-any.whl`` from the sources.

    Returns:
        The wheel's path; the file is only rewritten when its bytes change.

    Raises:
        BuildError: ``src/durably_web`` or the project metadata is missing.

    """
    if not (layout.package_src / "__init__.py").is_file():
        raise BuildError(f"{layout.package_src} is not a Python package")
    project = project_metadata(layout)
    dist = f"{_PACKAGE}-{project['version']}"
    members: list[tuple[str, bytes]] = []
    sources = [p for p in input_files(layout) if p.is_relative_to(layout.package_src)]
    for path in sources:
        rel = path.relative_to(layout.package_src).as_posix()
        members.append((f"{_PACKAGE}/{rel}", path.read_bytes()))
    members.append((f"{dist}.dist-info/METADATA", _metadata(project).encode()))
    members.append((f"{dist}.dist-info/WHEEL", _WHEEL.encode()))
    members.append((f"{dist}.dist-info/top_level.txt", f"{_PACKAGE}\n".encode()))
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in members)
    members.append((f"{dist}.dist-info/RECORD", (record + f"{dist}.dist-info/RECORD,,\n").encode()))

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, FIXED_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=9)
    wheel = layout.state / "self" / f"{dist}-py3-none-any.whl"
    data = buffer.getvalue()
    if not wheel.is_file() or wheel.read_bytes() != data:
        write_atomic(wheel, data)
    for stale in wheel.parent.glob("*.whl"):
        if stale != wheel:
            stale.unlink()
    return wheel


_WHEEL = """\
Wheel-Version: 1.0
Generator: durably-web build
Root-Is-Purelib: true
Tag: py3-none-any
"""


def _metadata(project: dict[str, Any]) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
    ]
    if "description" in project:
        lines.append(f"Summary: {' '.join(str(project['description']).split())}")
    if isinstance(project.get("license"), str):
        lines.append(f"License: {project['license']}")
    if "requires-python" in project:
        lines.append(f"Requires-Python: {project['requires-python']}")
    lines += [f"Requires-Dist: {requirement}" for requirement in project.get("dependencies", [])]
    return "\n".join(lines) + "\n"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"
