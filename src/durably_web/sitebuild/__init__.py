"""The site builder: ``durably-web new``, ``build`` and ``serve`` (and ``serve-api --static``).

:func:`build` writes a static site of an app (``build(root, app=DIR)``; by default the demo)
into ``.build/site`` of the work directory (or ``out``): the app's files at ``/``, the service
worker ``/durably-sw.js``, and below ``/_durably/`` the engine worker and offline support
(``runtime/``), the JS client (``client/``) and everything they load (``vendor/``: Pyodide,
sqlite-wasm, PyScript, MicroPython, hash-pinned wheels and a wheel of durably_web, all
precompiled to ``.pyc``), so nothing comes from a CDN. Its inputs are package data of the
installed ``durably_web`` (``durably_web/web/``) and the pinned npm tarballs, fetched with
Python; a released install needs no Node. :func:`make_server` serves a site. Modules:

- :mod:`.layout`: where inputs, caches and outputs live, the URL layout of a site, the app's
  files; errors; the input fingerprint.
- :mod:`.npm`, :mod:`.wheels`, :mod:`.wheel_self`, :mod:`.precompiled` (and
  :mod:`.precompile`, Node, when the package ships no archive), :mod:`.lock`,
  :mod:`.mirror`: the build steps, orchestrated by :mod:`.build`.
- :mod:`.starter`: ``durably-web new``.
- :mod:`.paths` and :mod:`.static`: the static server's rules, once; :mod:`.server` (standard
  library) and :mod:`.asgi` (beside a Durably API) are its two front-ends.
- :mod:`.command`: the CLI commands.

The engine never imports this package; it only uses the standard library (so the build hook,
``hatch_build.py``, can load it without the engine's dependencies).
"""

from __future__ import annotations

from durably_web.sitebuild.build import BuildResult, build, is_stale
from durably_web.sitebuild.layout import (
    PREFIX,
    BuildError,
    Layout,
    ServeError,
    WebError,
    find_root,
)
from durably_web.sitebuild.server import StaticServer, make_server
from durably_web.sitebuild.static import StaticSite

__all__ = [
    "PREFIX",
    "BuildError",
    "BuildResult",
    "Layout",
    "ServeError",
    "StaticServer",
    "StaticSite",
    "WebError",
    "build",
    "find_root",
    "is_stale",
    "make_server",
]
