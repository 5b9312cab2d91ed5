"""Open a Store from what ``create_durably`` was given: a database URL, a Connection, a Store.

This is where a URL becomes a driver: the engine core never imports an adapter or names a
concrete store. ``sqlite:///path.db`` opens the CPython ``sqlite3`` adapter
(:mod:`durably_web.adapters.sqlite3`) under a :class:`~durably_web.storage.sqlite.SQLiteStore`;
``postgresql://...`` the PostgreSQL store (:mod:`durably_web.storage.postgres`, the
``postgres`` extra, imported only then); a Connection (the browser worker's OPFS connection)
is wrapped in a SQLiteStore; a Store is used as it is.
"""

from __future__ import annotations

from typing import Any

from durably_web.errors import StorageError, ValidationError
from durably_web.storage.base import Store
from durably_web.storage.connection import Connection
from durably_web.storage.sqlite import SQLiteStore

__all__ = ["POSTGRES_SCHEMES", "is_postgres_url", "open_connection", "open_store"]

POSTGRES_SCHEMES = ("postgresql", "postgres")
"""URL schemes of the PostgreSQL store (libpq's)."""


def is_postgres_url(database: object) -> bool:
    """Return whether ``database`` is a ``postgresql://`` (or ``postgres://``) URL."""
    if not isinstance(database, str):
        return False
    # urllib.parse is imported where a URL is parsed: the browser engine, given a
    # Connection, never needs it (~25 ms of its start in Pyodide, bench/BOOT-NOTES.md).
    from urllib.parse import urlsplit

    return urlsplit(database).scheme in POSTGRES_SCHEMES


_URL_OPTIONS = {"synchronous", "journal_mode", "busy_timeout"}
_CONNECTION_MEMBERS = (
    "lock_wait",
    "execute",
    "query",
    "execute_script",
    "run_batch",
    "data_version",
    "transaction",
)


def open_store(database: Any, *, exclusive: bool = False) -> tuple[Store, bool]:
    """Return the Store for ``database`` and whether the caller owns it (must close it).

    Args:
        database: ``"sqlite:///local.db"``, ``"sqlite:///:memory:"``,
            ``"postgresql://user:password@host:5432/db"``, a Store, or a Connection (e.g.
            the browser worker's OPFS connection).
        exclusive: for a Connection: no other connection can write this database (the
            browser worker's exclusive OPFS pool; see :class:`SQLiteStore`).

    Raises:
        ValidationError: the URL is not a database URL known here, or ``database`` is
            neither a URL, a Store nor a Connection.
        StorageError: a PostgreSQL URL, and the ``postgres`` extra is not installed.

    """
    if isinstance(database, str):
        if is_postgres_url(database):
            return _open_postgres(database), True
        return SQLiteStore(open_connection(database)), True
    if isinstance(database, Store):
        return database, False
    if all(hasattr(database, name) for name in _CONNECTION_MEMBERS):
        return SQLiteStore(database, exclusive=exclusive), False
    raise ValidationError(
        "database must be a sqlite:/// or postgresql:// URL, a Store or a Connection, "
        f"got {database!r}"
    )


def _open_postgres(url: str) -> Store:
    try:
        from durably_web.storage.postgres import open_postgres_store
    except ImportError as exc:
        raise StorageError(
            f"PostgreSQL support is not installed ({exc}): pip install 'durably-web[postgres]'"
        ) from None
    return open_postgres_store(url)


def open_connection(url: str) -> Connection:
    """Open a CPython ``sqlite3`` connection from ``sqlite:///path`` or ``sqlite:///:memory:``.

    Query parameters set ``synchronous`` (OFF/NORMAL/FULL/EXTRA), ``journal_mode`` and
    ``busy_timeout`` (seconds): ``sqlite:///app.db?synchronous=FULL``. Four slashes give an
    absolute path: ``sqlite:////var/lib/app.db``.

    Raises:
        ValidationError: the URL is not a ``sqlite://`` URL or has unknown options.

    """
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc or not parts.path.startswith("/"):
        raise ValidationError(
            "database URL must look like 'sqlite:///path.db', 'sqlite:///:memory:' or "
            f"'postgresql://user:password@host:5432/db', got {url!r}"
        )
    path = parts.path[1:]
    if not path:
        raise ValidationError(f"database URL {url!r} names no file")
    options: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(options) - _URL_OPTIONS
    if unknown:
        raise ValidationError(
            f"unknown database URL option(s) {sorted(unknown)}; known: {sorted(_URL_OPTIONS)}"
        )
    if "busy_timeout" in options:
        try:
            options["busy_timeout"] = float(options["busy_timeout"])
        except ValueError:
            raise ValidationError(
                f"busy_timeout must be a number of seconds, got {options['busy_timeout']!r}"
            ) from None
    from durably_web.adapters.sqlite3 import SQLite3Connection

    return SQLite3Connection(path, **options)
