"""CPython adapter: :class:`~durably_web.storage.connection.Connection` over the ``sqlite3`` module.

File databases use WAL (readers never block the writer) and ``BEGIN IMMEDIATE`` for every
transaction, so two processes on one file serialise their writes safely. A held lock is never
waited for inside SQLite once the database is open (that would freeze the event loop): a call
meeting it raises ``DatabaseBusy`` at once, having written nothing, and the Store waits it out
asynchronously for up to ``busy_timeout`` seconds (``lock_wait``, see
:mod:`durably_web.storage.lockwait`). ``synchronous`` defaults to ``NORMAL``:
with WAL that survives any process crash (SIGKILL included) and loses at most the last commits
on an OS crash or power loss, never consistency; pass ``synchronous="FULL"`` for power-loss
durability at the cost of one fsync per commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import groupby
from operator import itemgetter

from durably_web.errors import StorageError, ValidationError
from durably_web.options import MAX_BUSY_TIMEOUT, check_seconds
from durably_web.storage.connection import SQLITE_CONSTRAINT, Param, Row, storage_error

__all__ = ["SQLite3Connection"]

_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_JOURNAL_MODES = ("WAL", "DELETE", "TRUNCATE", "PERSIST", "MEMORY")


class SQLite3Connection:
    """A ``sqlite3`` connection in autocommit mode with explicit transactions.

    Args:
        path: a file path, or ``":memory:"`` for a private in-memory database.
        busy_timeout: seconds another process's write lock is waited for before
            ``DatabaseBusy`` reaches the engine: by SQLite while the database is opened, by
            the Store (``lock_wait``) afterwards.
        synchronous: ``"OFF"``, ``"NORMAL"`` (default), ``"FULL"`` or ``"EXTRA"``.
        journal_mode: ``"WAL"`` (default) or another SQLite journal mode; ignored in memory.

    """

    def __init__(
        self,
        path: str,
        *,
        busy_timeout: float = 5.0,
        synchronous: str = "NORMAL",
        journal_mode: str = "WAL",
    ) -> None:
        synchronous = synchronous.upper()
        journal_mode = journal_mode.upper()
        if synchronous not in _SYNCHRONOUS:
            raise ValidationError(f"synchronous must be one of {_SYNCHRONOUS}, got {synchronous!r}")
        if journal_mode not in _JOURNAL_MODES:
            raise ValidationError(
                f"journal_mode must be one of {_JOURNAL_MODES}, got {journal_mode!r}"
            )
        busy_timeout = check_seconds(
            busy_timeout, "busy_timeout", maximum=MAX_BUSY_TIMEOUT, allow_zero=True
        )
        self.path = path
        try:
            self._db = sqlite3.connect(
                path,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=256,
            )
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if path != ":memory:":
                self._db.execute(f"PRAGMA journal_mode = {journal_mode}")
            self._db.execute(f"PRAGMA synchronous = {synchronous}")
            # Checkpoint the WAL every ~40 MB instead of every 4 MB: each checkpoint costs
            # fsyncs, and a step-per-commit workload otherwise spends most of its time there.
            self._db.execute("PRAGMA wal_autocheckpoint = 10000")
            self._db.execute(f"PRAGMA journal_size_limit = {64 * 1024 * 1024}")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA busy_timeout = 0")  # from now on the Store waits
        except sqlite3.Error as exc:
            raise _translate(exc, f"cannot open SQLite database {path!r}") from exc
        self.lock_wait = busy_timeout
        self._in_transaction = False
        # Writes reuse one cursor: ``Connection.execute`` makes a cursor per call, about a
        # tenth of a checkpoint's Python time. (Queries keep their own: rows are fetched.)
        self._writes = self._db.cursor()

    def execute(self, sql: str, params: Sequence[Param] = ()) -> int:
        """Run one statement; return its changed-row count."""
        try:
            return self._write(sql, params)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    def _write(self, sql: str, params: Sequence[Param]) -> int:
        """Run one statement on the reused cursor; return its changed-row count."""
        cursor = self._writes.execute(sql, params)
        if cursor.description is not None:  # it returns rows: finish it, as a dropped cursor
            cursor.fetchall()
        return cursor.rowcount

    def query(self, sql: str, params: Sequence[Param] = ()) -> list[Row]:
        """Run one statement; return its rows as dicts."""
        try:
            cursor = self._db.execute(sql, params)
            rows = cursor.fetchall()
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        if not rows:
            return []
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def data_version(self) -> int:
        """Return ``PRAGMA data_version`` (changes when another connection commits)."""
        try:
            return int(self._db.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    def execute_script(self, sql: str) -> None:
        """Run a script of statements (inside the caller's transaction, if any)."""
        try:
            for statement in _split_statements(sql):
                self._db.execute(statement)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    def run_batch(
        self, statements: Sequence[tuple[str, Sequence[Param]]], guard: bool = False
    ) -> bool:
        """Run ``statements`` in one transaction; ``guard`` requires the first to change a row."""
        if self._in_transaction:
            raise StorageError("transactions do not nest")
        db = self._db
        if len(statements) == 1:
            # One statement is its own transaction in autocommit mode: no BEGIN/COMMIT round
            # trips, and a guarded statement that changes nothing has written nothing.
            sql, params = statements[0]
            try:
                cursor = self._writes.execute(sql, params)  # as _write, a call less: hot path
                if cursor.description is not None:
                    cursor.fetchall()
            except sqlite3.Error as exc:
                raise _translate(exc) from exc
            return not (guard and cursor.rowcount == 0)
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                sql, params = statements[0]
                if db.execute(sql, params).rowcount == 0 and guard:
                    db.execute("ROLLBACK")
                    return False
                # Runs of one statement (a group of checkpoints, log lines) in one call.
                for sql, group in groupby(statements[1:], key=itemgetter(0)):
                    db.executemany(sql, [params for _, params in group])
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        return True

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` if the block raises."""
        if self._in_transaction:
            raise StorageError("transactions do not nest")
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _translate(exc, "cannot begin a transaction") from exc
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self._in_transaction = False
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._in_transaction = False
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise _translate(exc, "commit failed") from exc

    def close(self) -> None:
        """Close the underlying ``sqlite3`` connection."""
        self._db.close()


def _translate(exc: sqlite3.Error, context: str = "SQLite error") -> StorageError | ValidationError:
    """Translate a ``sqlite3`` error by its result code (see the Connection protocol)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None and isinstance(exc, sqlite3.IntegrityError):
        code = SQLITE_CONSTRAINT
    return storage_error(code, f"{context}: {exc}")


def _split_statements(script: str) -> list[str]:
    """Split a script on statement boundaries, keeping trigger bodies whole."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
