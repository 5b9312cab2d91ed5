"""The package's layers, as the folder layout draws them (docs/architecture.md).

Foundations (errors, records, events, options...) < storage and its adapters < the engine
core < the protocol < the edges (server, browser, clients, site builder) < the CLI and the
package root. A module imports only its own layer and the layers below (imports for type
checking aside), an edge no other edge; the page client imports only what a PyScript page is
served (MicroPython-safe modules).
"""

from __future__ import annotations

import ast
from pathlib import Path

import durably_web

PACKAGE = Path(durably_web.__file__).parent

RANK = {
    **dict.fromkeys(("errors", "json_value", "clock", "ids", "models", "validation", "options"), 0),
    **dict.fromkeys(("events", "job", "retry", "_dataclass_code"), 0),
    **dict.fromkeys(("storage", "adapters", "testing"), 1),
    "core": 2,
    "protocol": 3,
    **dict.fromkeys(("server", "browser", "client", "http_client", "sitebuild", "webbuild"), 4),
    **dict.fromkeys(("", "__main__", "cli", "web"), 5),
}
"""Layer of each top-level module or package. The top: the package root (re-exports only),
the CLI, and the demo app shipped in ``web/`` (an app: it imports the public names)."""

LATERAL = {("client", "http_client"), ("webbuild", "sitebuild")}
"""Edges that may import another edge: the page client's CPython fallback (``connect(url=)``
on CPython is the HTTP client), and the deprecated ``webbuild`` alias of ``sitebuild``."""

PAGE_IMPORTS = {"errors", "json_value", "protocol.wire", "client", "http_client"}
"""What the page client may import: the files served to pages, and (on CPython only, lazily)
the HTTP client that ``connect(url=...)`` falls back to."""


def runtime_imports(path: Path) -> set[str]:
    """The durably_web modules ``path`` imports at run time (not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text("utf-8"))
    skipped = {
        id(node)
        for branch in ast.walk(tree)
        if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.unparse(branch.test)
        for node in ast.walk(branch)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(
            name.removeprefix("durably_web").lstrip(".")
            for name in names
            if name == "durably_web" or name.startswith("durably_web.")
        )
    return found


def top(module: str) -> str:
    return module.split(".")[0]


def test_no_module_imports_a_higher_layer() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        here = "" if rel.parts == ("__init__.py",) else rel.parts[0].removesuffix(".py")
        assert here in RANK, f"{rel}: no layer for {here!r} in RANK"
        for imported in runtime_imports(path):
            there = top(imported)
            if RANK[there] > RANK[here]:
                wrong.append(f"{rel} imports {imported or 'durably_web'}")
            lateral = RANK[there] == RANK[here] == 4 and there != here
            if lateral and (here, there) not in LATERAL:
                wrong.append(f"{rel} imports the edge {imported}")
    assert not wrong, "\n".join(wrong)


def test_the_page_client_imports_only_what_pages_are_served() -> None:
    wrong = []
    for path in sorted((PACKAGE / "client").rglob("*.py")):
        for imported in runtime_imports(path):
            if imported not in PAGE_IMPORTS and top(imported) not in {"client", "http_client"}:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {imported or 'durably_web'}")
    assert not wrong, "\n".join(wrong)
