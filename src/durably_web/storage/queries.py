"""Load the SQL the stores run from the ``.sql`` files beside this module.

SQLite's files are ``sql/queries.sql`` and ``sql/migrations/``; each other dialect has the same
layout in its own folder (``sql/postgres/``), named by ``root``.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

__all__ = ["migrations", "queries", "schema"]

_HEADER = re.compile(r"^-- name: ([a-z_]+)\s*$", re.MULTILINE)


@cache
def queries(root: str = "sql") -> dict[str, str]:
    """Return every query of ``<root>/queries.sql`` by name, without its trailing semicolon."""
    text = resources.files(__package__).joinpath(f"{root}/queries.sql").read_text("utf-8")
    parts = _HEADER.split(text)
    found: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        found[name] = body.strip().rstrip(";").strip()
    return found


@cache
def migrations(root: str = "sql") -> tuple[tuple[int, str], ...]:
    """Return ``(version, script)`` for each ``<root>/migrations/NNNN_*.sql``, in order."""
    folder = resources.files(__package__).joinpath(f"{root}/migrations")
    found = []
    for entry in folder.iterdir():
        match = re.fullmatch(r"([0-9]{4})_[a-z0-9_]+\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text("utf-8")))
    return tuple(sorted(found))


@cache
def schema() -> str:
    """Return ``sql/schema.sql``: the schema every migration applied in order must produce."""
    return resources.files(__package__).joinpath("sql/schema.sql").read_text("utf-8")
