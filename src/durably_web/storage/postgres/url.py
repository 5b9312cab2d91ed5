"""Turn a ``postgresql://`` URL into a PostgreSQL store (nothing connects until first use).

The URL is libpq's: ``postgresql://user:password@host:5432/dbname?sslmode=require``; every
libpq parameter works in its query string (``application_name``, ``connect_timeout``,
``options=-csearch_path%3Dmyschema``, ...), and the ``PG*`` environment variables fill in what
it leaves out. Three parameters are this store's own and are taken out before libpq sees them:

- ``pool_min_size`` (default 2): connections the pool keeps open;
- ``pool_max_size`` (default 10): connections it may open. A worker uses one per run in flight
  while it writes, plus renewals and queries; the listener uses one more of its own;
- ``retry_for`` (default 30, seconds): how long reads and lease-holder writes keep retrying
  through a lost connection (a restarted server) before giving up.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from durably_web.errors import ValidationError
from durably_web.storage.postgres.database import Database
from durably_web.storage.postgres.store import PostgresStore
from durably_web.storage.url import POSTGRES_SCHEMES

__all__ = ["open_postgres_store"]

_DEFAULTS = {"pool_min_size": 2, "pool_max_size": 10, "retry_for": 30}


def open_postgres_store(url: str) -> PostgresStore:
    """Build a :class:`PostgresStore` from a ``postgresql://`` URL.

    Raises:
        ValidationError: the URL is not a PostgreSQL URL, or one of its parameters is unknown
            or out of range (the message never shows the password).

    """
    parts = urlsplit(url)
    if parts.scheme not in POSTGRES_SCHEMES:
        raise ValidationError(
            "database URL must look like 'postgresql://user:password@host:5432/dbname', "
            f"got scheme {parts.scheme!r}"
        )
    libpq: list[tuple[str, str]] = []
    own: dict[str, float] = dict(_DEFAULTS)
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _DEFAULTS:
            own[name] = _number(name, value)
        else:
            libpq.append((name, value))
    if not 1 <= own["pool_min_size"] <= own["pool_max_size"] <= 1000 or any(
        own[name] != int(own[name]) for name in ("pool_min_size", "pool_max_size")
    ):
        raise ValidationError(
            "pool_min_size and pool_max_size must be whole numbers with "
            f"1 <= pool_min_size <= pool_max_size <= 1000, got {own['pool_min_size']:g} and "
            f"{own['pool_max_size']:g}"
        )
    if own["retry_for"] <= 0:
        raise ValidationError(
            f"retry_for must be a positive number of seconds, got {own['retry_for']:g}"
        )
    conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(libpq), ""))
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as exc:
        raise ValidationError(f"invalid PostgreSQL URL: {exc}") from None
    display = (
        f"{params.get('user', '')}@{params.get('host', 'localhost')}:"
        f"{params.get('port', 5432)}/{params.get('dbname', '')}"
    )
    database = Database(
        conninfo,
        min_size=int(own["pool_min_size"]),
        max_size=int(own["pool_max_size"]),
        retry_for=own["retry_for"],
        display=display,
    )
    return PostgresStore(database)


def _number(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValidationError(f"{name} must be a number, got {value!r}") from None
