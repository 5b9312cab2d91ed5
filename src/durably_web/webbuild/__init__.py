"""Deprecated alias of :mod:`durably_web.sitebuild` (the site builder's old name), for one release.

The previous release's docs named ``durably_web.webbuild.asgi.site_app`` and
``durably_web.webbuild.paths``; both still import from here. New code imports
:mod:`durably_web.sitebuild`. ``make_server`` now takes the site directory to serve
(``Layout(root).site``), not the project root.
"""

from __future__ import annotations

from durably_web.sitebuild import (
    BuildError,
    BuildResult,
    ServeError,
    WebError,
    build,
    find_root,
    is_stale,
    make_server,
)

__all__ = [
    "BuildError",
    "BuildResult",
    "ServeError",
    "WebError",
    "build",
    "find_root",
    "is_stale",
    "make_server",
]
