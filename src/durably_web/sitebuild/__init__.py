"""The browser side's offline asset build and static server (``durably-web build`` / ``serve``).

:func:`build` vendors everything the demo page loads (Pyodide, sqlite-wasm, PyScript,
MicroPython, hash-pinned wheels and a wheel of durably_web, all precompiled to ``.pyc``) into
``web/vendor``, so nothing comes from a CDN; :func:`make_server` serves ``web/``. Modules:

- :mod:`.layout`: where inputs, caches and outputs live; errors; the input fingerprint.
- :mod:`.npm`, :mod:`.wheels`, :mod:`.wheel_self`, :mod:`.precompile`, :mod:`.lock`,
  :mod:`.mirror`: the build steps, orchestrated by :mod:`.build`.
- :mod:`.server`: the static server; :mod:`.command`: the two CLI commands.
- :mod:`.asgi`: the same files as an ASGI app beside a Durably API (``serve-api --static``).

The engine never imports this package; it only uses the standard library.
"""

from __future__ import annotations

from durably_web.webbuild.build import BuildResult, build, is_stale
from durably_web.webbuild.layout import BuildError, ServeError, WebError, find_root
from durably_web.webbuild.server import DemoServer, make_server

__all__ = [
    "BuildError",
    "BuildResult",
    "DemoServer",
    "ServeError",
    "WebError",
    "build",
    "find_root",
    "is_stale",
    "make_server",
]
