"""Map a URL path to a file below a served directory: the one rule of every static server here.

``durably-web serve`` (:mod:`durably_web.webbuild.server`) and ``serve-api --static``
(:mod:`durably_web.webbuild.asgi`) both answer with :func:`resolve`:

- ``..`` segments, backslashes and NUL (after percent-decoding), and anything that resolves
  outside the directory (a symlink), are refused: 403.
- Dot files, ``node_modules`` at the top, and anything missing: 404. So is a path the file
  system cannot even look up (a name over ``NAME_MAX``): the server answers, never crashes.
- A path longer than :data:`MAX_PATH` bytes: 414.
- A directory named without its trailing slash redirects (301) to its *canonical* path, built
  from the path's segments: ``//vendor`` goes to ``/vendor/``, never to ``//vendor/``, which a
  browser would read as a link to the host ``vendor`` (an open redirect).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, unquote

__all__ = ["MAX_PATH", "resolve", "split_target"]

MAX_PATH = 4096
"""Longest URL path (percent-encoded, in bytes) looked up; longer ones get 414."""


def split_target(target: str) -> tuple[str, str]:
    """Split an HTTP request target into ``(path, query)``, dropping any fragment.

    Unlike :func:`urllib.parse.urlsplit`, a path starting with ``//`` stays a path (it is not
    read as ``//host/path``).
    """
    path, _, query = target.partition("#")[0].partition("?")
    return path, query


def resolve(root: Path, raw_path: str) -> tuple[int, Path | str | None]:
    """Map a URL path (still percent-encoded, without its query) to a file under ``root``.

    Args:
        root: the served directory, already resolved (absolute, no symlinks).
        raw_path: the request's path.

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
    try:
        target = root.joinpath(*parts).resolve()
        if not target.is_relative_to(root):
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
