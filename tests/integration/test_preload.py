"""The client's modulepreload tags: the module graph read from the imports, and the pages.

The real build's pages (the demo's, the dashboard's, the starter's) are checked in
``test_sitebuild.py`` and ``test_site_apps.py``; that Chromium uses the tags (every client
module fetched once, none outside them) in ``playwright_tests/demo/test_preload.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from durably_web.sitebuild import BuildError, Layout
from durably_web.sitebuild.preload import (
    CLIENT_EARLY,
    CLIENT_ENTRY,
    MARKER,
    module_graph,
    preload_tags,
    render_page,
    render_pages,
)

GRAPH = {
    "_durably/client/index.mjs": (
        "// @ts-check\n"
        "/**\n"
        ' *     import { connect } from "./_durably/client/index.mjs";\n'  # an example: not one
        ' * @typedef {import("./types.js").T} T\n'  # a JSDoc type: not one
        " */\n"
        'import { A } from "./a.mjs";\n'
        'import "./transports/b.mjs";\n'
        'export * from "./c.mjs";\n'
        'export { A } from "./a.mjs";\n'
        "export function f() {\n"
        '  return import("./lazy.mjs");\n'  # a dynamic import: loaded later, on demand
        "}\n"
    ),
    "_durably/client/a.mjs": "import { C } from './c.mjs';\nexport const A = C;\n",
    "_durably/client/transports/b.mjs": 'import { A } from "../a.mjs";\nimport "../d.mjs";\n',
    "_durably/client/c.mjs": "export const C = 1;\n",
    "_durably/client/d.mjs": 'import {\n  E,\n  F,\n} from "./e.mjs";\nexport const D = E + F;\n',
    "_durably/client/e.mjs": "export const E = 1, F = 2;\n",
}


def test_the_graph_is_every_static_import_once_entry_first() -> None:
    graph = module_graph(CLIENT_ENTRY, GRAPH.__getitem__)
    assert graph == [
        "_durably/client/index.mjs",
        "_durably/client/a.mjs",
        "_durably/client/c.mjs",
        "_durably/client/transports/b.mjs",
        "_durably/client/d.mjs",
        "_durably/client/e.mjs",
    ]


def test_the_real_client_graph_is_what_index_mjs_reaches() -> None:
    client = Layout(Path(".")).client
    assert (client / CLIENT_EARLY.removeprefix("_durably/client/")).is_file()
    graph = module_graph(
        CLIENT_ENTRY, lambda rel: (client / rel.removeprefix("_durably/client/")).read_text()
    )
    assert graph[0] == CLIENT_ENTRY
    assert len(graph) == len(set(graph))
    names = {rel.removeprefix("_durably/client/") for rel in graph}
    # the page-side modules the engine's start does not need are left out
    assert {"client.mjs", "transports/worker.mjs", "transports/tabs.mjs"} <= names
    assert not names & {"pyscript.mjs", "python.mjs"}
    assert all((client / name).is_file() for name in names)


@pytest.mark.parametrize(
    ("page", "href"),
    [
        ("index.html", "./_durably/client/index.mjs"),
        ("docs/guide/page.html", "../../_durably/client/index.mjs"),
        ("_durably/dashboard/index.html", "../client/index.mjs"),
    ],
)
def test_each_tag_is_relative_to_its_page(page: str, href: str) -> None:
    early = href.replace("index.mjs", "early.js")
    assert preload_tags(page, [CLIENT_ENTRY], "  ") == (
        f'  <link rel="modulepreload" href="{href}">\n  <script async src="{early}"></script>'
    )


def test_the_marker_becomes_the_tags_with_its_indentation() -> None:
    html = f"<head>\n  <meta charset=utf-8>\n  {MARKER}\n</head>\n<p>é</p>\n".encode()
    rendered = render_page(html, "index.html", ["_durably/client/index.mjs", "_durably/x.mjs"])
    expected = (
        "<head>\n  <meta charset=utf-8>\n"
        '  <link rel="modulepreload" href="./_durably/client/index.mjs">\n'
        '  <link rel="modulepreload" href="./_durably/x.mjs">\n'
        '  <script async src="./_durably/client/early.js"></script>\n'
        "</head>\n<p>é</p>\n"
    )
    assert rendered == expected.encode()


def test_a_page_without_the_marker_is_left_alone() -> None:
    assert render_page(b"<head></head>", "index.html", [CLIENT_ENTRY]) is None


def test_the_build_renders_only_the_pages_with_the_marker(tmp_path: Path) -> None:
    plan = {}
    for rel, text in GRAPH.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        plan[rel] = path
    (tmp_path / "index.html").write_text(f"<head>{MARKER}</head>")
    (tmp_path / "plain.html").write_text("<head></head>")
    plan.update({"index.html": tmp_path / "index.html", "plain.html": tmp_path / "plain.html"})
    pages = render_pages(plan)
    assert list(pages) == ["index.html"]
    assert pages["index.html"].count(b'rel="modulepreload"') == len(GRAPH)

    del plan["_durably/client/d.mjs"]  # imported, but not in the site
    with pytest.raises(BuildError, match=r"_durably/client/d\.mjs is imported by the client"):
        render_pages(plan)
