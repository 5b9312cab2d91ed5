"""The PostgreSQL store: the SQLite store's domain operations, for workers on many machines.

Same methods, same results and errors as :class:`~durably_web.storage.store.SQLiteStore`, over
upstream Durably's PostgreSQL schema (so upstream's Node workers can share the database). What
differs is how safety is reached with many writers at once:

- **Claim**: upstream's claim (its ADR-0001): the oldest claimable run is locked with
  ``FOR UPDATE SKIP LOCKED``; a run with a concurrency key also takes the advisory lock
  ``hashtext(key)`` and re-checks that no live lease holds the key. Unlike upstream, the lock
  is tried (``pg_try_advisory_xact_lock``), not waited for: a claim that skips a held key
  keeps its lock until it commits, and two claimers waiting for each other's keys deadlock.
- **Fencing**: every write of a lease holder is one statement guarded by
  ``status = 'leased' AND lease_generation = ?``; a checkpoint holds the run row ``FOR SHARE``
  while it inserts, so a reclaim waits for it and the next holder's replay sees it.
- **Enqueue**: a unique violation with a run another transaction committed meanwhile is not an
  error: the run is looked up again (idempotent / coalesced / conflict), as on SQLite.
- **Waking**: each write that makes a run claimable sends ``NOTIFY durably_ready`` (the job
  name); each change of a run's state (its creation too) ``NOTIFY durably_run`` (the run id).
  Each payload starts with the store's :attr:`origin` token: :meth:`on_ready` and
  :meth:`on_run_change` (the optional :class:`~durably_web.storage.base.Notifications` part of
  the Store protocol) deliver the other stores' notifications, so an idle worker or a watcher in
  another process reacts at once instead of at its next poll.
- **Connection loss**: reads and lease-holder writes are retried through a restart of the server
  (see :class:`~durably_web.storage.postgres.database.Database`); lease-holder writes are built
  to be repeated safely, even when the engine calls them again (a step row whose write was in
  doubt keeps its id). A server still unreachable after ``retry_for`` raises
  ``DatabaseUnreachable``, a :class:`~durably_web.storage.connection.DatabaseBusy`: the engine
  waits and calls again, as it does for a SQLite lock, instead of failing the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from durably_web.clock import format_timestamp
from durably_web.errors import ConflictError, LeaseLost, NotFoundError, RunCancelled, StorageError
from durably_web.ids import new_ulid
from durably_web.models import Run
from durably_web.storage.base import Subscriber, Unsubscribe
from durably_web.storage.connection import IntegrityViolation
from durably_web.storage.postgres.database import Database, Session
from durably_web.storage.postgres.listener import Listener
from durably_web.storage.postgres.params import log_params, run_update, step_params
from durably_web.storage.postgres.reads import PostgresReads
from durably_web.storage.postgres.schedules import PostgresSchedules
from durably_web.storage.postgres.waits import PostgresWaits
from durably_web.storage.queries import migrations, queries
from durably_web.storage.records import LogRow, NewRun, RunDelta, StepRow
from durably_web.storage.rows import run_from_row

__all__ = ["READY_CHANNEL", "RUN_CHANNEL", "PostgresStore"]

READY_CHANNEL = "durably_ready"
"""NOTIFY channel: a run of the job named in the payload became claimable."""
RUN_CHANNEL = "durably_run"
"""NOTIFY channel: the state of the run whose id is the payload changed."""

_SQL_ROOT = "sql/postgres"
_NO_LOGS = ":no_logs"
"""Suffix of a ``{logs}`` query's variant without the log lines (see ``queries.sql``)."""
_ENQUEUE_ATTEMPTS = 5


