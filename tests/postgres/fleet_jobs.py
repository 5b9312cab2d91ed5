"""The jobs the fleet test's ``durably-web worker`` processes run (``--jobs tests.postgres.fleet_jobs``).

They are the crash tests' jobs (:mod:`tests.acceptance.crash_worker`): each step execution
commits a side-effect row to a SQLite file outside the engine's database, saying whether the
step's checkpoint was already stored when it ran. Importing this module in a worker process
opens what they record with: the SQLite file named by ``DURABLY_FLEET_EFFECTS``, and a
reader of the engine's PostgreSQL database (``DURABLY_FLEET_ENGINE``).

The reader is synchronous, inside an async step: it must never wait for the server, or it
holds the worker's event loop, and with it a pooled connection half-way through its startup
(the server then waits for that connection's startup packet, up to ``authentication_timeout``,
before it can finish a restart: a first version of this reader retried for a minute and
stalled the restart that long). While the server is away it answers "no checkpoint" at once
and prints :data:`UNCHECKED` on stderr, which the test counts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import psycopg

from durably_web import JobDefinition
from tests.acceptance import crash_worker

__all__ = ["EFFECTS_VARIABLE", "ENGINE_VARIABLE", "UNCHECKED", "jobs"]

EFFECTS_VARIABLE = "DURABLY_FLEET_EFFECTS"
ENGINE_VARIABLE = "DURABLY_FLEET_ENGINE"
UNCHECKED = "fleet: a side effect's checkpoint could not be checked (server away)"


class _NoRow:
    def fetchone(self) -> None:
        return None


class _Reader:
    """A psycopg connection, made again when the server went away; never waits for it."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._connection: psycopg.Connection[Any] | None = None

    def execute(self, sql: Any, params: Sequence[Any]) -> psycopg.Cursor[Any] | _NoRow:
        try:
            if self._connection is None or self._connection.closed:
                self._connection = psycopg.connect(self._url, autocommit=True, connect_timeout=2)
            return self._connection.execute(sql, params)
        except psycopg.OperationalError:
            self._connection = None
            print(UNCHECKED, file=sys.stderr, flush=True)
            return _NoRow()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


jobs: dict[str, JobDefinition[Any, Any]] = {
    name: crash_worker.JOBS[name]
    for name in ("crash_steps", "chatty", "interval_a", "interval_b", "die_before_outcome")
}

if EFFECTS_VARIABLE in os.environ:  # a worker process: record side effects
    crash_worker._effects = crash_worker.open_effects(os.environ[EFFECTS_VARIABLE])
    crash_worker._engine_reader = _Reader(os.environ[ENGINE_VARIABLE])
    crash_worker._placeholder = "%s"
