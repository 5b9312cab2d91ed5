"""``<link rel="modulepreload">`` for the JS client's module graph, written into a site's pages.

A page that starts the engine (``connect()`` or ``preconnect()`` from
``_durably/client/index.mjs``) only learns which modules that needs level by level: the page,
then ``index.mjs``, then the modules it imports, each level a round trip, and only then is the
engine worker created. A page that lists the whole graph in its ``<head>`` as
``<link rel="modulepreload">`` tags has the browser fetch (and parse) all of it at once, while
the rest of the page loads.

The graph has one home, the client's own ``import`` statements: :func:`module_graph` reads
them. A page asks for the tags with :data:`MARKER` (a line of its own); the build
(:mod:`.build`) replaces that line with one tag per module, each ``href`` relative to the page
(:func:`render_page`), in every HTML page of the site (the app's, the dashboard's), and one
``<script async>`` for :data:`CLIENT_EARLY` (the first Web Locks request, started while the
modules load). A page without the marker is copied unchanged.

    <head>
      ...
      <!-- durably-web: modulepreload -->
    </head>
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from durably_web.sitebuild.layout import PREFIX, BuildError

__all__ = [
    "CLIENT_EARLY",
    "CLIENT_ENTRY",
    "MARKER",
    "module_graph",
    "preload_tags",
    "render_page",
    "render_pages",
]

MARKER = "<!-- durably-web: modulepreload -->"
"""The line of a page's ``<head>`` that the build replaces with the client's preload tags."""

CLIENT_ENTRY = f"{PREFIX}/client/index.mjs"
"""The module a page imports to start the engine: the root of the preloaded graph."""

CLIENT_EARLY = f"{PREFIX}/client/early.js"
"""A classic script the tags load ``async`` after the graph's: what the page starts before
the modules have loaded (the first Web Locks request, slow in a new profile; see the file)."""

# A static import at the top level of a module (unindented, as the client writes them):
# `import x from "./a.mjs";`, `import "./a.mjs";`, `export { y } from "./a.mjs";`, the names
# maybe over several lines. Comments, JSDoc types (`import("./a.js")`) and dynamic imports
# are indented or inside a line, so never match.
_STATIC_IMPORT = re.compile(
    r'^(?:import|export)\b(?:[^"\';]*?\bfrom)?\s*["\'](\.{1,2}/[^"\']+)["\']', re.MULTILINE
)
_MARKER_INDENTED = re.compile(rf"([ \t]*){re.escape(MARKER)}")


def module_graph(entry: str, source: Callable[[str], str]) -> list[str]:
    """Return the site paths of ``entry`` and of every module it imports statically.

    Args:
        entry: the root module's path in the site (``_durably/client/index.mjs``).
        source: the text of the module at a site path.

    Returns:
        ``entry`` first, then the others in the order they are first imported (depth-first),
        each once.

    Raises:
        Whatever ``source`` raises for a path it has no module at.

    """
    found: list[str] = []
    todo = [entry]
    while todo:
        path = todo.pop()
        if path in found:
            continue
        found.append(path)
        imports = _STATIC_IMPORT.findall(source(path))
        base = posixpath.dirname(path)
        todo.extend(posixpath.normpath(posixpath.join(base, rel)) for rel in reversed(imports))
    return found


def preload_tags(page: str, modules: Iterable[str], indent: str = "") -> str:
    """Return one ``<link rel="modulepreload">`` line per module, then :data:`CLIENT_EARLY`'s.

    Each ``href`` (and ``src``) is relative to ``page``.

    Args:
        page: the page's path in the site (``index.html``, ``_durably/dashboard/index.html``).
        modules: site paths of the modules (:func:`module_graph`).
        indent: put before each line.

    """
    lines = [
        f'{indent}<link rel="modulepreload" href="{_href(page, module)}">' for module in modules
    ]
    lines.append(f'{indent}<script async src="{_href(page, CLIENT_EARLY)}"></script>')
    return "\n".join(lines)


def _href(page: str, path: str) -> str:
    """Return the URL of the site path ``path`` relative to the page at site path ``page``."""
    href = posixpath.relpath(path, posixpath.dirname(page) or ".")
    return href if href.startswith("../") else f"./{href}"


def render_page(html: bytes, page: str, modules: Iterable[str]) -> bytes | None:
    """Return the page with each :data:`MARKER` replaced by the preload tags, or None.

    The tags are one a line, each with the indentation the marker had.

    Args:
        html: the page's bytes (UTF-8).
        page: its path in the site (the tags' ``href`` are relative to it).
        modules: site paths of the modules to preload (:func:`module_graph`).

    Returns:
        The new bytes, or None when the page has no marker line (it is served as it is).

    """
    text = html.decode("utf-8", errors="surrogateescape")
    if MARKER not in text:
        return None
    listed = list(modules)
    rendered = _MARKER_INDENTED.sub(lambda match: preload_tags(page, listed, match[1]), text)
    return rendered.encode("utf-8", errors="surrogateescape")


def render_pages(plan: Mapping[str, Path]) -> dict[str, bytes]:
    """Return the site's HTML pages that ask for the preload tags, with them: path -> bytes.

    Args:
        plan: site path -> source file of the files a build copies (the client's modules
            among them: the graph is read from there).

    Raises:
        BuildError: a module of the client's graph is not in the site.

    """
    pages = {}
    modules: list[str] | None = None
    for rel, path in sorted(plan.items()):
        if not rel.endswith(".html"):
            continue
        html = path.read_bytes()
        if MARKER.encode() not in html:
            continue
        if modules is None:
            modules = module_graph(CLIENT_ENTRY, lambda module: _module_source(plan, module))
        pages[rel] = render_page(html, rel, modules) or html
    return pages


def _module_source(plan: Mapping[str, Path], module: str) -> str:
    if module not in plan:
        raise BuildError(f"{module} is imported by the client's module graph but not in the site")
    return plan[module].read_text(encoding="utf-8")
