"""What the CLI's commands share: the usage error, database paths and JSON parsing.

A :class:`UsageError` is a mistake in the command line (a bad argument, a missing file, an
unknown run): :func:`durably_web.cli.main` prints it as one line and exits with status 2.
Every such check runs before the database is opened, or only reads it (an unknown run id),
so a rejected command never creates or writes a database file.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from durably_web.errors import ValidationError
from durably_web.json_value import loads

__all__ = [
    "DEFAULT_DB",
    "UsageError",
    "check_database",
    "database_url",
    "parse_json",
    "snippet",
]

DEFAULT_DB = "durably.db"
"""The database file commands use when ``--db`` is not given (in the current directory)."""

_SQLITE_HEADER = b"SQLite format 3\x00"


class UsageError(Exception):
    """The command line is wrong; the message says how, in one line."""


def database_url(path: str, *, must_exist: bool) -> str:
    """Turn a ``--db`` path into the ``sqlite:///`` URL :func:`create_durably` takes.

    Args:
        path: the database file, absolute or relative to the current directory.
        must_exist: refuse a file that does not exist (commands that only read must not
            create an empty database as a side effect).

    Returns:
        ``"sqlite:///" + path``.

    Raises:
        UsageError: the file is missing (with ``must_exist``), is a directory or not an
            SQLite database, or its directory does not exist.

    """
    file = Path(path)
    if file.is_dir():
        raise UsageError(f"--db {path!r} is a directory, not a database file")
    if must_exist and not file.exists():
        raise UsageError(f"database not found: {path} (give the file with --db PATH)")
    if not file.parent.is_dir():
        raise UsageError(f"cannot create database {path!r}: directory {str(file.parent)!r} missing")
    if "?" in path or "#" in path:
        raise UsageError(f"database path {path!r} must not contain '?' or '#'")
    if file.is_file() and file.stat().st_size > 0:
        with file.open("rb") as opened:
            if opened.read(len(_SQLITE_HEADER)) != _SQLITE_HEADER:
                raise UsageError(f"{path!r} is not an SQLite database")
    return "sqlite:///" + path


def check_database(path: str) -> str:
    """Check, read-only, that ``path`` is an existing durably database; return its URL.

    Commands that only read use this first: opening the engine on an empty or foreign file
    would create the schema in it.

    Args:
        path: the ``--db`` file.

    Returns:
        The ``sqlite:///`` URL of the file.

    Raises:
        UsageError: the file is missing, not an SQLite database, or holds no durably runs
            table.

    """
    url = database_url(path, must_exist=True)
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'durably_runs'"
            ).fetchone()
    except sqlite3.Error as exc:
        raise UsageError(f"cannot read database {path!r}: {exc}") from None
    if found is None:
        raise UsageError(f"{path!r} is not a durably database (it has no durably_runs table)")
    return url


def parse_json(text: str, option: str) -> Any:
    """Parse a JSON command-line value (see :func:`durably_web.json_value.loads`).

    Args:
        text: the JSON text.
        option: the option it came from, for the error message (``"--input"``).

    Returns:
        The decoded value.

    Raises:
        UsageError: the text is not valid JSON, or holds a value durably_web refuses (NaN,
            Infinity, 1e400, a lone surrogate from non-UTF-8 bytes, nesting past 32 levels).

    """
    try:
        return loads(text, option)
    except ValidationError as exc:
        raise UsageError(str(exc)) from None


def snippet(value: Any, width: int) -> str:
    """Render a value on one line of at most ``width`` characters.

    Strings are shown as they are (first line only); anything else as compact JSON. A value
    that does not fit is cut and ends with ``…``; ``None`` is ``-``.

    Args:
        value: the value to show.
        width: the maximum length of the result (at least 1).

    Returns:
        The one-line rendering.

    """
    if value is None:
        return "-"
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    lines = text.strip().splitlines() or [""]
    text = lines[0] + (" …" if len(lines) > 1 else "")
    if len(text) > width:
        text = text[: max(width - 1, 0)] + "…"
    return text
