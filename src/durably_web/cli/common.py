"""What the CLI's commands share: the usage error, databases and JSON parsing.

A :class:`UsageError` is a mistake in the command line (a bad argument, a missing file, an
unknown run): :func:`durably_web.cli.main` prints it as one line and exits with status 2.
Every such check runs before the database is opened, or only reads it (an unknown run id),
so a rejected command never creates or writes a database file.

Wherever a command names a database (``--db``, ``worker DATABASE``) it takes a SQLite file
path, a ``sqlite:///`` URL or a ``postgresql://`` URL (:func:`database_url`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from durably_web.errors import ValidationError
from durably_web.json_value import loads
from durably_web.storage.url import POSTGRES_SCHEMES, is_postgres_url, open_store

__all__ = [
    "DB_HELP",
    "DEFAULT_DB",
    "UsageError",
    "check_database",
    "database_url",
    "parse_json",
    "redacted",
    "snippet",
]

DEFAULT_DB = "durably.db"
"""The database file commands use when ``--db`` is not given (in the current directory)."""

DB_HELP = (
    f"a SQLite file (default: {DEFAULT_DB} in the current directory), a sqlite:/// URL, or a "
    "postgresql://user:password@host:5432/db URL"
)
"""The help of every option that names a database."""

_SQLITE_HEADER = b"SQLite format 3\x00"


class UsageError(Exception):
    """The command line is wrong; the message says how, in one line."""


def redacted(database: str) -> str:
    """Return a database URL or path as it may be printed: without its password."""
    parts = urlsplit(database)
    if parts.scheme not in POSTGRES_SCHEMES or parts.password is None:
        return database
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def database_url(database: str, *, must_exist: bool) -> str:
    """Turn a command line's database into the URL :func:`create_durably` takes.

    Args:
        database: a ``postgresql://`` URL (returned as it is: PostgreSQL is checked when
            the engine connects), a ``sqlite:///`` URL, or a SQLite file path, absolute or
            relative to the current directory.
        must_exist: refuse a SQLite file that does not exist (commands that only read must
            not create an empty database as a side effect).

    Returns:
        The URL: ``"sqlite:///" + path`` (with the options of a ``sqlite:///`` URL) for
        SQLite.

    Raises:
        UsageError: the SQLite file is missing (with ``must_exist``), is a directory or not an
            SQLite database, or its directory does not exist.

    """
    if is_postgres_url(database):
        return database
    path, options = database, ""
    if database.startswith("sqlite:"):
        parts = urlsplit(database)
        if parts.netloc or not parts.path.startswith("/") or len(parts.path) < 2:
            raise UsageError(f"database URL must look like 'sqlite:///path.db', got {database!r}")
        path, options = parts.path[1:], parts.query
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
    return "sqlite:///" + path + (f"?{options}" if options else "")


def check_database(database: str) -> str:
    """Check, read-only, that ``database`` is an existing durably database; return its URL.

    Commands that only read use this first: opening the engine on an empty or foreign
    database would create the schema in it.

    Args:
        database: the ``--db`` file or URL (see :func:`database_url`).

    Returns:
        Its URL.

    Raises:
        UsageError: the file is missing, not an SQLite database, or holds no durably runs
            table; the PostgreSQL database holds no durably schema.
        StorageError: the PostgreSQL server cannot be reached or refuses the login.

    """
    url = database_url(database, must_exist=True)
    if is_postgres_url(url):
        if not asyncio.run(_schema_version(url)):
            raise UsageError(
                f"{redacted(database)!r} is not a durably database (it has no durably schema)"
            )
        return url
    path = urlsplit(url).path[1:]
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


async def _schema_version(url: str) -> int:
    store, _ = open_store(url)
    try:
        return await store.schema_version()
    finally:
        await store.close()


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
