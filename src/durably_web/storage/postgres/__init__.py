"""The PostgreSQL store (the ``postgres`` extra: psycopg 3 and psycopg_pool).

Open it with ``create_durably("postgresql://user:password@host:5432/db")``; see
``docs/postgresql.md``.
"""

from durably_web.storage.postgres.store import PostgresStore
from durably_web.storage.postgres.url import open_postgres_store

__all__ = ["PostgresStore", "open_postgres_store"]
