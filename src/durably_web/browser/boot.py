"""Boot the engine inside the browser worker (called by ``web/runtime/runtime.mjs``).

By the time :func:`boot` runs, the worker has installed the OPFS VFS, booted Pyodide (or
restored it from a memory snapshot, after which it called :func:`refresh_after_restore`),
imported pydantic and durably_web and usually the page's job module (:func:`import_jobs`,
so that a snapshot holds it), registered the SQLite bridge as the JS module ``durably_sqlite``,
written the page's job module into the file system and installed any extra packages. This
opens the database, imports the job module, registers its jobs, migrates, creates the page's
host listening for the event types the page asked for in its init config, reclaims every
leased run at once (the OPFS pool is exclusive: whoever leased them is dead) and starts the
worker loop. Listening first is what lets the page see the ``run:start`` and progress of a
run reclaimed at boot: the engine claims it before the page could send a ``listen`` request.
"""

from __future__ import annotations

import importlib
import random
import sys
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

from durably_web.adapters.pyodide import PyodideConnection
from durably_web.browser.host import Host, Post
from durably_web.browser.stdlib import refetch_after_restore
from durably_web.core.factory import create_durably
from durably_web.errors import ValidationError
from durably_web.job import build_deferred_adapters, deferred_adapters, jobs_in_module
from durably_web.storage.queries import migrations, queries, schema
from durably_web.storage.url import open_store

__all__ = ["PRAGMAS", "boot", "import_jobs", "prepare_snapshot", "refresh_after_restore"]

# The SQLite store's SQL, read (and cached) now: the worker imports this module before it
# takes its memory snapshot, so a restored engine finds the files read and the reader
# modules imported (~25 ms of every warm start in Pyodide otherwise, bench/BOOT-NOTES.md).
queries()
migrations()
schema()

PRAGMAS = {
    # WAL needs exclusive locking mode on the sahpool VFS (no shared memory), set first.
    "NORMAL": (
        "PRAGMA locking_mode = EXCLUSIVE",
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
    ),
    "FULL": ("PRAGMA journal_mode = DELETE", "PRAGMA synchronous = FULL"),
    # WAL with a flush at every commit: the same settings as CPython's
    # ``sqlite:///...?synchronous=FULL`` (used by the benchmarks' FULL tables).
    "WAL_FULL": (
        "PRAGMA locking_mode = EXCLUSIVE",
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = FULL",
    ),
}
"""The connection pragmas of each ``durability`` setting of :func:`boot` (the benchmarks run
the engine with the same ones)."""


async def boot(
    bridge: Any,
    post: Post,
    *,
    database: str,
    jobs_module: str | None,
    module_dir: str,
    durability: str = "NORMAL",
    options: Mapping[str, Any] | None = None,
    listen: Iterable[str] = (),
) -> Host:
    """Open the database, import the jobs, start the engine; return the page's host.

    Args:
        bridge: the ``durably_sqlite`` JS module.
        post: sends JSON text to the page.
        database: the database file in the OPFS pool (``:memory:`` under Node).
        jobs_module: the module name of the page's jobs, written into ``module_dir``.
        module_dir: where the worker wrote the job module (prepended to ``sys.path``).
        durability: ``"NORMAL"`` (WAL, survives a killed tab), ``"FULL"`` (rollback journal,
            fsync per commit) or ``"WAL_FULL"`` (WAL, fsync per commit).
        options: further ``create_durably`` options from the page.
        listen: event types to forward to the page from the start (as a ``listen`` request).

    """
    pragmas = PRAGMAS.get(durability.upper())
    if pragmas is None:
        raise ValidationError(f"durability must be NORMAL, FULL or WAL_FULL, got {durability!r}")
    connection = PyodideConnection(bridge, database, pragmas if database != ":memory:" else ())
    # The OPFS pool is exclusive to this worker: no other connection writes the database.
    store, _ = open_store(connection, exclusive=database != ":memory:")
    durably = create_durably(store, **dict(options or {}))
    if jobs_module:
        durably.register(jobs_in_module(import_jobs(jobs_module, module_dir)))
    await durably.migrate()
    host = Host(durably, post)
    host.listen(list(listen))  # before any run is reclaimed or claimed
    await durably.release_all_leases()
    durably.start()
    return host


def import_jobs(jobs_module: str, module_dir: str) -> ModuleType:
    """Import the page's job module from ``module_dir`` (at most once: later calls are free).

    The worker imports it before taking a memory snapshot, so a restored boot has it already
    (``web/runtime/boot.mjs``); :func:`boot` imports it again, which then costs nothing.
    Its jobs' pydantic adapters are left unbuilt (:func:`durably_web.job.deferred_adapters`):
    a cold boot builds them when a run is first triggered, after the engine is ready, and a
    boot that takes a snapshot builds them first (:func:`prepare_snapshot`).

    Raises:
        ValidationError: the module failed to import (the message names the module and error).

    """
    if module_dir not in sys.path:
        sys.path.insert(0, module_dir)
    try:
        with deferred_adapters():
            return importlib.import_module(jobs_module)
    except Exception as exc:
        raise ValidationError(
            f"the job module {jobs_module!r} failed to import: {type(exc).__name__}: {exc}"
        ) from exc


def prepare_snapshot() -> None:
    """Do now what the imports left for later, so that a memory snapshot taken next holds it.

    The worker calls this after the imports and before it takes a snapshot
    (``web/runtime/boot.mjs``): a restored boot then finds pydantic and its adapter machinery
    imported and the job module's adapters built, where a cold boot that takes no snapshot
    imports and builds them on first use (the engine imports pydantic where it validates,
    :func:`durably_web.job.build_deferred_adapters`).
    """
    importlib.import_module("pydantic.type_adapter")  # with pydantic.main
    build_deferred_adapters()


def refresh_after_restore() -> None:
    """Make an interpreter restored from a memory snapshot (``web/runtime/snapshot.mjs``) its own.

    The snapshot froze state that must differ per boot: the ``random`` module's generator
    (every restored worker would draw the same numbers); and files are not in a snapshot: the
    rest of the stdlib is fetched again if it had been (:mod:`durably_web.browser.stdlib`).
    (Pyodide's ``time`` has no
    ``tzset``: ``time.localtime()`` asks JavaScript at each call, only ``time.timezone`` and
    ``time.tzname`` keep the values of the boot that made the snapshot; ``os.urandom`` asks
    the browser each call.) Then validate a value with pydantic_core: that runs
    pydantic_core's WebAssembly, which a snapshot restored at the wrong addresses breaks, so
    the worker learns it here and boots normally instead of failing later inside a job.

    Raises:
        RuntimeError: the restored interpreter does not work.

    """
    random.seed()
    refetch_after_restore()
    from pydantic_core import SchemaValidator

    if SchemaValidator({"type": "int"}).validate_python("3") != 3:
        raise RuntimeError("pydantic_core gives wrong results after the snapshot restore")
