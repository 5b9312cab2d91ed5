"""The static server's rules, once: what a request for a file of a site gets.

:class:`StaticSite` turns a request (method, target, headers) into a :class:`Response`; the
two front-ends only move bytes: :mod:`.server` (``durably-web serve``, the standard library's
threaded HTTP server) and :mod:`.asgi` (``serve-api --static``, beside a Durably API).

Contract:

- ``GET`` and ``HEAD`` only (anything else: 405 with ``Allow``). Paths map to files by
  :func:`durably_web.sitebuild.paths.resolve` (``/`` and ``/dir/`` serve ``index.html``,
  ``/dir`` redirects to ``/dir/`` keeping the query, no listings, 403/404/414, mounts).
  Errors and redirects have a one-line ``text/plain`` body such as ``404 Not Found``.
- MIME types: ``.wasm`` ``application/wasm`` (streaming compilation needs it), ``.mjs`` and
  ``.js`` JavaScript (module imports need it), ``.py`` ``text/x-python``, and so on.
- ``Cache-Control: no-cache`` with an ETag and ``Last-Modified``: the browser keeps its copy
  and revalidates it on every load (``304 Not Modified``), so a rebuilt file is never stale.
  Except a **versioned URL**: a file asked for with ``?v=<version>`` where the version is
  that of the file's current content (:func:`durably_web.sitebuild.versions.content_version`,
  computed here, cached per file version) gets ``Cache-Control: public, max-age=31536000,
  immutable`` (same ETag): the browser uses its copy without asking again. The build writes
  such URLs for the engine worker's boot files (:mod:`durably_web.sitebuild.versions`); a
  rebuilt file has another version, so a request with an old, wrong or no version keeps
  ``no-cache``, and so do errors, redirects and 304s to an unversioned request.
- Compressed answers for compressible files (:func:`durably_web.sitebuild.precompress.wanted`:
  text, ``.wasm``, ``.tar``, the core stdlib zip; not ``.zip`` and ``.whl``, whose members
  are deflated already) when the request accepts it, with ``Vary: Accept-Encoding`` and an
  ETag of their own: the build's precompressed sibling (``foo.wasm.br``, then ``.gz``) when
  it is there and not older than the file, else gzip made here, cached per file version.
- ``X-Content-Type-Options: nosniff`` on every answer; with ``isolated``, also
  ``Cross-Origin-Opener-Policy: same-origin``, ``Cross-Origin-Embedder-Policy: require-corp``
  and ``Cross-Origin-Resource-Policy: same-origin`` (needed only for SharedArrayBuffer; the
  opfs-sahpool VFS does not need them).
"""

from __future__ import annotations

import email.utils
import gzip
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from durably_web.sitebuild.paths import Resolved, check_mounts, resolve, split_target
from durably_web.sitebuild.precompress import ENCODINGS, fresh_sibling, wanted
from durably_web.sitebuild.versions import IMMUTABLE, content_version, requested_version

__all__ = ["MIME_TYPES", "Response", "StaticSite", "accepts", "accepts_gzip"]

MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".py": "text/x-python; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
    ".map": "application/json",
    ".whl": "application/octet-stream",
    ".zip": "application/zip",
    ".tar": "application/x-tar",
    ".ico": "image/x-icon",
    ".png": "image/png",
}
"""Content types by suffix; anything else is ``application/octet-stream`` (:data:`_BINARY`)."""

_BINARY = "application/octet-stream"

