"""A wheel of durably_web itself, written directly with :mod:`zipfile` (no build backend).

It holds every file of the installed ``durably_web`` package (modules, the ``.sql`` files,
``py.typed``; not bytecode caches, and not ``web/``: the site's files are served as they are,
Pyodide never imports them) under ``durably_web/``, plus ``<name>-<version>.dist-info/`` with
``METADATA`` (name, version, summary, license, Requires-Python and the Requires-Dist outside
extras: :func:`select_metadata` of the installed distribution's metadata, or of the metadata
the build hook is packaging), ``WHEEL`` (``py3-none-any``), ``top_level.txt`` and ``RECORD``.

It is byte-for-byte reproducible: members are sorted, dated 1980-01-01 and stored with fixed
permissions, so the file only changes when a source file (or the project metadata) does. It
is rebuilt on every build that is not a no-op; that takes milliseconds, and the precompile
cache is keyed by its sha256, so an unchanged wheel is not recompiled.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

from durably_web.sitebuild.layout import BuildError, Layout, input_files, write_atomic

__all__ = ["DISTRIBUTION", "build_self_wheel", "select_metadata", "wheel_metadata"]

DISTRIBUTION = "durably-web"
"""The distribution whose installed metadata the wheel carries."""

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_PACKAGE = "durably_web"
_FIELDS = ("Name", "Version", "Summary", "License-Expression", "License", "Requires-Python")


def select_metadata(get_all: Callable[[str], list[str] | None]) -> tuple[str, str]:
    """Return the wheel's version and ``METADATA`` text from a distribution's metadata.

    Args:
        get_all: the metadata's ``get_all`` (an installed distribution's, or an
            ``email.message.Message`` of a ``METADATA`` file): field -> values or None.

    """
    lines = ["Metadata-Version: 2.1"]
    for name in _FIELDS:
        for value in get_all(name) or []:
            lines.append(f"{name}: {' '.join(str(value).split())}")
    for requirement in get_all("Requires-Dist") or []:
        if "extra" not in requirement.partition(";")[2]:
            lines.append(f"Requires-Dist: {requirement}")
    version = (get_all("Version") or [""])[0]
    return str(version), "\n".join(lines) + "\n"


def wheel_metadata() -> tuple[str, str]:
    """Return the wheel's version and ``METADATA`` text, from the installed distribution.

    The build's fingerprint includes this text, so reinstalling another version rebuilds.

    Raises:
        BuildError: durably-web is not installed (its metadata is missing).

    """
    try:
        installed = importlib.metadata.metadata(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise BuildError(
            f"{DISTRIBUTION} is not installed (its metadata names the wheel); "
            "pip install it, or pip install -e . in a checkout"
        ) from exc
    return select_metadata(installed.get_all)


def build_self_wheel(layout: Layout, metadata: tuple[str, str] | None = None) -> Path:
    """Write ``.build/self/durably_web-<version>-py3-none-any.whl`` from the package.

    Args:
        layout: the build; its ``package`` holds the sources.
        metadata: the version and ``METADATA`` text (default: :func:`wheel_metadata`).

    Returns:
        The wheel's path; the file is only rewritten when its bytes change.

    Raises:
        BuildError: the package directory or the installed metadata is missing.

    """
    if not (layout.package / "__init__.py").is_file():
        raise BuildError(f"{layout.package} is not a Python package")
    version, text = metadata or wheel_metadata()
    dist = f"{_PACKAGE}-{version}"
    members: list[tuple[str, bytes]] = []
    for path in input_files(layout):
        if path.is_relative_to(layout.web):
            continue
        rel = path.relative_to(layout.package).as_posix()
        members.append((f"{_PACKAGE}/{rel}", path.read_bytes()))
    members.append((f"{dist}.dist-info/METADATA", text.encode()))
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


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"
