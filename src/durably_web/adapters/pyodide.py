"""Pyodide adapter: :class:`~durably_web.storage.connection.Connection` over the JS bridge.

The browser worker (and the Node test harness) registers the runtime's
``sqlite_bridge.mjs`` (``durably_web/web/runtime/``) as a JS module; this adapter calls it
synchronously from Python in the same worker. Contract:

- SQL text crosses the bridge once: each distinct query is prepared on first use and then
  referred to by an integer id; column names are fetched once per query.
- Arguments are primitives passed variadically; rows come back as JS arrays converted with
  ``to_py()``; SQL NULL arrives as ``None``.
- A lease holder's fenced write (:meth:`run_batch`) is a single bridge call; a group of kept
  checkpoints in it is one JSON text (``json_rows``), not 12 values a step.
- A JS ``SQLite3Error`` is translated once, here, by its result code, as the Connection
  protocol says (constraint, busy, full, too big, anything else). No ``JsProxy`` or
  ``JsException`` leaves this module.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pyodide.ffi import JsException

from durably_web.errors import StorageError, ValidationError
from durably_web.storage.connection import Param, Row, storage_error

__all__ = ["PyodideConnection"]


class PyodideConnection:
    """A database opened through the JS bridge (``sqlite_bridge.mjs``).

    Args:
        bridge: the bridge object (the JS module registered with ``registerJsModule``).
        filename: the database to open: an OPFS pool path in the browser, ``:memory:``
            under Node.
        pragmas: statements run once after opening (journal mode, synchronous, ...).

    """

    lock_wait = 0.0
    """SQLite waits for a lock itself here (the pool is exclusive: none is held for long)."""

    json_rows = True
    """Many rows for one statement go best as one JSON text (see the Connection protocol):
    each value passed is converted by Pyodide and bound in JS, one text is one conversion."""

    def __init__(self, bridge: Any, filename: str, pragmas: Sequence[str] = ()) -> None:
        self._bridge = bridge
        # Bound methods fetched once: an attribute lookup on a JsProxy costs ~3 us.
        self._run = bridge.run
        self._all = bridge.all
        self._batch = bridge.batch
        self._prepare = bridge.prepare
        self._columns = bridge.columns
        self._data_version = bridge.dataVersion
        self._statements: dict[str, tuple[int, list[str]]] = {}
        self._in_transaction = False
        self.filename = filename
        try:
            self._handle: int = bridge.open(filename)
            for pragma in pragmas:
                bridge.exec(self._handle, pragma)
        except JsException as exc:
            raise _translate(exc, f"cannot open database {filename!r}") from exc

    def _statement(self, sql: str) -> tuple[int, list[str]]:
        found = self._statements.get(sql)
        if found is None:
            statement_id = self._prepare(self._handle, sql)
            names = str(self._columns(self._handle, statement_id))
            found = (statement_id, names.split("\x00") if names else [])
            self._statements[sql] = found
        return found

    def execute(self, sql: str, params: Sequence[Param] = ()) -> int:
        """Run one statement; return its changed-row count."""
        try:
            return int(self._run(self._handle, self._statement(sql)[0], *params))
        except JsException as exc:
            raise _translate(exc, "SQLite error") from exc

    def query(self, sql: str, params: Sequence[Param] = ()) -> list[Row]:
        """Run one statement; return its rows as dicts."""
        try:
            statement_id, names = self._statement(sql)
            rows = self._all(self._handle, statement_id, *params).to_py()
        except JsException as exc:
            raise _translate(exc, "SQLite error") from exc
        return [dict(zip(names, row, strict=True)) for row in rows]

    def data_version(self) -> int:
        """Return ``PRAGMA data_version``."""
        try:
            return int(self._data_version(self._handle))
        except JsException as exc:
            raise _translate(exc, "SQLite error") from exc

    def execute_script(self, sql: str) -> None:
        """Run a script of statements (sqlite-wasm's ``exec`` handles several)."""
        try:
            self._bridge.exec(self._handle, sql)
        except JsException as exc:
            raise _translate(exc, "SQLite error") from exc

    def run_batch(
        self, statements: Sequence[tuple[str, Sequence[Param]]], guard: bool = False
    ) -> bool:
        """Run statements in one transaction with one bridge call; see the protocol."""
        if self._in_transaction:
            raise StorageError("transactions do not nest")
        spec: list[Param] = []
        for sql, params in statements:
            spec.append(self._statement(sql)[0])
            spec.append(len(params))
            spec.extend(params)
        try:
            return bool(self._batch(self._handle, guard, *spec))
        except JsException as exc:
            raise _translate(exc, "SQLite error") from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` if the block raises."""
        if self._in_transaction:
            raise StorageError("transactions do not nest")
        bridge, handle = self._bridge, self._handle
        try:
            bridge.begin(handle)
        except JsException as exc:
            raise _translate(exc, "cannot begin a transaction") from exc
        self._in_transaction = True
        try:
            yield
        except BaseException:
            self._in_transaction = False
            if bridge.inTransaction(handle):  # SQLite may have rolled back already
                bridge.rollback(handle)
            raise
        self._in_transaction = False
        try:
            bridge.commit(handle)
        except JsException as exc:
            if bridge.inTransaction(handle):
                bridge.rollback(handle)
            raise _translate(exc, "commit failed") from exc

    def close(self) -> None:
        """Close the database and finalize its statements."""
        try:
            self._bridge.close(self._handle)
        except JsException as exc:
            raise _translate(exc, "cannot close the database") from exc
        self._statements.clear()


def _translate(exc: JsException, context: str) -> StorageError | ValidationError:
    code = getattr(exc, "resultCode", None)
    message = f"{context}: {getattr(exc, 'message', None) or exc}"
    return storage_error(code if isinstance(code, int) else None, message)