_ISOLATION = (
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Embedder-Policy", "require-corp"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)


@dataclass
class Response:
    """One answer: status, headers, and a body in memory or an open file to stream.

    ``Content-Length`` is among the headers; a ``HEAD`` answer (and a 304) carries no body,
    which the front-end does not send. Close it (or use ``with``) to close the file.
    """

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    file: BinaryIO | None = field(default=None, repr=False)
    send_body: bool = True

    def __enter__(self) -> Response:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the file being streamed, if any."""
        if self.file is not None:
            self.file.close()


class StaticSite:
    """The files of one directory (plus mounts), answered by the rules of the module docstring.

    Args:
        root: the served directory (it may not exist yet: a build can create it later).
        mounts: URL -> file or URL ending in ``/`` -> directory, served instead of the
            directory's own files there (see :mod:`durably_web.sitebuild.paths`).
        isolated: send the cross-origin isolation headers on every answer.

    Raises:
        ValueError: a mount is not an absolute URL path or names a missing file or directory.

    """

    def __init__(
        self, root: Path, mounts: Mapping[str, Path] | None = None, *, isolated: bool = False
    ) -> None:
        self.root = root.resolve()
        self.mounts = check_mounts(mounts or {})
        self.isolated = isolated
        self._gzipped: dict[Path, tuple[tuple[int, int], bytes]] = {}
        self._gzip_lock = threading.Lock()
        self._versions: dict[Path, tuple[tuple[int, int], str]] = {}

    def resolve(self, raw_path: str) -> Resolved:
        """Map a URL path (percent-encoded, no query) to a file, as ``paths.resolve`` does."""
        return resolve(self.root, raw_path, self.mounts)

    def respond(self, method: str, target: str, headers: Mapping[str, str]) -> Response:
        """Answer one request.

        Args:
            method: the request method.
            target: the request target as sent (path, query), still percent-encoded.
            headers: the request headers, names in lower case.

        Returns:
            The response; an open file in it is the caller's to close.

        """
        method = method.upper()
        if method not in ("GET", "HEAD"):
            return self._plain(HTTPStatus.METHOD_NOT_ALLOWED, method, [("Allow", "GET, HEAD")])
        path, query = split_target(target)
        status, found = self.resolve(path)
        if status == HTTPStatus.MOVED_PERMANENTLY:
            location = f"{found}?{query}" if query else str(found)
            return self._plain(HTTPStatus.MOVED_PERMANENTLY, method, [("Location", location)])
        if not isinstance(found, Path):
            return self._plain(HTTPStatus(status), method)
        try:
            file = found.open("rb")
        except OSError:
            return self._plain(HTTPStatus.NOT_FOUND, method)
        try:
            return self._file(found, file, method, headers, requested_version(query))
        except BaseException:
            file.close()
            raise

    def _file(
        self,
        path: Path,
        file: BinaryIO,
        method: str,
        request: Mapping[str, str],
        wanted_version: str | None,
    ) -> Response:
        stat = os.fstat(file.fileno())
        immutable = wanted_version is not None and wanted_version == self._content_version(
            path, (stat.st_size, stat.st_mtime_ns), file
        )
        cache = IMMUTABLE if immutable else "no-cache"
        compressible = wanted(path.name)
        coding, sibling = None, None
        if compressible:
            coding, sibling = _encoding(path, stat.st_mtime_ns, request.get("accept-encoding"))
        version = f"{stat.st_size:x}-{stat.st_mtime_ns:x}"
        if sibling is not None:  # its bytes are sent instead of the file's
            file.close()
            file = sibling
        if coding is not None:  # the encoded bytes' own tag: the sibling's, or made here
            made = f"{os.fstat(sibling.fileno()).st_mtime_ns:x}" if sibling else "here"
            version += f"-{coding}-{made}"
        try:
            etag = f'"{version}"'
            headers = [
                ("ETag", etag),
                ("Last-Modified", email.utils.formatdate(stat.st_mtime, usegmt=True)),
            ]
            if compressible:
                headers.append(("Vary", "Accept-Encoding"))
            if _not_modified(request, etag, stat.st_mtime):
                file.close()
                return Response(304, self._common(headers, cache), send_body=False)
            headers.insert(0, ("Content-Type", MIME_TYPES.get(path.suffix.lower(), _BINARY)))
            send_body = method != "HEAD"
            if sibling is None and coding is not None:
                body = self._gzip(path, (stat.st_size, stat.st_mtime_ns), file)
                file.close()
                headers += [("Content-Encoding", "gzip"), ("Content-Length", str(len(body)))]
                return Response(200, self._common(headers, cache), body, send_body=send_body)
            if coding is not None:
                headers.append(("Content-Encoding", coding))
            size = os.fstat(file.fileno()).st_size
            headers.append(("Content-Length", str(size)))
            return Response(200, self._common(headers, cache), file=file, send_body=send_body)
        except BaseException:
            file.close()
            raise

    def _content_version(self, path: Path, version: tuple[int, int], file: BinaryIO) -> str:
        """Return a file's content version, cached while it keeps its ``(size, mtime_ns)``.

        Reads the file from its start and leaves it there.
        """
        with self._gzip_lock:
            cached = self._versions.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        made = content_version(file.read())
        file.seek(0)
        with self._gzip_lock:
            self._versions[path] = (version, made)
        return made

    def _gzip(self, path: Path, version: tuple[int, int], file: BinaryIO) -> bytes:
        """Return a file gzipped, cached while it keeps its ``(size, mtime_ns)`` version."""
        with self._gzip_lock:
            cached = self._gzipped.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        compressed = gzip.compress(file.read(), compresslevel=6, mtime=0)
        with self._gzip_lock:
            self._gzipped[path] = (version, compressed)
        return compressed

    def _plain(
        self, status: HTTPStatus, method: str, extra: list[tuple[str, str]] | None = None
    ) -> Response:
        text = f"{status.value} {status.phrase}\n".encode()
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(text))),
        ]
        return Response(
            status, self._common(headers + (extra or [])), text, send_body=method != "HEAD"
        )

    def _common(
        self, headers: list[tuple[str, str]], cache: str = "no-cache"
    ) -> list[tuple[str, str]]:
        headers += [("Cache-Control", cache), ("X-Content-Type-Options", "nosniff")]
        if self.isolated:
            headers += _ISOLATION
        return headers


def _encoding(path: Path, mtime_ns: int, accept: str | None) -> tuple[str | None, BinaryIO | None]:
    """Choose the content coding of a compressible file.

    A fresh precompressed sibling the client accepts (brotli first), opened; else gzip made
    here (no sibling); else none.
    """
    for coding, suffix in ENCODINGS:
        if accepts(accept, coding):
            sibling = fresh_sibling(path, suffix, mtime_ns)
            if sibling is not None:
                try:
                    return coding, sibling.open("rb")
                except OSError:  # removed meanwhile (a build is rewriting the site)
                    continue
    return ("gzip", None) if accepts(accept, "gzip") else (None, None)


def _not_modified(request: Mapping[str, str], etag: str, mtime: float) -> bool:
    if_none_match = request.get("if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag in tags
    since = request.get("if-modified-since")
    if since is None:
        return False
    try:
        date = email.utils.parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    return date.tzinfo is not None and int(mtime) <= date.timestamp()


def accepts(header: str | None, coding: str) -> bool:
    """Tell whether an ``Accept-Encoding`` value allows ``coding`` (``br;q=0`` refuses it).

    ``x-gzip`` counts as ``gzip``; ``*`` stands for every coding not named.
    """
    qualities: dict[str, float] = {}
    for item in (header or "").split(","):
        name, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        qualities[name.lower()] = quality
    names = (coding, "x-gzip", "*") if coding == "gzip" else (coding, "*")
    for name in names:
        if name in qualities:
            return qualities[name] > 0
    return False


def accepts_gzip(header: str | None) -> bool:
    """Tell whether an ``Accept-Encoding`` value allows gzip (``gzip;q=0`` refuses it)."""
    return accepts(header, "gzip")
