"""Map a URL path to a file of a served site: the one path rule of the static server.

Both front-ends of :mod:`durably_web.sitebuild.static` (``durably-web serve`` and
``serve-api --static``) answer with :func:`resolve`:

- ``..`` segments, backslashes and NUL (after percent-decoding), and anything that resolves
  outside the directory it was looked up in (a symlink), are refused: 403.
- Dot files, ``node_modules`` at the top, and anything missing: 404. So is a path the file
  system cannot even look up (a name over ``NAME_MAX``): the server answers, never crashes.
- A path longer than :data:`MAX_PATH` bytes: 414.
- A directory named without its trailing slash redirects (301) to its *canonical* path, built
  from the path's segments: ``//vendor`` goes to ``/vendor/``, never to ``//vendor/``, which a
  browser would read as a link to the host ``vendor`` (an open redirect).
- *Mounts* put other files at fixed URLs: ``{"/jobs.py": file}`` serves ``file`` at exactly
  ``/jobs.py``; ``{"/check/": directory}`` serves ``directory``'s files below ``/check/``
  (by the same rules, confined to that directory). The longest matching mount wins; a path
  no mount matches is looked up in the site's own directory. Mounts are matched on the
  decoded, canonical segments, so ``/%63heck/x`` is ``/check/x``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, unquote

__all__ = ["MAX_PATH", "Resolved", "check_mounts", "resolve", "split_target"]

MAX_PATH = 4096
"""Longest URL path (percent-encoded, in bytes) looked up; longer ones get 414."""

Resolved = tuple[int, Path | str | None]
"""``(200, file)``, ``(301, location)`` or ``(status, None)`` for 403, 404 and 414."""


def split_target(target: str) -> tuple[str, str]:
    """Split an HTTP request target into ``(path, query)``, dropping any fragment.

    Unlike :func:`urllib.parse.urlsplit`, a path starting with ``//`` stays a path (it is not
    read as ``//host/path``).
    """
    path, _, query = target.partition("#")[0].partition("?")
    return path, query


def check_mounts(mounts: Mapping[str, Path]) -> dict[tuple[str, ...], Path]:
    """Validate mounts and key them by their URL segments (see the module docstring).

    Args:
        mounts: URL -> file (``"/jobs.py"``) or URL ending with ``/`` -> directory.

    Returns:
        Segments -> the resolved path, directory mounts' keys ending with ``""``.

    Raises:
        ValueError: a URL is not absolute, has dot or empty segments, or names a missing
            file or directory.

    """
    checked: dict[tuple[str, ...], Path] = {}
    for url, target in mounts.items():
        parts = tuple(url.strip("/").split("/")) if url.strip("/") else ()
        if not url.startswith("/") or any(p in ("", ".", "..") or p[0] == "." for p in parts):
            raise ValueError(f"mount {url!r}: need an absolute URL path without dot segments")
        resolved = target.resolve()
        if url.endswith("/"):
            if not resolved.is_dir():
                raise ValueError(f"mount {url!r}: {target} is not a directory")
            checked[(*parts, "")] = resolved
        else:
            if not resolved.is_file():
                raise ValueError(f"mount {url!r}: {target} is not a file")
            checked[parts] = resolved
    return checked


def resolve(
    root: Path, raw_path: str, mounts: Mapping[tuple[str, ...], Path] | None = None
) -> Resolved:
    """Map a URL path (still percent-encoded, without its query) to a file.

    Args:
        root: the served directory, already resolved (absolute, no symlinks).
        raw_path: the request's path.
        mounts: what :func:`check_mounts` returned (default: none).

    Returns:
        ``(200, file)``; ``(301, location)`` for a directory named without its slash (the
        location is a canonical absolute path; append the query yourself); ``(403, None)``,
        ``(404, None)`` or ``(414, None)`` as the module docstring says.

    """
    if len(raw_path.encode("utf-8", "surrogatepass")) > MAX_PATH:
        return 414, None
    path = unquote(raw_path, errors="surrogateescape")
    if not path.startswith("/") or "\\" in path or "\0" in path:
        return 403, None
    parts = [part for part in path.split("/")[1:] if part not in ("", ".")]
    if ".." in parts:
        return 403, None
    if any(part.startswith(".") for part in parts) or parts[:1] == ["node_modules"]:
        return 404, None
    base, depth = root, 0
    mounted = mounts or {}
    for key in sorted(mounted, key=len, reverse=True):
        if key[-1:] == ("",) and tuple(parts[: len(key) - 1]) == key[:-1]:
            base, depth = mounted[key], len(key) - 1
            break
        if key == tuple(parts) and not path.endswith("/"):
            return 200, mounted[key]
    try:
        target = base.joinpath(*parts[depth:]).resolve()
        if not target.is_relative_to(base):
            return 403, None
        if target.is_dir():
            if not path.endswith("/"):
                return 301, "/" + "".join(_quote(part) + "/" for part in parts)
            target = target / "index.html"
        if not target.is_file():
            return 404, None
    except (OSError, ValueError):  # a name too long, or one the file system cannot encode
        return 404, None
    return 200, target


def _quote(segment: str) -> str:
    return quote(segment, errors="surrogateescape")
