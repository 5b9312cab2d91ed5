"""Make a site directory hold exactly the planned files, and describe them in a manifest.

Files whose bytes already match are left alone (their mtime, hence the server's ETag, stays);
changed ones are replaced atomically, so a running server never serves half a file; every
other file of the directory is deleted, with the directories it leaves empty: the build owns
the whole site. A directory that is not empty and has no manifest is not a site the build
wrote, and is refused rather than emptied.

The manifest (:data:`MANIFEST`, ``_durably/manifest.json``) maps each path of the site
(relative to the site, ``/``-separated) to its size and sha256. It has no timestamps: two
builds of the same inputs write identical bytes. The sha256 of its bytes is the *build id*:
files written after it (the service worker, which names the build) are not listed in it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from durably_web.sitebuild.layout import PREFIX, BuildError, write_atomic

__all__ = ["MANIFEST", "Mirrored", "mirror", "read_manifest", "verify"]

MANIFEST = f"{PREFIX}/manifest.json"
"""The manifest's path inside a site."""


@dataclass(frozen=True, slots=True)
class Mirrored:
    """What :func:`mirror` did: the manifest, the build id (its sha256), the counts."""

    manifest: dict[str, dict[str, int | str]]
    build_id: str
    written: int
    removed: int


def _no_files(_build_id: str) -> dict[str, bytes]:
    return {}


def mirror(
    plan: dict[str, Path],
    generated: dict[str, bytes],
    out: Path,
    unlisted: Callable[[str], dict[str, bytes]] = _no_files,
) -> Mirrored:
    """Copy ``plan`` (site path -> source file) and write ``generated`` into ``out``.

    Args:
        plan: files to copy.
        generated: files to write from bytes (such as the lock).
        out: the site directory.
        unlisted: build id -> files to write after the manifest, not listed in it.

    Returns:
        The manifest (also written to ``out/_durably/manifest.json``), its sha256 and the
        counts.

    Raises:
        BuildError: ``out`` holds files but no manifest (it is not a site the build wrote).

    """
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise BuildError(f"{out} is not empty and holds no {MANIFEST}: not overwriting it")
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
    build_id = hashlib.sha256(text).hexdigest()
    late = unlisted(build_id)
    for rel, data in {MANIFEST: text, **late}.items():
        target = out / rel
        if not target.is_file() or target.read_bytes() != data:
            write_atomic(target, data)
    removed = _remove_stale(out, {*manifest, MANIFEST, *late})
    return Mirrored(manifest=manifest, build_id=build_id, written=written, removed=removed)


def read_manifest(out: Path) -> dict[str, dict[str, int | str]] | None:
    """Return the manifest of a site, or None if it is missing or unreadable."""
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


def _remove_stale(out: Path, keep: set[str]) -> int:
    removed = 0
    for dirpath, dirnames, filenames in os.walk(out, topdown=False):
        directory = Path(dirpath)
        for name in filenames + [d for d in dirnames if (directory / d).is_symlink()]:
            path = directory / name
            if path.relative_to(out).as_posix() not in keep:
                path.unlink()
                removed += 1
        if directory != out and not any(directory.iterdir()):
            directory.rmdir()
    return removed
