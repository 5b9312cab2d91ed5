"""The Store: every domain operation on runs, steps and logs, over a `Connection`.

All SQL comes from ``sql/queries.sql``. Methods are ``async`` so a store for a server database
can await its driver; this SQLite store drives its synchronous connection inside each method
and never yields in the middle of a transaction. Every write a lease holder makes is fenced by
``status = 'leased' AND lease_generation = ?``: when the fence refuses it, nothing is written
and the caller gets :class:`RunCancelled` (the run was cancelled) or :class:`LeaseLost`
(another worker reclaimed it). The reads (records, listings, what a resumed run needs) are
in :mod:`durably_web.storage.reads`, and waits and signals in :mod:`durably_web.storage.waits`,
both mixed in.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from durably_web.clock import format_timestamp
from durably_web.errors import (
    ConflictError,
    LeaseLost,
    NotFoundError,
    RunCancelled,
    StorageError,
)
from durably_web.ids import new_ulid
from durably_web.models import Run
from durably_web.storage.connection import Connection, IntegrityViolation, Param, Row
from durably_web.storage.lockwait import waits_for_lock
from durably_web.storage.queries import migrations, queries, schema
from durably_web.storage.reads import StoreReads
from durably_web.storage.records import (
    LogRow,
    NewRun,
    RunDelta,
    StepRow,
    completed_row,
    step_row,
)
from durably_web.storage.rows import run_from_row
from durably_web.storage.schedules import StoreSchedules
from durably_web.storage.waits import StoreWaits

__all__ = ["SQLiteStore"]

_JSON_ROWS_MAX = 1 << 20
"""Characters of kept steps' JSON text sent as one value at most. A bigger group goes one
value at a time: the browser's bridge reserves three bytes a character in SQLite's heap for
a text it binds, and a group of large results would ask for far more at once than any single
result does."""
_CASCADE = ("delete_steps", "delete_logs", "delete_signals", "delete_labels", "delete_run")
"""What deleting a run deletes, in order."""


class SQLiteStore(StoreReads, StoreWaits, StoreSchedules):
    """Domain operations over one SQLite :class:`Connection` (the :class:`Store` protocol).

    Each method keeps the contract :class:`~durably_web.storage.base.Store` documents; its
    docstring here says only what is particular to SQLite.

    Args:
        connection: the adapter to run SQL on (``sqlite3`` on CPython, the JS bridge in
            the browser).
        exclusive: no other connection can write this database (the browser worker's
            exclusive OPFS pool): the lease check before each step then reads nothing, since
            only this engine can cancel or reclaim its runs, and it tells its own runs at once.
    """

    grouped_checkpoints = True
    """Writes carry a delta's kept steps (the batched checkpoint mode, ``RunDelta.steps``)."""

    def __init__(self, connection: Connection, *, exclusive: bool = False) -> None:
        self.connection = connection
        self.exclusive = exclusive
        self._q = queries()
        self._insert_step = self._q["insert_step"]
        self._insert_kept_step = self._q["insert_kept_step"]
        self._insert_kept_steps = self._q["insert_kept_steps"]
        self._json_rows = getattr(connection, "json_rows", False) is True
        self._insert_log = self._q["insert_log"]
        self._leases = _lease_cache(connection)

    # -- schema -------------------------------------------------------------------------

    @waits_for_lock
    async def migrate(self, now: float) -> list[int]:
        """See :meth:`Store.migrate`.

        Each migration runs in its own ``BEGIN IMMEDIATE`` transaction that re-reads the
        version first, so two processes migrating one file at once apply each exactly once.
        A database without any table or index gets ``sql/schema.sql`` (what the migrations
        produce, tests/unit/test_schema.py) and every version in one transaction instead: a
        new browser database is ready sooner (no table rebuilt, renamed and re-parsed, which
        in sqlite-wasm also means less of its code compiled at a cold start).
        """
        known = migrations()
        latest = known[-1][0]
        found = self._version()
        if found > latest:
            raise StorageError(
                f"the database has schema version {found}, newer than this durably_web "
                f"supports (version {latest}): it was written by a newer release. Upgrade "
                "durably_web to open it; it was left unchanged."
            )
        applied: list[int] = []
        if found == latest:
            return applied  # up to date: no write, so no wait for another writer's lock
        if found == 0 and self._is_empty():
            with self.connection.transaction():
                if self._is_empty():  # else another process created it meanwhile: migrate
                    self.connection.execute_script(schema())
                    applied_at = format_timestamp(now)
                    for version, _ in known:
                        self.connection.execute(self._q["record_version"], (version, applied_at))
                    return [version for version, _ in known]
        for version, script in known:
            with self.connection.transaction():
                if self._version() >= version:
                    continue
                self.connection.execute_script(script)
                self.connection.execute(self._q["record_version"], (version, format_timestamp(now)))
                applied.append(version)
        return applied

    @waits_for_lock
    async def schema_version(self) -> int:
        """See :meth:`Store.schema_version`."""
        return self._version()

    def _is_empty(self) -> bool:
        return int(self.connection.query(self._q["schema_object_count"])[0]["n"]) == 0

    def _version(self) -> int:
        exists = self.connection.query(self._q["schema_versions_exists"])[0]["n"]
        if not exists:
            return 0
        return int(self.connection.query(self._q["current_version"])[0]["version"])

    # -- enqueue ------------------------------------------------------------------------

    @waits_for_lock
    async def enqueue(self, new_runs: Sequence[NewRun], now: float) -> list[Run]:
        """See :meth:`Store.enqueue`."""
        stamp = format_timestamp(now)
        results: list[Run] = []
        with self.connection.transaction():
            for new in new_runs:
                results.append(self._enqueue_one(new, stamp, now))
        return results

    def _enqueue_one(self, new: NewRun, stamp: str, now: float) -> Run:
        if new.idempotency_key is not None:
            rows = self.connection.query(
                self._q["find_by_idempotency_key"], (new.job_name, new.idempotency_key)
            )
            if rows:
                return run_from_row(rows[0], "idempotent")
        if new.concurrency_key is not None:
            rows = self.connection.query(
                self._q["find_pending_by_concurrency_key"], (new.job_name, new.concurrency_key)
            )
            if rows:
                if new.coalesce:
                    return run_from_row(rows[0], "coalesced")
                raise ConflictError(
                    f'A pending run already exists for concurrency key "{new.concurrency_key}" '
                    f'in job "{new.job_name}". Use coalesce="skip" to return the existing run '
                    "instead."
                )
        run_id = new_ulid(now)
        labels_json = json.dumps(new.labels, separators=(",", ":"), ensure_ascii=False)
        row = self.connection.query(
            self._q["insert_run"],
            (
                run_id,
                new.job_name,
                new.input_json,
                new.idempotency_key,
                new.concurrency_key,
                labels_json,
                stamp,
                None if new.run_at is None else format_timestamp(new.run_at),
            ),
        )[0]
        for key, value in new.labels.items():
            self.connection.execute(self._q["insert_label"], (run_id, key, value))
        return run_from_row(row, "created")

    # -- claim and execute --------------------------------------------------------------

    @waits_for_lock
    async def claim_next(
        self,
        owner: str,
        now: float,
        lease_duration: float,
        job_names: Iterable[str],
        run_id: str | None = None,
    ) -> Run | None:
        """See :meth:`Store.claim_next`."""
        params: list[Param] = [
            format_timestamp(now),
            owner,
            format_timestamp(now + lease_duration),
            json.dumps(sorted(job_names)),
        ]
        if run_id is not None:
            params.append(run_id)
        self._invalidate()
        with self.connection.transaction():
            rows = self.connection.query(
                self._q["claim_next" if run_id is None else "claim_run"], params
            )
        return run_from_row(rows[0]) if rows else None

    @waits_for_lock
    async def check_lease(self, run_id: str, generation: int) -> None:
        """See :meth:`Store.check_lease`.

        Cheap when nothing changed: SQLite's ``data_version`` moves only when another
        connection commits, and every write through this store that could end a lease
        (cancel, delete) resets the remembered version, so the run's row is read only when
        someone else may have touched it.
        """
        if self.exclusive:
            return
        version = self.connection.data_version()
        leases = self._leases
        if version == leases.version and leases.held.get(run_id) == generation:
            return
        rows = self.connection.query(self._q["run_state"], (run_id,))
        if rows and rows[0]["status"] == "leased" and rows[0]["lease_generation"] == generation:
            if version != leases.version:
                leases.held.clear()
                leases.version = version
            leases.held[run_id] = generation
            return
        raise self._refusal(run_id, rows[0] if rows else None)

    @waits_for_lock
    async def checkpoint_step(
        self,
        run_id: str,
        generation: int,
        *,
        name: str,
        index: int,
        output_json: str | None,
        started_at: float,
        now: float,
        logs: Sequence[LogRow] = (),
        attempt: int = 1,
        steps: Sequence[StepRow] = (),
    ) -> None:
        """See :meth:`Store.checkpoint_step`."""
        step = completed_row(
            run_id,
            generation,
            name=name,
            index=index,
            output_json=output_json,
            started_at=started_at,
            now=now,
            attempt=attempt,
        )
        try:
            written = self._fenced((self._insert_step, step), logs, steps=steps)
        except IntegrityViolation as exc:
            raise _completed_twice(run_id, name) from exc
        if not written:
            raise self._refusal(run_id)

    def checkpoint_now(self, run_id: str, generation: int, row: StepRow) -> None:
        """See :class:`~durably_web.storage.base.CheckpointsNow`: one autocommit ``INSERT``.

        ``checkpoint_step`` without log lines or kept steps, with the calls between it and the
        connection taken out (it runs for most steps).
        """
        try:
            written = self.connection.run_batch(((self._insert_step, row),), True)
        except IntegrityViolation as exc:
            raise _completed_twice(run_id, row[2]) from exc
        if not written:
            raise self._refusal(run_id)

    @waits_for_lock
    async def record_failed_step(
        self,
        run_id: str,
        generation: int,
        *,
        name: str,
        index: int,
        status: str,
        error: str,
        started_at: float,
        now: float,
        logs: Sequence[LogRow] = (),
        attempt: int = 1,
        retry_at: float | None = None,
        steps: Sequence[StepRow] = (),
    ) -> bool:
        """See :meth:`Store.record_failed_step`."""
        step = step_row(
            run_id,
            generation,
            name=name,
            index=index,
            status=status,
            output_json=None,
            error=error,
            started_at=started_at,
            now=now,
            attempt=attempt,
            retry_at=retry_at,
        )
        return self._fenced((self._insert_step, step), logs, steps=steps)

    @waits_for_lock
    async def flush(self, run_id: str, generation: int, delta: RunDelta, now: float) -> bool:
        """See :meth:`Store.flush`."""
        if not delta:
            return True
        touch = (
            self._q["touch_run"],
            (run_id, generation, *delta.run_fields(), format_timestamp(now)),
        )
        return self._fenced(touch, delta.logs, steps=delta.steps)

    @waits_for_lock
    async def renew_lease(
        self, run_id: str, generation: int, now: float, lease_duration: float
    ) -> str | None:
        """See :meth:`Store.renew_lease`."""
        expires = format_timestamp(now + lease_duration)
        statement = (self._q["renew_lease"], (run_id, generation, expires, format_timestamp(now)))
        return expires if self.connection.run_batch([statement], guard=True) else None

    @waits_for_lock
    async def complete_run(
        self,
        run_id: str,
        generation: int,
        output_json: str | None,
        now: float,
        delta: RunDelta,
        *,
        delete_steps: bool,
    ) -> None:
        """See :meth:`Store.complete_run`."""
        progress, index, count = delta.run_fields()
        complete = (
            self._q["complete_run"],
            (run_id, generation, output_json, progress, format_timestamp(now), index, count),
        )
        after: list[tuple[str, Sequence[Param]]] = []
        if delete_steps:  # the delta's log lines would be deleted with the others
            after = [
                (self._q[query], (run_id,))
                for query in ("delete_steps", "delete_logs", "delete_signals")
            ]
        logs = () if delete_steps else delta.logs
        steps = () if delete_steps else delta.steps
        if not self._fenced(complete, logs, after=after, steps=steps):
            raise self._refusal(run_id)

    @waits_for_lock
    async def fail_run(
        self, run_id: str, generation: int, error: str, now: float, delta: RunDelta
    ) -> None:
        """See :meth:`Store.fail_run`."""
        progress, index, count = delta.run_fields()
        stamp = format_timestamp(now)
        fail = (self._q["fail_run"], (run_id, generation, error, progress, stamp, index, count))
        if not self._fenced(fail, delta.logs, steps=delta.steps):
            raise self._refusal(run_id)

    @waits_for_lock
    async def release_lease(
        self, run_id: str, generation: int, now: float, delta: RunDelta
    ) -> bool:
        """See :meth:`Store.release_lease`."""
        progress, index, count = delta.run_fields()
        stamp = format_timestamp(now)
        release = (self._q["release_lease"], (run_id, generation, progress, stamp, index, count))
        return self._fenced(release, delta.logs, steps=delta.steps)

    def _fenced(
        self,
        first: tuple[str, Sequence[Param]],
        logs: Sequence[LogRow],
        *,
        after: Sequence[tuple[str, Sequence[Param]]] = (),
        steps: Sequence[StepRow] = (),
    ) -> bool:
        """Run a lease holder's write: ``steps``, ``first`` (the fence), ``logs``, ``after``.

        Args:
            first: the fenced statement; when it changes no row, nothing is written.
            steps: checkpoints kept for a group commit, inserted first in the same
                transaction (each insert is fenced by the same lease, see below).
            logs: the run's unwritten log lines, inserted in the same transaction.
            after: statements to run last, in the same transaction.

        Returns False when the fence refused (nothing written), True once it committed.
        """
        if not steps and not logs and not after:  # a checkpoint, most of the time
            return self.connection.run_batch((first,), guard=True)
        # Kept steps go first: ``first`` may end the lease (an outcome), after which their
        # fenced inserts would insert nothing. The first of them is then the guard: it is
        # fenced by the same lease, so it inserts nothing exactly when ``first`` would not.
        # Once it passed, the transaction holds the write lock: the others need no fence.
        statements: list[tuple[str, Sequence[Param]]] = []
        if steps:
            statements.append((self._insert_step, steps[0]))
            rest = steps[1:]
            text = (  # the rest as one JSON text, for a connection that asks (Connection)
                json.dumps(rest, separators=(",", ":"), ensure_ascii=False)
                if self._json_rows and rest
                else None
            )
            if text is not None and len(text) <= _JSON_ROWS_MAX:
                statements.append((self._insert_kept_steps, (text,)))
            else:
                statements.extend((self._insert_kept_step, step) for step in rest)
        statements.append(first)
        statements.extend((self._insert_log, log) for log in logs)
        statements.extend(after)
        return self.connection.run_batch(statements, guard=True)

    @waits_for_lock
    async def expire_leases(self, now: float) -> int:
        """See :meth:`Store.expire_leases`.

        Used by the browser's engine, alone on its exclusive OPFS pool: every lease it finds
        belongs to a dead engine.
        """
        self._invalidate()
        with self.connection.transaction():
            return self.connection.execute(self._q["expire_leases"], (format_timestamp(now),))

    def _invalidate(self) -> None:
        """Forget which leases were seen held: a write through this connection changed runs."""
        self._leases.version = None
        self._leases.held.clear()

    def _refusal(self, run_id: str, state: Row | None = None) -> RunCancelled | LeaseLost:
        if state is None:
            rows = self.connection.query(self._q["run_state"], (run_id,))
            state = rows[0] if rows else None
        if state is not None and state["status"] == "cancelled":
            return RunCancelled(f"Run was cancelled: {run_id}")
        return LeaseLost(f"Lease ownership was lost: {run_id}")

    # -- runs of jobs no worker knows (found by StoreReads.unknown_job_runs) ----------------

    @waits_for_lock
    async def flag_unknown_job(self, run_id: str, warning: str) -> bool:
        """See :meth:`Store.flag_unknown_job`."""
        with self.connection.transaction():
            return self.connection.execute(self._q["flag_unknown_job"], (run_id, warning)) > 0

    @waits_for_lock
    async def fail_unknown_job(
        self, run_id: str, error: str, waiting_since: float, now: float
    ) -> Run | None:
        """See :meth:`Store.fail_unknown_job`."""
        self._invalidate()
        params = (run_id, error, format_timestamp(waiting_since), format_timestamp(now))
        with self.connection.transaction():
            rows = self.connection.query(self._q["fail_unknown_job"], params)
        return run_from_row(rows[0]) if rows else None

    # -- run management -----------------------------------------------------------------

    @waits_for_lock
    async def cancel_run(self, run_id: str, now: float) -> Run:
        """See :meth:`Store.cancel_run`."""
        self._invalidate()
        with self.connection.transaction():
            rows = self.connection.query(self._q["cancel_run"], (run_id, format_timestamp(now)))
            if not rows:
                current = self._require(run_id)
                if current.status == "cancelled":
                    raise ConflictError(f"Cannot cancel already cancelled run: {run_id}")
                raise ConflictError(f"Cannot cancel {current.status} run: {run_id}")
        return run_from_row(rows[0])

    @waits_for_lock
    async def retry_run(self, run_id: str, now: float) -> Run:
        """See :meth:`Store.retry_run`."""
        self._invalidate()
        try:
            with self.connection.transaction():
                rows = self.connection.query(self._q["retry_run"], (run_id, format_timestamp(now)))
                if not rows:
                    current = self._require(run_id)
                    raise ConflictError(
                        f"Cannot retry {current.status} run: {run_id} "
                        "(only failed or cancelled runs can be retried)"
                    )
        except IntegrityViolation as exc:
            raise ConflictError(
                f"Cannot retry run {run_id}: a pending run with its concurrency key already exists"
            ) from exc
        return run_from_row(rows[0])

    @waits_for_lock
    async def delete_run(self, run_id: str) -> Run:
        """See :meth:`Store.delete_run`."""
        self._invalidate()
        with self.connection.transaction():
            run = self._require(run_id)
            if not run.is_terminal:
                raise ConflictError(f"Cannot delete {run.status} run: {run_id}")
            self._cascade_delete(run_id)
        return run

    @waits_for_lock
    async def purge_runs(self, older_than: float, limit: int) -> int:
        """See :meth:`Store.purge_runs`."""
        self._invalidate()
        with self.connection.transaction():
            rows = self.connection.query(
                self._q["purge_candidates"], (format_timestamp(older_than), limit)
            )
            for row in rows:
                self._cascade_delete(row["id"])
        return len(rows)

    def _cascade_delete(self, run_id: str) -> None:
        for query in _CASCADE:
            self.connection.execute(self._q[query], (run_id,))

    def _require(self, run_id: str) -> Run:
        rows = self.connection.query(self._q["get_run"], (run_id,))
        if not rows:
            raise NotFoundError(f"Run not found: {run_id}")
        return run_from_row(rows[0])

    async def close(self) -> None:
        """See :meth:`Store.close`: closes the connection."""
        self.connection.close()


def _completed_twice(run_id: str, name: str) -> ConflictError:
    return ConflictError(f"step {name!r} of run {run_id} already has a completed checkpoint")


@dataclass(slots=True)
class _LeaseCache:
    """Leases seen held at a ``data_version``, shared by every store on one connection."""

    version: int | None = None
    held: dict[str, int] = field(default_factory=dict)


_LEASE_CACHES: weakref.WeakKeyDictionary[Any, _LeaseCache] = weakref.WeakKeyDictionary()


def _lease_cache(connection: Connection) -> _LeaseCache:
    try:
        return _LEASE_CACHES.setdefault(connection, _LeaseCache())
    except TypeError:  # a connection that cannot be weakly referenced: no sharing needed
        return _LeaseCache()
