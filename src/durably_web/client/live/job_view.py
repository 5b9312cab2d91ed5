"""``live.job(durably, "import_csv")``: trigger a job and show its current run, kept up to date.

Upstream's ``useJob``: ``trigger`` / ``trigger_and_wait``, and the state of the run it tracks
(everything of :class:`~durably_web.client.live.run_view.LiveRun`), ``current_run_id`` and
``reset()``.

- **auto-resume**: when the view is made it picks up the job's running run (else a waiting
  one, on engines that have them, else the oldest-queued... the newest pending run, as
  upstream), from its stored state: a reloaded page shows the run's stored progress at once.
- **follow-latest**: when a run of the job is triggered, coalesced or started anywhere (this
  page, another tab, a server's other clients), the view switches to it.

MicroPython-safe (see :mod:`durably_web.client.values`).
"""

try:
    from collections.abc import Callable
    from typing import Any
except ImportError:  # MicroPython: annotations are never evaluated there
    pass

from durably_web.client.dispatch import spawn
from durably_web.client.live.hub import hub_for
from durably_web.client.live.run_view import LiveRun
from durably_web.client.values import Record
from durably_web.errors import ValidationError

__all__ = ["LiveJob", "find_job"]

_FOLLOWED = {"run:trigger": "pending", "run:coalesced": "pending", "run:start": "leased"}


def find_job(client: Any, job: str) -> Any:
    """Return the client's handle of ``job``: a registration key or a job name."""
    try:
        return client.jobs[job]
    except KeyError:
        pass
    for key in client.jobs:
        if client.jobs[key].name == job:
            return client.jobs[key]
    known = ", ".join(sorted(client.jobs))
    raise ValueError(f"no job {job!r} (by key or name); the client knows: {known}")


class LiveJob(LiveRun):
    """A job's current run, kept up to date, and the job's triggers.

    Args:
        client: the page's client (``await connect(...)``).
        job: the job's registration key (``"import_csv"``) or name (``"import-csv"``).
        run_id: start with this run (no auto-resume then).
        auto_resume: pick up the job's running (else waiting, else pending) run on load.
        follow_latest: switch to each run of the job that is triggered or starts.
        max_logs, on_change, on_start, on_complete, on_fail, on_cancel: as for
            :class:`~durably_web.client.live.run_view.LiveRun`.

    Attributes:
        job_name: the job's name (events and runs carry it).
        triggering: True while a :meth:`trigger` waits for the engine's answer.

    """

    def __init__(
        self,
        client: Any,
        job: str,
        run_id: str | None = None,
        auto_resume: bool = True,
        follow_latest: bool = True,
        max_logs: int | None = None,
        on_change: Callable[[Any], Any] | None = None,
        on_start: Callable[[Any], Any] | None = None,
        on_complete: Callable[[Any], Any] | None = None,
        on_fail: Callable[[Any], Any] | None = None,
        on_cancel: Callable[[Any], Any] | None = None,
    ) -> None:
        self.handle = find_job(client, job)
        self.job_name: str = self.handle.name
        self.follow_latest = follow_latest
        self.triggering = False
        super().__init__(
            client, run_id, on_start, on_complete, on_fail, on_cancel, on_change, max_logs
        )
        if follow_latest:
            types = ("run:trigger", "run:coalesced")  # run:start: LiveRun watches it already
            self._unwatch.append(hub_for(client).watch(types, self._on_event))
        if auto_resume and run_id is None:
            self._begin()
            spawn(self._resume(self._generation), "finding the running run of " + self.job_name)

    @property
    def current_run_id(self) -> str | None:
        """The id of the run shown (upstream's ``currentRunId``)."""
        return self.run_id

    async def trigger(self, input: Any, **options: Any) -> Record:
        """Trigger the job and show the new run; return it (see ``jobs.<key>.trigger``).

        Options are the trigger's: ``idempotency_key``, ``concurrency_key``, ``labels``,
        ``coalesce``. The view keeps showing the previous run until the engine answers
        (``triggering`` is True meanwhile); a refused input raises and changes nothing.

        Raises:
            ValidationError: invalid input or options; nothing was stored.
            ConflictError: a pending run holds the concurrency key.

        """
        self.triggering = True
        self._notify()
        try:
            run: Record = await self.handle.trigger(input, **options)
        finally:
            self.triggering = False
        if run.id != self.run_id:
            self.follow(run.id, run)
        self.refresh()  # events of the run that came before the answer were not followed
        return run

    async def trigger_and_wait(
        self, input: Any, timeout: float | None = None, **options: Any
    ) -> Record:
        """Trigger (see :meth:`trigger`), then return the completed run.

        Raises:
            ValidationError: invalid input or options; nothing was stored.
            RunFailed / RunCancelled: the run did not complete.
            TimeoutError: it did not finish within ``timeout`` seconds.

        """
        run = await self.trigger(input, **options)
        done: Record = await self.client.wait_for_run(run.id, timeout=timeout)
        return done

    def reset(self) -> None:
        """Show no run until the next trigger (or followed run)."""
        self.follow(None)

    def _on_event(self, event: Any) -> None:
        hint = _FOLLOWED.get(event.type)
        if hint is not None and event.job_name == self.job_name and event.run_id != self.run_id:
            if not self.follow_latest:
                return
            self._switch(event.run_id, None, hint)
            return
        if event.type == "run:delete" and event.run_id == self.run_id and event.run_id:
            self.reset()
            return
        super()._on_event(event)

    async def _resume(self, generation: int) -> None:
        try:
            run = await self._find_active()
            if run is not None and generation == self._generation and not self.triggering:
                self.follow(run.id, run)
        finally:
            self._end()

    async def _find_active(self) -> Record | None:
        """Return the job's newest running run, else waiting run, else pending run."""
        hub = hub_for(self.client)
        for status in ("leased", "waiting", "pending"):
            if "status:" + status in hub.unsupported:
                continue
            try:
                runs = await self.client.get_runs(job_name=self.job_name, status=status, limit=1)
            except ValidationError:
                if status != "waiting":
                    raise
                hub.unsupported.add("status:waiting")  # an engine without durable waits
                continue
            if runs:
                found: Record = runs[0]
                return found
        return None
