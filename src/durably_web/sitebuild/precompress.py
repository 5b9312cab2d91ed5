"""Precompressed siblings of a site's files: ``foo.wasm.br``, ``foo.wasm.gz`` by ``foo.wasm``.

The engine worker's cold load is mostly Pyodide's wasm, the engine tar and the core stdlib
zip. A server that compresses them per request spends ~1 s of CPU on a cold load (gzip -6 of
~20 MB) and gets gzip's ratio only; the build writes them compressed once instead, and the
static server (:mod:`.static`) sends a sibling as ``Content-Encoding: br`` or ``gzip`` when
the request accepts it. Hosts do the same with their own switches (``docs/apps.md``).

- Which files: :data:`COMPRESSIBLE` suffixes, at least :data:`MIN_SIZE` bytes (smaller ones
  are compressed per request: there is nothing to gain).
- gzip at level 9 always (standard library); brotli at quality 11 when the ``brotli``
  package is installed (``pip install durably-web[brotli]``): about 20% fewer bytes than
  gzip for wasm, 30% for the tar. Without it, only ``.gz`` siblings are written.
- Reproducible (gzip's header has no name and no date) and cached by content in the user
  cache (``compressed/<sha256>.<suffix>``): brotli 11 takes ~35 s for Pyodide's wasm, once.
- Siblings are not listed in the manifest (the service worker precaches the files, and the
  browser decodes whatever encoding the server sent). A sibling counts only while it is not
  older than its file (:func:`fresh_sibling`): a file replaced after the build is never
  answered with the old file's compressed bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

from durably_web.sitebuild.layout import user_cache, write_atomic

__all__ = [
    "COMPRESSIBLE",
    "ENCODINGS",
    "MIN_SIZE",
    "brotli_module",
    "compress",
    "fresh_sibling",
    "siblings",
]

COMPRESSIBLE = frozenset(
    {".html", ".js", ".mjs", ".json", ".wasm", ".css", ".py", ".svg", ".txt", ".map", ".tar"}
)
"""Suffixes sent compressed to clients that accept it (``.zip`` and ``.whl``, whose members
are deflated already, are not; the core stdlib zip, whose members are stored, is: see
:data:`STORED_ZIPS` and :func:`wanted`)."""

MIN_SIZE = 4096
"""Files smaller than this get no precompressed sibling."""

ENCODINGS = (("br", ".br"), ("gzip", ".gz"))
"""``Content-Encoding`` and sibling suffix, in the order a server prefers them."""

_GZIP_LEVEL = 9
_BROTLI_QUALITY = 11


def brotli_module() -> ModuleType | None:
    """Return the ``brotli`` package if it is installed, else None."""
    try:
        return importlib.import_module("brotli")
    except ImportError:
        return None


def compress(data: bytes, coding: str) -> bytes:
    """Compress ``data`` with ``coding`` (``"gzip"`` or ``"br"``), reproducibly.

    Raises:
        ValueError: ``coding`` is not one of :data:`ENCODINGS`, or is ``br`` without the
            ``brotli`` package.

    """
    if coding == "gzip":
        return gzip.compress(data, compresslevel=_GZIP_LEVEL, mtime=0)
    if coding == "br":
        brotli = brotli_module()
        if brotli is None:
            raise ValueError("brotli compression needs the brotli package (durably-web[brotli])")
        return bytes(brotli.compress(data, quality=_BROTLI_QUALITY))
    raise ValueError(f"unknown content coding {coding!r}: use one of gzip, br")


def siblings(files: Mapping[str, bytes], cache: Path | None = None) -> dict[str, bytes]:
    """Return the precompressed siblings of ``files`` (site path -> bytes).

    Args:
        files: the site's files to consider; those :func:`wanted` of at least
            :data:`MIN_SIZE` bytes get siblings.
        cache: where compressed bytes are kept by content (default: the user cache's
            ``compressed/``).

    Returns:
        ``path + ".gz"`` (and ``path + ".br"`` with the brotli package) -> compressed bytes.

    """
    directory = (cache or user_cache()) / "compressed"
    codings = [(c, s) for c, s in ENCODINGS if c != "br" or brotli_module() is not None]
    out: dict[str, bytes] = {}
    for rel, data in files.items():
        if len(data) < MIN_SIZE or not wanted(rel):
            continue
        digest = hashlib.sha256(data).hexdigest()
        for coding, suffix in codings:
            cached = directory / f"{digest}{suffix}"
            try:
                out[rel + suffix] = cached.read_bytes()
                continue
            except OSError:
                pass
            packed = compress(data, coding)
            write_atomic(cached, packed)
            out[rel + suffix] = packed
    return out


STORED_ZIPS = ("python_stdlib_core.zip",)
"""Zip files whose members are stored, not deflated (:mod:`.engine_site`): compressed as a
whole on the wire (brotli: 1.2 MB for the core stdlib, against 1.7 MB with deflated
members), so they get siblings too."""


def wanted(path: str) -> bool:
    """Tell whether a file (path or name) is sent compressed.

    Yes for a :data:`COMPRESSIBLE` suffix or a zip of stored members (:data:`STORED_ZIPS`).
    """
    name = path.rpartition("/")[2]
    suffix = "." + name.rpartition(".")[2].lower() if "." in name else ""
    return suffix in COMPRESSIBLE or name in STORED_ZIPS


def fresh_sibling(path: Path, suffix: str, mtime_ns: int) -> Path | None:
    """Return ``path``'s sibling with ``suffix``, if it exists and is not older than ``path``.

    ``mtime_ns`` is ``path``'s ``st_mtime_ns``; None when there is no such sibling.
    """
    sibling = path.with_name(path.name + suffix)
    try:
        stat = sibling.stat()
    except OSError:
        return None
    return sibling if stat.st_mtime_ns >= mtime_ns else None
