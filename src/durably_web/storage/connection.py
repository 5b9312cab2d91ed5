"""The `Connection` protocol: the only thing the Store needs from a SQLite driver.

An adapter executes SQL and nothing else; it knows no domain. Contract:

- ``execute`` runs one statement and returns the number of rows it changed.
- ``query`` runs one statement and returns every row as a dict keyed by column name.
- ``run_batch(statements, guard)`` runs a list of statements in one ``BEGIN IMMEDIATE`` …
  ``COMMIT`` with one call into the driver (one bridge crossing in the browser). With
  ``guard``, when the first statement changes no row the transaction is rolled back and
  ``False`` returned: the fenced writes of a lease holder use it.
- ``data_version()`` returns ``PRAGMA data_version``, which moves only when *another*
  connection commits: the Store uses it to skip re-reading state nobody else can have changed.
- ``transaction()`` is a synchronous context manager: ``BEGIN IMMEDIATE`` on entry (so a
  writer takes the database lock before reading what it will write), ``COMMIT`` on normal exit,
  ``ROLLBACK`` when the block raises. Transactions do not nest and never span an ``await``.
- ``lock_wait`` is how long the Store waits out a held lock asynchronously: an adapter whose
  driver does not wait for locks (CPython's: the loop must not block) sets it to its
  ``busy_timeout``; one whose driver waits (SQLite's busy handler) sets 0.
- ``json_rows`` (optional, default False): True when binding values one by one costs the
  adapter more than SQLite reading them from one JSON text (the browser's bridge converts
  and binds every value in JS). The Store then passes the kept checkpoints of a group commit
  as one JSON array (``insert_kept_steps``, read with ``json_each``) instead of one
  ``INSERT`` of 12 values per step; where binding is cheap (CPython's ``sqlite3``, whose
  ``executemany`` binds in C) the plain ``INSERT`` per step is faster.
- Driver errors are translated once, in the adapter, by SQLite result code: a constraint
  violation raises :class:`IntegrityViolation`; a held lock (``SQLITE_BUSY``/``SQLITE_LOCKED``,
  at once or after the driver's own wait) :class:`DatabaseBusy`; a full disk or storage quota
  (``SQLITE_FULL``) :class:`DatabaseFull`; a value longer than SQLite accepts
  (``SQLITE_TOOBIG``) :class:`~durably_web.errors.ValidationError` (the data is at fault, not
  the database); anything else :class:`~durably_web.errors.StorageError`. Whatever the error,
  the statement or transaction wrote nothing. The engine never sees ``sqlite3`` or
  ``JsException`` errors.

Parameters are primitives only: ``None``, ``int``, ``float``, ``str``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from durably_web.errors import StorageError, ValidationError

__all__ = [
    "SQLITE_BUSY",
    "SQLITE_CONSTRAINT",
    "SQLITE_FULL",
    "SQLITE_LOCKED",
    "SQLITE_TOOBIG",
    "Connection",
    "DatabaseBusy",
    "DatabaseFull",
    "IntegrityViolation",
    "Param",
    "Row",
    "storage_error",
]

Param = None | int | float | str
Row = dict[str, Any]


SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_FULL = 13
SQLITE_TOOBIG = 18
SQLITE_CONSTRAINT = 19


class IntegrityViolation(StorageError):
    """A UNIQUE, CHECK or FOREIGN KEY constraint refused a write."""


class DatabaseBusy(StorageError):
    """Another connection held the database lock (by the engine: past ``busy_timeout``).

    Transient: the same operation can succeed once the lock is released, so the engine retries
    its own writes instead of failing a run.
    """


class DatabaseFull(StorageError):
    """The disk (or the browser's storage quota) is full; nothing of the write was stored.

    The engine stops its worker with this error: runs keep their checkpoints and resume once
    there is space again.
    """


def storage_error(code: int | None, message: str) -> StorageError | ValidationError:
    """Return the error for a failed SQLite call from its (possibly extended) result code.

    Args:
        code: the SQLite result code, or None when the driver gave none.
        message: the message, already naming what failed.

    """
    primary = None if code is None else code & 0xFF
    if primary == SQLITE_CONSTRAINT:
        return IntegrityViolation(message)
    if primary in (SQLITE_BUSY, SQLITE_LOCKED):
        return DatabaseBusy(message)
    if primary == SQLITE_FULL:
        return DatabaseFull(message)
    if primary == SQLITE_TOOBIG:
        return ValidationError(f"{message}: a value is too large to store")
    return StorageError(message)


class Connection(Protocol):
    """A synchronous SQLite connection the Store drives."""

    @property
    def lock_wait(self) -> float:
        """Seconds the Store waits, off the event loop, for a lock reported held.

        This connection raises ``DatabaseBusy`` at once for a held lock, and the Store waits
        it out (see :mod:`durably_web.storage.lockwait`); 0 when the driver waits itself.
        """
        ...

    def execute(self, sql: str, params: Sequence[Param] = ()) -> int:
        """Run one statement; return the number of rows it inserted, updated or deleted."""
        ...

    def query(self, sql: str, params: Sequence[Param] = ()) -> list[Row]:
        """Run one statement; return its rows as dicts keyed by column name."""
        ...

    def data_version(self) -> int:
        """Return SQLite's ``PRAGMA data_version``: it changes when another connection commits."""
        ...

    def execute_script(self, sql: str) -> None:
        """Run several ``;``-separated statements (schema and migrations)."""
        ...

    def run_batch(
        self, statements: Sequence[tuple[str, Sequence[Param]]], guard: bool = False
    ) -> bool:
        """Run ``statements`` in one write transaction; see the module docstring for ``guard``."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """Return a context manager wrapping its block in ``BEGIN IMMEDIATE`` … ``COMMIT``."""
        ...

    def close(self) -> None:
        """Close the connection; further calls raise ``StorageError``."""
        ...