class PostgresStore(PostgresReads, PostgresWaits, PostgresSchedules):
    """Domain operations on a PostgreSQL database (see the module docstring).

    Each method keeps the contract :class:`~durably_web.storage.base.Store` (and
    :class:`~durably_web.storage.base.Notifications`) documents; its docstring here says only
    what is particular to PostgreSQL.

    Args:
        database: the pooled database to run SQL on; the store closes it in :meth:`close`.

    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self.origin = new_ulid()
        """This store's token in the notifications it sends (it ignores its own)."""
        self._q = _load_queries()
        self._notify = {"ready_channel": READY_CHANNEL, "run_channel": RUN_CHANNEL}
        self._notify["origin"] = self.origin
        self._listener = Listener(database, (READY_CHANNEL, RUN_CHANNEL), self.origin)
        # Step rows whose write may have committed with its connection lost: written again
        # with the same id, so the retry finds it instead of a duplicate name.
        self._in_doubt: dict[tuple[str, int, str, str], dict[str, Any]] = {}

    # -- notifications ------------------------------------------------------------------

    def on_ready(self, listener: Subscriber) -> Unsubscribe:
        """See :meth:`Notifications.on_ready`."""
        return self._listener.subscribe(READY_CHANNEL, listener)

    def on_run_change(self, listener: Subscriber, run_id: str | None = None) -> Unsubscribe:
        """See :meth:`Notifications.on_run_change`."""
        return self._listener.subscribe(RUN_CHANNEL, listener, run_id)

    # -- schema -------------------------------------------------------------------------

    async def migrate(self, now: float) -> list[int]:
        """See :meth:`Store.migrate`.

        Each migration runs in its own transaction under an advisory lock and re-reads the
        version first, so processes migrating one database at once apply each exactly once.
        Then the store starts listening for notifications.
        """
        known = migrations(_SQL_ROOT)
        latest = known[-1][0]
        found = await self.schema_version()
        if found > latest:
            raise StorageError(
                f"the database has schema version {found}, newer than this durably_web "
                f"supports (version {latest}): it was written by a newer release. Upgrade "
                "durably_web to open it; it was left unchanged."
            )
        applied: list[int] = []
        for version, script in known:

            async def apply(session: Session, version: int = version, script: str = script) -> None:
                await session.fetch(self._q["migration_lock"])
                if await self._version(session) >= version:
                    return
                await session.execute(script)
                await session.execute(
                    self._q["record_version"],
                    {"version": version, "applied_at": format_timestamp(now)},
                )
                applied.append(version)

            await self.database.in_transaction(apply)
        await self._listener.start()
        return applied

    async def schema_version(self) -> int:
        """See :meth:`Store.schema_version`."""
        return await self.database.attempt(self._version, retry=True)

    async def _version(self, session: Session) -> int:
        if not (await session.fetch(self._q["schema_versions_exists"]))[0]["exists"]:
            return 0
        return int((await session.fetch(self._q["current_version"]))[0]["version"])

    # -- enqueue ------------------------------------------------------------------------

    async def enqueue(self, new_runs: Sequence[NewRun], now: float) -> list[Run]:
        """See :meth:`Store.enqueue`."""

        async def block(session: Session) -> list[Run]:
            return await self._enqueue_all(session, new_runs, now)

        return await self.database.in_transaction(block)

    async def _enqueue_all(
        self, session: Session, new_runs: Sequence[NewRun], now: float
    ) -> list[Run]:
        """Enqueue runs in the caller's transaction and announce the created ones."""
        results = [await self._enqueue_one(session, new, now) for new in new_runs]
        created = [run for run in results if run.disposition == "created"]
        if created:
            jobs = sorted({run.job_name for run in created})
            ids = [run.id for run in created]
            await session.fetch(
                self._q["notify_created"], {**self._notify, "jobs": jobs, "ids": ids}
            )
        return results

    async def _enqueue_one(self, session: Session, new: NewRun, now: float) -> Run:
        key = {"job_name": new.job_name}
        for _ in range(_ENQUEUE_ATTEMPTS):
            if new.idempotency_key is not None:
                rows = await session.fetch(
                    self._q["find_by_idempotency_key"], {**key, "key": new.idempotency_key}
                )
                if rows:
                    return run_from_row(rows[0], "idempotent")
            if new.concurrency_key is not None:
                rows = await session.fetch(
                    self._q["find_pending_by_concurrency_key"],
                    {**key, "key": new.concurrency_key},
                )
                if rows:
                    if new.coalesce:
                        return run_from_row(rows[0], "coalesced")
                    raise ConflictError(
                        f'A pending run already exists for concurrency key "{new.concurrency_key}"'
                        f' in job "{new.job_name}". Use coalesce="skip" to return the existing run'
                        " instead."
                    )
            run_id = new_ulid(now)
            rows = await session.fetch(
                self._q["insert_run"],
                {
                    **key,
                    "id": run_id,
                    "input": new.input_json,
                    "idempotency_key": new.idempotency_key,
                    "concurrency_key": new.concurrency_key,
                    "labels": json.dumps(new.labels, separators=(",", ":"), ensure_ascii=False),
                    "now": format_timestamp(now),
                    "run_at": None if new.run_at is None else format_timestamp(new.run_at),
                },
            )
            if rows:  # else another transaction committed a conflicting run: look again
                if new.labels:
                    await session.execute(
                        self._q["insert_labels"],
                        {
                            "run_id": run_id,
                            "keys": list(new.labels),
                            "values": list(new.labels.values()),
                        },
                    )
                return run_from_row(rows[0], "created")
        raise ConflictError(
            f'The runs of job "{new.job_name}" changed concurrently {_ENQUEUE_ATTEMPTS} times '
            "while this trigger was being written; try again."
        )

    # -- claim and execute --------------------------------------------------------------

    async def claim_next(
        self,
        owner: str,
        now: float,
        lease_duration: float,
        job_names: Iterable[str],
        run_id: str | None = None,
    ) -> Run | None:
        """See :meth:`Store.claim_next`."""
        stamp = format_timestamp(now)
        params: dict[str, Any] = {
            "now": stamp,
            "jobs": sorted(job_names),
            "run_id": run_id,
            "owner": owner,
            "expires": format_timestamp(now + lease_duration),
        }

        [fast] = await self.database.fetch(
            self._q["claim_fast"], {**params, **self._notify}, retry=False
        )
        if fast["id"] is not None:
            return run_from_row(fast)
        if not fast["candidates"]:
            return None

        async def block(session: Session) -> Run | None:  # the oldest candidate has a key
            skip: list[str] = []
            while True:
                rows = await session.fetch(self._q["claim_candidate"], {**params, "skip": skip})
                if not rows:
                    return None
                candidate = {"id": rows[0]["id"], "key": rows[0]["concurrency_key"], "now": stamp}
                if candidate["key"] is not None:
                    [lock] = await session.fetch(self._q["concurrency_lock"], candidate)
                    if not lock["locked"] or await session.fetch(
                        self._q["concurrency_holder"], candidate
                    ):
                        skip.append(candidate["key"])
                        continue
                [row] = await session.fetch(
                    self._q["lease_run"], {**params, **candidate, **self._notify}
                )
                return run_from_row(row)

        return await self.database.in_transaction(block)

    async def check_lease(self, run_id: str, generation: int) -> None:
        """See :meth:`Store.check_lease`."""
        rows = await self._held(self._q["run_state"], {"run_id": run_id})
        state = rows[0] if rows else None
        if state is None or state["status"] != "leased" or state["lease_generation"] != generation:
            raise await self._refusal(run_id, state)

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
        """See :meth:`Store.checkpoint_step`.

        One statement. ``steps`` must be empty: this store commits each checkpoint on its own
        (it has no ``grouped_checkpoints``, so the engine never keeps steps for it).
        """
        _no_kept_steps(steps)
        step = self._step(run_id, generation, name, index, "completed", output_json, None)
        step.update(
            started_at=format_timestamp(started_at),
            now=format_timestamp(now),
            attempt=attempt,
            retry_at=None,
        )
        try:
            written = await self._write_step(run_id, generation, step, logs)
        except IntegrityViolation as exc:
            raise ConflictError(
                f"step {name!r} of run {run_id} already has a completed checkpoint"
            ) from exc
        if not written:
            raise await self._refusal(run_id)

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
        _no_kept_steps(steps)
        step = self._step(run_id, generation, name, index, status, None, error)
        step.update(
            started_at=format_timestamp(started_at),
            now=format_timestamp(now),
            attempt=attempt,
            retry_at=None if retry_at is None else format_timestamp(retry_at),
        )
        return await self._write_step(run_id, generation, step, logs)

    def _step(
        self,
        run_id: str,
        generation: int,
        name: str,
        index: int,
        status: str,
        output_json: str | None,
        error: str | None,
    ) -> dict[str, Any]:
        """Return a step row's parameters (called again after a lost connection: same id)."""
        key = (run_id, generation, name, status)
        step = self._in_doubt.get(key) or step_params(
            run_id, name, index, status, output_json, error
        )
        self._in_doubt[key] = step
        return dict(step)

    async def _write_step(
        self, run_id: str, generation: int, step: dict[str, Any], logs: Sequence[LogRow]
    ) -> bool:
        step["generation"] = generation  # ``step`` is the caller's copy (see _step)
        if logs:  # without lines, no seven empty arrays to build (most checkpoints have none)
            step.update(log_params(logs))
        [result] = await self._held(self._logged("write_step", step), step)
        # Not inserted: fenced off, or a first attempt lost with its connection did write it.
        written = bool(result["written"]) or bool(
            await self._held(self._q["step_exists"], {"id": step["id"]})
        )
        self._in_doubt.pop((run_id, generation, step["name"], step["status"]), None)
        return written

    async def flush(self, run_id: str, generation: int, delta: RunDelta, now: float) -> bool:
        """See :meth:`Store.flush`."""
        if not delta:
            return True
        params = run_update(run_id, generation, delta, now)
        return bool(await self._held(self._logged("touch_run", params), params))

    async def renew_lease(
        self, run_id: str, generation: int, now: float, lease_duration: float
    ) -> str | None:
        """See :meth:`Store.renew_lease`."""
        expires = format_timestamp(now + lease_duration)
        params = {
            "run_id": run_id,
            "generation": generation,
            "expires": expires,
            "now": format_timestamp(now),
        }
        changed = await self.database.execute(self._q["renew_lease"], params, retry=True)
        return expires if changed else None

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
        params = run_update(run_id, generation, delta, now)
        if delete_steps:  # the delta's log lines would be deleted with the others
            params.update(log_params([]))
        params.update(output=output_json, delete_steps=delete_steps)
        await self._finish(run_id, generation, "complete_run", "completed", params)

    async def fail_run(
        self, run_id: str, generation: int, error: str, now: float, delta: RunDelta
    ) -> None:
        """See :meth:`Store.fail_run`."""
        params = run_update(run_id, generation, delta, now)
        params["error"] = error
        await self._finish(run_id, generation, "fail_run", "failed", params)

    async def _finish(
        self, run_id: str, generation: int, query: str, status: str, params: dict[str, Any]
    ) -> None:
        if await self._held(self._logged(query, params), params):
            return
        rows = await self._held(self._q["run_state"], {"run_id": run_id})
        state = rows[0] if rows else None
        if state is not None and (state["status"], state["lease_generation"]) == (
            status,
            generation,
        ):
            return  # a first attempt lost with its connection did write this outcome
        raise await self._refusal(run_id, state)

    async def release_lease(
        self, run_id: str, generation: int, now: float, delta: RunDelta
    ) -> bool:
        """See :meth:`Store.release_lease`."""
        params = run_update(run_id, generation, delta, now)
        sql = self._logged("release_lease", params)
        try:
            rows = await self._held(sql, {**params, "keep_leased": False})
        except IntegrityViolation:  # one pending run per concurrency key
            rows = await self._held(sql, {**params, "keep_leased": True})
        return bool(rows)

    async def expire_leases(self, now: float) -> int:
        """See :meth:`Store.expire_leases`."""
        params = {**self._notify, "now": format_timestamp(now)}
        return len(await self.database.fetch(self._q["expire_leases"], params, retry=False))

    def _logged(self, name: str, params: dict[str, Any]) -> str:
        """Return the ``{logs}`` query ``name``, without the log lines when ``params`` has none."""
        return self._q[name] if params.get("log_ids") else self._q[name + _NO_LOGS]

    async def _held(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Run a lease holder's statement (built to be repeated), retried through lost connections.

        If the server stays unreachable past ``retry_for``, :class:`DatabaseUnreachable` (a
        ``DatabaseBusy``) goes up: the engine waits and calls again.
        """
        return await self.database.fetch(sql, {**self._notify, **params}, retry=True)

    async def _refusal(
        self, run_id: str, state: dict[str, Any] | None = None
    ) -> RunCancelled | LeaseLost:
        if state is None:
            rows = await self._held(self._q["run_state"], {"run_id": run_id})
            state = rows[0] if rows else None
        if state is not None and state["status"] == "cancelled":
            return RunCancelled(f"Run was cancelled: {run_id}")
        return LeaseLost(f"Lease ownership was lost: {run_id}")

    # -- runs of jobs no worker knows (see durably_web.maintenance) ------------------------

    async def flag_unknown_job(self, run_id: str, warning: str) -> bool:
        """See :meth:`Store.flag_unknown_job`."""
        params = {"run_id": run_id, "warning": warning}
        return await self.database.execute(self._q["flag_unknown_job"], params, retry=True) > 0

    async def fail_unknown_job(
        self, run_id: str, error: str, waiting_since: float, now: float
    ) -> Run | None:
        """See :meth:`Store.fail_unknown_job`."""
        params = {
            **self._notify,
            "run_id": run_id,
            "error": error,
            "since": format_timestamp(waiting_since),
            "now": format_timestamp(now),
        }
        rows = await self.database.fetch(self._q["fail_unknown_job"], params, retry=False)
        return run_from_row(rows[0]) if rows else None

    # -- run management -----------------------------------------------------------------

    async def cancel_run(self, run_id: str, now: float) -> Run:
        """See :meth:`Store.cancel_run`."""
        params = {**self._notify, "run_id": run_id, "now": format_timestamp(now)}
        rows = await self.database.fetch(self._q["cancel_run"], params, retry=False)
        if rows:
            return run_from_row(rows[0])
        current = await self._require(run_id)
        if current.status == "cancelled":
            raise ConflictError(f"Cannot cancel already cancelled run: {run_id}")
        raise ConflictError(f"Cannot cancel {current.status} run: {run_id}")

    async def retry_run(self, run_id: str, now: float) -> Run:
        """See :meth:`Store.retry_run`."""
        params = {**self._notify, "run_id": run_id, "now": format_timestamp(now)}
        try:
            rows = await self.database.fetch(self._q["retry_run"], params, retry=False)
        except IntegrityViolation as exc:
            raise ConflictError(
                f"Cannot retry run {run_id}: a pending run with its concurrency key already exists"
            ) from exc
        if rows:
            return run_from_row(rows[0])
        current = await self._require(run_id)
        raise ConflictError(
            f"Cannot retry {current.status} run: {run_id} "
            "(only failed or cancelled runs can be retried)"
        )

    async def delete_run(self, run_id: str) -> Run:
        """See :meth:`Store.delete_run`."""

        async def block(session: Session) -> Run:
            rows = await session.fetch(self._q["lock_run"], {"run_id": run_id})
            if not rows:
                raise NotFoundError(f"Run not found: {run_id}")
            run = run_from_row(rows[0])
            if not run.is_terminal:
                raise ConflictError(f"Cannot delete {run.status} run: {run_id}")
            await session.fetch(self._q["delete_runs"], {**self._notify, "ids": [run_id]})
            return run

        return await self.database.in_transaction(block)

    async def purge_runs(self, older_than: float, limit: int) -> int:
        """See :meth:`Store.purge_runs`."""

        async def block(session: Session) -> int:
            params = {"before": format_timestamp(older_than), "limit": limit}
            ids = [row["id"] for row in await session.fetch(self._q["purge_candidates"], params)]
            if ids:
                await session.fetch(self._q["delete_runs"], {**self._notify, "ids": ids})
            return len(ids)

        return await self.database.in_transaction(block)

    async def _require(self, run_id: str) -> Run:
        run = await self.get_run(run_id)
        if run is None:
            raise NotFoundError(f"Run not found: {run_id}")
        return run

    async def close(self) -> None:
        """See :meth:`Store.close`: stops listening and closes every connection."""
        await self._listener.close()
        await self.database.close()


def _no_kept_steps(steps: Sequence[StepRow]) -> None:
    if steps:
        raise ValueError("the PostgreSQL store commits each checkpoint: no kept steps expected")


_FRAGMENTS = ("lease", "claimable", "claim_order")
"""Fragments of ``queries.sql`` written into the queries naming them in braces."""


def _fragment_text(sql: str) -> str:
    """Return a fragment without its comment lines and outer blank space."""
    return "\n".join(line for line in sql.strip().splitlines() if not line.startswith("--"))


def _load_queries() -> dict[str, str]:
    """Return the dialect's queries, the fragments of :data:`_FRAGMENTS` and ``{logs}`` in.

    Each query using ``{logs}`` also comes without the log lines, named with :data:`_NO_LOGS`.
    """
    found = queries(_SQL_ROOT)
    loaded: dict[str, str] = {}
    for name, written in found.items():
        sql = written
        for fragment in _FRAGMENTS:
            sql = sql.replace("{" + fragment + "}", _fragment_text(found[fragment]))
        loaded[name] = sql.replace("{logs}", found["logs"])
        if "{logs}" in sql:
            loaded[name + _NO_LOGS] = sql.replace("{logs}", found["no_logs"])
    return loaded
