"""Runtime: execute one claimed run from the top to its outcome.

Completed steps replay from their checkpoints; new steps run and are checkpointed; the
outcome (completed with validated output, or failed with the error) is written with the same
lease fence. A cancellation or a lost lease ends the attempt without writing anything more;
a worker stopped mid-run hands the run back to the queue at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

import pydantic

from durably_web.clock import Clock
from durably_web.errors import LeaseLost, RunCancelled, ValidationError
from durably_web.events import EventBus, RunCancel, RunComplete, RunFail, RunStart
from durably_web.job import JobDefinition
from durably_web.json_value import escape_surrogates
from durably_web.models import Run, wire_time
from durably_web.step import StepContext, _message
from durably_web.storage.store import SQLiteStore
from durably_web.validation import dump_json, format_pydantic_error, parse, to_json_value

__all__ = ["Execution"]

Spawn = Callable[[Coroutine[Any, Any, None], str], None]
Report = Callable[[BaseException, str], None]


class _InvalidOutput(Exception):
    pass


class Execution:
    """One attempt at one claimed run.

    Args:
        run: the run as claimed; its ``lease_generation`` fences every write.
        job: the job definition to call.
        store / bus / clock: the engine's services.
        preserve_steps: keep step and log rows after the run completes.
        persist_logs: write ``step.log`` lines to the database.
        spawn: start a supervised background task (used for progress flushes).
        report: route an unexpected internal error to ``worker:error``.

    """

    def __init__(
        self,
        run: Run,
        job: JobDefinition[Any, Any],
        *,
        store: SQLiteStore,
        bus: EventBus,
        clock: Clock,
        preserve_steps: bool,
        persist_logs: bool,
        spawn: Spawn,
        report: Report,
    ) -> None:
        self.run = run
        self.job = job
        self.store = store
        self.bus = bus
        self.clock = clock
        self.preserve_steps = preserve_steps
        self.persist_logs = persist_logs
        self.spawn = spawn
        self._report = report
        self.failed_step_name: str | None = None
        self.cancel_announced = False
        self.steps_completed = 0
        self.step: StepContext | None = None

    def report(self, error: BaseException, context: str) -> None:
        """Route an internal error of this execution to ``worker:error``."""
        self._report(error, context)

    def abort(self, reason: str) -> None:
        """Abort the job's signal (``cancelled``, ``lease-lost`` or ``stopped``)."""
        if self.step is not None:
            self.step.signal.abort(reason)

    async def execute(self) -> None:
        """Run the job to its outcome; never raises except ``asyncio.CancelledError``."""
        run, bus, clock, store = self.run, self.bus, self.clock, self.store
        started = clock.now()
        checkpoints = await store.completed_steps(run.id)
        completed = {
            name: None if step.output_json is None else json.loads(step.output_json)
            for name, step in checkpoints.items()
        }
        current_index = max((step.index + 1 for step in checkpoints.values()), default=0)
        step = self.step = StepContext(self, completed, current_index)
        bus.emit(
            RunStart,
            run_id=run.id,
            job_name=run.job_name,
            labels=run.labels,
            input=run.input,
            lease_owner=run.lease_owner or "",
            lease_expires_at=wire_time(run.lease_expires_at) or "",
        )
        try:
            payload = parse(self.job.input_adapter, run.input, f"input of run {run.id}")
            result = await self.job.call(step, payload)
            step.throw_if_aborted()
            output_json = self._output_json(result)
            await store.complete_run(
                run.id,
                run.lease_generation,
                output_json,
                clock.now(),
                step.pending,
                delete_steps=not self.preserve_steps,
            )
        except RunCancelled:
            self._announce_cancel()
            return
        except LeaseLost:
            return
        except asyncio.CancelledError:
            step.signal.abort("stopped")
            await self._release()
            raise
        except _InvalidOutput as exc:
            self.failed_step_name = None
            await self._fail(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - any job error fails the run
            await self._fail(_message(exc))
            return
        bus.emit(
            RunComplete,
            run_id=run.id,
            job_name=run.job_name,
            labels=run.labels,
            output=None if output_json is None else json.loads(output_json),
            duration=int((clock.now() - started) * 1000),
        )

    def _output_json(self, result: Any) -> str | None:
        adapter = self.job.output_adapter
        what = f"output of job {self.job.name!r}"
        try:
            if adapter is None:
                return None if result is None else dump_json(result, what)
            data = to_json_value(adapter, adapter.validate_python(result), what)
            return None if data is None else dump_json(data, what)
        except pydantic.ValidationError as exc:
            raise _InvalidOutput(f"Invalid output: {format_pydantic_error(exc)}") from None
        except ValidationError as exc:
            raise _InvalidOutput(f"Invalid output: {exc}") from None

    async def _fail(self, error: str) -> None:
        error = escape_surrogates(error)
        run = self.run
        assert self.step is not None
        try:
            await self.store.fail_run(
                run.id, run.lease_generation, error, self.clock.now(), self.step.pending
            )
        except RunCancelled:
            self._announce_cancel()
            return
        except LeaseLost:
            return
        self.bus.emit(
            RunFail,
            run_id=run.id,
            job_name=run.job_name,
            labels=run.labels,
            error=error,
            failed_step_name=self.failed_step_name or "unknown",
        )

    async def _release(self) -> None:
        run = self.run
        assert self.step is not None
        try:
            await self.store.release_lease(
                run.id, run.lease_generation, self.clock.now(), self.step.pending
            )
        except Exception as exc:  # noqa: BLE001 - best effort: the lease expires anyway
            self.report(exc, "release-lease")

    def _announce_cancel(self) -> None:
        """Emit ``run:cancel`` here when the cancellation came from another process."""
        if self.cancel_announced:
            return
        self.cancel_announced = True
        run = self.run
        self.bus.emit(RunCancel, run_id=run.id, job_name=run.job_name, labels=run.labels)
