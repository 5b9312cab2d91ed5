"""Storage: the Store protocol the engine depends on, its SQLite implementation, and SQL.

``base.py`` (the :class:`Store` protocol), ``url.py`` (:func:`open_store`: a store from a URL,
a Connection or a Store), ``sqlite.py`` and ``reads.py`` (:class:`SQLiteStore`),
``connection.py`` (the protocol SQLite adapters implement), ``records.py`` (the plain values
stores take), ``rows.py`` (rows to records), ``queries.py`` and ``sql/`` (the SQL).
"""
