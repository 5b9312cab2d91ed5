"""`create_durably`: open a database (URL, Store or Connection) and build the engine.

The database argument is handed to :func:`durably_web.storage.url.open_store`, which picks the
store and the adapter; the engine itself never imports one.
"""

from __future__ import annotations

from typing import Any

from durably_web.clock import Clock, SystemClock
from durably_web.core.batching import groups_checkpoints
from durably_web.core.durably import Durably
from durably_web.errors import ValidationError
from durably_web.ids import new_ulid
from durably_web.job import JobDefinition
from durably_web.json_value import check_text
from durably_web.options import DEFAULT_UNKNOWN_JOB_GRACE, CheckpointMode, Options
from durably_web.storage.base import Store
from durably_web.storage.connection import Connection
from durably_web.storage.url import is_postgres_url, open_store

__all__ = ["create_durably"]


def create_durably(
    database: str | Store | Connection = "sqlite:///:memory:",
    *,
    polling_interval: float = 1.0,
    lease_renew_interval: float | None = None,
    lease_duration: float | None = None,
    heartbeat_interval: float | None = None,
    stale_threshold: float | None = None,
    max_concurrent_runs: int = 1,
    preserve_steps: bool = False,
    persist_logs: bool = True,
    retain_runs: str | None = None,
    unknown_job_grace: float | None = DEFAULT_UNKNOWN_JOB_GRACE,
    labels: Any = None,
    checkpoint: CheckpointMode = "each",
    checkpoint_max_delay: float = 0.01,
    checkpoint_max_steps: int = 100,
    jobs: dict[str, JobDefinition[Any, Any]] | None = None,
    clock: Clock | None = None,
    worker_id: str | None = None,
) -> Durably:
    """Create a Durably instance. Call ``await durably.init()`` to migrate and start it.

    Args:
        database: ``"sqlite:///local.db"``, ``"sqlite:///:memory:"``, a Store, or a
            Connection (e.g. the browser worker's OPFS connection).
        polling_interval: seconds an idle worker waits before looking for work written by
            another process (a trigger in this process wakes it at once).
        lease_renew_interval: seconds between lease renewals (default 5).
        lease_duration: seconds a lease lasts unrenewed before another worker may reclaim
            the run (default 30).
        heartbeat_interval: the seed's name for ``lease_renew_interval``.
        stale_threshold: the seed's name for ``lease_duration``.
        max_concurrent_runs: runs this instance executes at once, 1-1000.
        preserve_steps: keep step and log rows after a run completes.
        persist_logs: store ``step.log`` lines (they are emitted either way).
        retain_runs: purge finished runs older than this (``"7d"``, ``"12h"``, ``"30m"``).
        unknown_job_grace: seconds a run of a job this instance does not register may wait
            unclaimed before the worker fails it with ``Unknown job: <name>`` (default 300;
            0 fails it at the first check, as upstream does). ``None`` leaves runs of other
            jobs alone: for a worker that serves only some of a shared database's jobs.
        labels: a pydantic model (or type) that trigger labels must satisfy.
        checkpoint: ``"each"`` (default) commits every step before ``step.run`` returns;
            ``"batched"`` groups checkpoints into one transaction for throughput: a crash
            may run the steps of the last uncommitted group again (at most
            ``checkpoint_max_steps`` steps, at most ``checkpoint_max_delay`` seconds of
            them), never a step whose checkpoint committed. A job's own ``checkpoint=``
            (:func:`~durably_web.define_job`) wins.
        checkpoint_max_delay: seconds a completed step may wait uncommitted when batched.
        checkpoint_max_steps: most completed steps waiting uncommitted when batched.
        jobs: job definitions to register right away.
        clock: a time source (tests pass :class:`durably_web.testing.FakeClock`).
        worker_id: the lease owner name (default ``worker_<ULID>``).

    Raises:
        ValidationError: an option or the database URL is invalid.

    """
    options = Options.build(
        polling_interval=polling_interval,
        lease_renew_interval=lease_renew_interval,
        lease_duration=lease_duration,
        heartbeat_interval=heartbeat_interval,
        stale_threshold=stale_threshold,
        max_concurrent_runs=max_concurrent_runs,
        preserve_steps=preserve_steps,
        persist_logs=persist_logs,
        retain_runs=retain_runs,
        unknown_job_grace=unknown_job_grace,
        labels=labels,
        checkpoint=checkpoint,
        checkpoint_max_delay=checkpoint_max_delay,
        checkpoint_max_steps=checkpoint_max_steps,
    )
    if worker_id is not None and (not isinstance(worker_id, str) or not worker_id):
        raise ValidationError(f"worker_id must be a non-empty string, got {worker_id!r}")
    if worker_id is not None:
        check_text(worker_id, "worker_id")  # stored as the lease owner
    postgres = is_postgres_url(database)
    if options.checkpoint.batched and (
        postgres or (isinstance(database, Store) and not groups_checkpoints(database))
    ):  # refused before a store is opened
        raise ValidationError(
            "checkpoint='batched' needs a store that groups checkpoints (the SQLite store); "
            f"{'PostgreSQL' if postgres else type(database).__name__} commits each "
            "checkpoint: use checkpoint='each'"
        )
    store, owns = open_store(database)
    durably = Durably(
        store,
        options,
        clock or SystemClock(),
        worker_id or f"worker_{new_ulid()}",
        owns_store=owns,
    )
    if jobs:
        durably.register(jobs)
    return durably
