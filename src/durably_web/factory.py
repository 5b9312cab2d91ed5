"""`create_durably`: open a database (URL, Store or Connection) and build the engine.

This is where a database URL becomes an adapter or a store; the engine itself never imports
one. ``sqlite://`` URLs open the SQLite store, ``postgresql://`` URLs the PostgreSQL store (the
``postgres`` extra).
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from durably_web.clock import Clock, SystemClock
from durably_web.durably import Durably
from durably_web.errors import StorageError, ValidationError
from durably_web.ids import new_ulid
from durably_web.job import JobDefinition
from durably_web.options import DEFAULT_UNKNOWN_JOB_GRACE, Options
from durably_web.storage.connection import Connection
from durably_web.storage.store import SQLiteStore

__all__ = ["create_durably", "open_connection"]

_URL_OPTIONS = {"synchronous", "journal_mode", "busy_timeout"}
_CONNECTION_METHODS = (
    "execute",
    "query",
    "execute_script",
    "run_batch",
    "data_version",
    "transaction",
)


def open_connection(url: str) -> Connection:
    """Open a CPython ``sqlite3`` connection from ``sqlite:///path`` or ``sqlite:///:memory:``.

    Query parameters set ``synchronous`` (OFF/NORMAL/FULL/EXTRA), ``journal_mode`` and
    ``busy_timeout`` (seconds): ``sqlite:///app.db?synchronous=FULL``. Four slashes give an
    absolute path: ``sqlite:////var/lib/app.db``.

    Raises:
        ValidationError: the URL is not a ``sqlite://`` URL or has unknown options.

    """
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


def create_durably(
    database: str | SQLiteStore | Connection = "sqlite:///:memory:",
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
    jobs: dict[str, JobDefinition[Any, Any]] | None = None,
    clock: Clock | None = None,
    worker_id: str | None = None,
) -> Durably:
    """Create a Durably instance. Call ``await durably.init()`` to migrate and start it.

    Args:
        database: ``"sqlite:///local.db"``, ``"sqlite:///:memory:"``,
            ``"postgresql://user:password@host:5432/db"`` (see ``docs/postgresql.md``), a
            Store, or a Connection (e.g. the browser worker's OPFS connection).
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
    )
    if worker_id is not None and (not isinstance(worker_id, str) or not worker_id):
        raise ValidationError(f"worker_id must be a non-empty string, got {worker_id!r}")
    owns = True
    if isinstance(database, str) and urlsplit(database).scheme in _POSTGRES_SCHEMES:
        # The PostgreSQL store has the SQLite store's methods; the Store protocol of issue 15
        # will type both, until then the engine is typed against SQLiteStore.
        store = cast(SQLiteStore, _open_postgres(database))
    elif isinstance(database, str):
        store = SQLiteStore(open_connection(database))
    elif isinstance(database, SQLiteStore) or all(
        hasattr(database, name) for name in _STORE_METHODS
    ):  # a Store: SQLite's, or another (PostgreSQL's), until issue 15's protocol names it
        store, owns = cast(SQLiteStore, database), False
    elif all(hasattr(database, name) for name in _CONNECTION_METHODS):
        store, owns = SQLiteStore(database), False
    else:
        raise ValidationError(
            "database must be a sqlite:/// or postgresql:// URL, a Store or a Connection, "
            f"got {database!r}"
        )
    durably = Durably(
        store,
        options,
        clock or SystemClock(),
        worker_id or f"worker_{new_ulid()}",
        owns_store=owns,
    )
    if jobs:
        durably.register(jobs)
    _wake_on_remote_triggers(durably)
    return durably


_POSTGRES_SCHEMES = ("postgresql", "postgres")
_STORE_METHODS = ("migrate", "enqueue", "claim_next", "checkpoint_step", "complete_run")


def _open_postgres(url: str) -> Any:
    try:
        from durably_web.storage.postgres import open_postgres_store
    except ImportError as exc:
        raise StorageError(
            f"PostgreSQL support is not installed ({exc}): pip install 'durably-web[postgres]'"
        ) from None
    return open_postgres_store(url)


def _wake_on_remote_triggers(durably: Durably) -> None:
    """Wake the idle worker when another process makes a run of one of its jobs claimable.

    Only stores that can tell (PostgreSQL, through NOTIFY) offer ``on_ready``; on SQLite the
    worker finds such runs by polling. ``None`` means notifications may have been missed.
    """
    on_ready = getattr(durably.store, "on_ready", None)
    if on_ready is None:
        return
    worker = durably.worker

    def ready(job_name: str | None) -> None:
        if job_name is None or job_name in worker.jobs:
            worker.wake()

    on_ready(ready)
