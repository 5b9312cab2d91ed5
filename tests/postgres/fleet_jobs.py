"""The jobs the fleet test's ``durably-web worker`` processes run (``--jobs tests.postgres.fleet_jobs``).

They are the crash tests' jobs (:mod:`tests.acceptance.crash_worker`): each step execution
commits a side-effect row to a SQLite file outside the engine's database, saying whether the
step's checkpoint was already stored when it ran. Importing this module in a worker process
opens what they record with: the SQLite file named by ``DURABLY_FLEET_EFFECTS``, and a
reader of the engine's PostgreSQL database (``DURABLY_FLEET_ENGINE``) that reconnects after
the server restarts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import psycopg

from durably_web import JobDefinition
from tests.acceptance import crash_worker

__all__ = ["EFFECTS_VARIABLE", "ENGINE_VARIABLE", "jobs"]

EFFECTS_VARIABLE = "DURABLY_FLEET_EFFECTS"
ENGINE_VARIABLE = "DURABLY_FLEET_ENGINE"
_RECONNECT_FOR = 60.0


class _Reader:
    """A psycopg connection that reconnects (for up to a minute) when the server went away."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._connection: psycopg.Connection[Any] | None = None

    def execute(self, sql: str, params: Sequence[Any]) -> psycopg.Cursor[Any]:
        deadline = time.monotonic() + _RECONNECT_FOR
        while True:
            try:
                if self._connection is None or self._connection.closed:
                    self._connection = psycopg.connect(self._url, autocommit=True)
                return self._connection.execute(sql, params)
            except psycopg.OperationalError:
                self._connection = None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

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
