"""Live views of a page's Durably: upstream's React hooks, the PyScript way.

::

    from pyscript import when
    from durably_web.client import connect, live

    durably = await connect(jobs="./jobs.py")
    job = live.job(durably, "import_csv")        # useJob: trigger, the current run's state
    live.bind_status("#status", job)             # a badge: "running", "failed: ..."
    live.bind_progress("#bar", job)              # a <progress>

    @when(job.changed)                           # anything else: a pyscript.Event
    def show(): ...

- ``useJob``: ``live.job(durably, job)``, a :class:`LiveJob`;
- ``useJobRun``: ``live.run(durably, run_id)``, a :class:`LiveRun`;
- ``useJobLogs``: ``live.logs(durably, run_id)``, a :class:`LiveLogs`;
- ``useRuns``: ``live.runs(durably, job_name=, status=, labels=, page_size=)``, a
  :class:`LiveRuns`;
- ``useRunActions``: ``live.actions(durably)``, a :class:`RunActions`.

Each view is an object whose attributes are the current state; ``view.changed`` (a
``pyscript.Event``) is triggered after every change, ``on_change=`` subscribes at once,
``await view.loaded()`` waits for the stored state, ``view.close()`` stops following. The
views read the stored state when made (a reloaded page shows its runs at once) and follow the
client's events from then on; they work with any client of ``connect()`` (worker or server
mode, MicroPython or Pyodide) and, on CPython, with
:class:`durably_web.client.local.LocalClient` over an in-process engine. See
``docs/bindings.md``.

MicroPython-safe (see :mod:`durably_web.client.values`).
"""

try:
    from collections.abc import Callable
    from typing import Any
except ImportError:  # MicroPython: annotations are never evaluated there
    pass

from durably_web.client.live.dom import (
    bind,
    bind_action,
    bind_logs,
    bind_progress,
    bind_runs_table,
    bind_status,
    bind_text,
    element,
    local_time,
    progress_text,
)
from durably_web.client.live.job_view import LiveJob
from durably_web.client.live.log_view import LiveLogs
from durably_web.client.live.observable import Changed
from durably_web.client.live.run_actions import Action, RunActions
from durably_web.client.live.run_list import LiveRuns
from durably_web.client.live.run_view import LiveRun
from durably_web.client.live.status import status_text

__all__ = [
    "Action",
    "Changed",
    "LiveJob",
    "LiveLogs",
    "LiveRun",
    "LiveRuns",
    "RunActions",
    "actions",
    "bind",
    "bind_action",
    "bind_logs",
    "bind_progress",
    "bind_runs_table",
    "bind_status",
    "bind_text",
    "element",
    "job",
    "local_time",
    "logs",
    "progress_text",
    "run",
    "runs",
    "status_text",
]


def job(client: Any, job: str, **options: Any) -> LiveJob:
    """Return a live view of ``job`` (key or name): trigger it and show its current run.

    Options: ``run_id``, ``auto_resume=True``, ``follow_latest=True``, ``max_logs``,
    ``on_change``, ``on_start``, ``on_complete``, ``on_fail``, ``on_cancel``
    (see :class:`LiveJob`).
    """
    return LiveJob(client, job, **options)


def run(client: Any, run_id: str | None, **options: Any) -> LiveRun:
    """Return a live view of one run, from its stored state on.

    Options: ``on_start``, ``on_complete``, ``on_fail``, ``on_cancel``, ``on_change``,
    ``max_logs`` (see :class:`LiveRun`).
    """
    return LiveRun(client, run_id, **options)


def logs(
    client: Any,
    run_id: str | None,
    max_logs: int | None = None,
    on_change: Callable[[Any], Any] | None = None,
) -> LiveLogs:
    """Return a live view of a run's log lines: the stored ones, then live ones."""
    return LiveLogs(client, run_id, max_logs, on_change)


def runs(client: Any, **options: Any) -> LiveRuns:
    """Return a live view of a page of runs.

    Options: ``job_name``, ``status``, ``labels``, ``page_size=10``, ``page=0``,
    ``live=True``, ``on_change`` (see :class:`LiveRuns`).
    """
    return LiveRuns(client, **options)


def actions(client: Any, on_change: Callable[[Any], Any] | None = None) -> RunActions:
    """Return the run actions of a client, each with its pending and error state."""
    return RunActions(client, on_change)
