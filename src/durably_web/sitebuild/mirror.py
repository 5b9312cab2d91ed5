"""Make ``web/vendor`` hold exactly the planned files, and describe it in ``manifest.json``.

Files whose bytes already match are left alone (their mtime, hence the server's ETag, stays);
changed ones are replaced atomically, so a running server never serves half a file; files
no longer planned are deleted from the top-level directories the build owns (and from the top
level itself), with the directories they leave empty. Other top-level directories, such as
``web/vendor/test/`` that the Pyodide test suite stages, are left alone.

``manifest.json`` maps each path (relative to ``web/vendor``, ``/``-separated) to its size and
sha256. It has no timestamps: two builds of the same inputs write identical bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from durably_web.webbuild.layout import write_atomic

__all__ = ["MANIFEST", "Mirrored", "mirror", "read_manifest", "verify"]

MANIFEST = "manifest.json"
"""The manifest's name inside ``web/vendor``."""


@dataclass(frozen=True, slots=True)
class Mirrored:
    """What :func:`mirror` did."""

    manifest: dict[str, dict[str, int | str]]
    written: int
    removed: int


def mirror(
    plan: dict[str, Path], generated: dict[str, bytes], out: Path, owned: frozenset[str]
) -> Mirrored:
    """Copy ``plan`` (vendor path -> source file) and write ``generated`` into ``out``.

    Args:
        plan: files to copy.
        generated: files to write from bytes (such as the lock).
        out: the vendor directory.
        owned: the top-level directories of ``out`` whose unplanned files are deleted.

    Returns:
        The manifest (also written to ``out/manifest.json``) and the counts.

    """
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict[str, int | str]] = {}
    written = 0
    for rel in sorted({*plan, *generated}):
        target = out / rel
        data = generated[rel] if rel in generated else plan[rel].read_bytes()
        if (
            not target.is_file()
            or target.stat().st_size != len(data)
            or target.read_bytes() != data
        ):
            write_atomic(target, data)
            written += 1
        manifest[rel] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    text = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    manifest_path = out / MANIFEST
    if not manifest_path.is_file() or manifest_path.read_bytes() != text:
        write_atomic(manifest_path, text)
    removed = _remove_stale(out, {*manifest, MANIFEST}, owned)
    return Mirrored(manifest=manifest, written=written, removed=removed)


def read_manifest(out: Path) -> dict[str, dict[str, int | str]] | None:
    """Return the manifest of a vendor directory, or None if it is missing or unreadable."""
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def verify(out: Path, manifest: dict[str, dict[str, int | str]]) -> bool:
    """Tell whether every manifest file exists with its size (cheap: no hashing)."""
    for rel, entry in manifest.items():
        try:
            if (out / rel).stat().st_size != entry.get("size"):
                return False
        except OSError:
            return False
    return True


def _remove_stale(out: Path, keep: set[str], owned: frozenset[str]) -> int:
    removed = 0
    for dirpath, _, filenames in os.walk(out, topdown=False):
        directory = Path(dirpath)
        if directory != out and directory.relative_to(out).parts[0] not in owned:
            continue
        for name in filenames:
            path = directory / name
            if path.relative_to(out).as_posix() not in keep:
                path.unlink()
                removed += 1
        if directory != out and not any(directory.iterdir()):
            directory.rmdir()
    return removed
