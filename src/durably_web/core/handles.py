"""Typed job handles: ``durably.jobs.<key>.trigger(...)`` and friends.

:class:`BaseJobHandle` is the job-handle logic every Python handle shares (a trigger's
arguments, ``batch_trigger`` items, ``trigger_and_wait``); :class:`JobHandle` runs it on a local
engine, :class:`~durably_web.http_client.HttpJobHandle` on a server.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from durably_web.core.trigger import TriggerItem
from durably_web.job import JobDefinition
from durably_web.models import Run
from durably_web.validation import parse

if TYPE_CHECKING:
    from durably_web.core.durably import Durably

__all__ = ["BaseJobHandle", "Engine", "JobHandle", "JobResult", "Jobs"]

InputT = TypeVar("InputT")
OutputT = TypeVar("OutputT")


@dataclass(frozen=True, slots=True)
class JobResult(Generic[OutputT]):
    """What ``trigger_and_wait`` returns.

    Attributes:
        id: the run id.
        output: the job's output, parsed into the job's output type when it has one.
        run: the completed run record.

    """

    id: str
    output: OutputT
    run: Run

    @property
    def disposition(self) -> str | None:
        """How the trigger resolved: ``created``, ``idempotent`` or ``coalesced``."""
        return self.run.disposition


class Engine(Protocol):
    """What a job handle needs of the engine it triggers on (a local one, or a server's)."""

    async def wait_for_run(
        self,
        run_id: str,
        *,
        timeout: float | None = None,
        on_progress: Callable[[Any], Any] | None = None,
        on_log: Callable[[Any], Any] | None = None,
    ) -> Run:
        """Wait until the run completes and return it."""
        ...

    async def get_runs(
        self,
        *,
        status: str | Sequence[str] | None = None,
        job_name: str | Sequence[str] | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Run]:
        """List runs, newest first."""
        ...


class BaseJobHandle(ABC, Generic[InputT, OutputT]):
    """Trigger one job and wait for its runs, wherever the engine runs.

    Subclasses say how runs are enqueued (:meth:`_enqueue`); waiting and listing go to the
    engine (``self._engine``), whose methods have the same arguments everywhere.
    """

    name: str
    _engine: Engine

    @property
    def definition(self) -> JobDefinition[InputT, OutputT] | None:
        """The job's definition, where it is known (a local engine's handles)."""
        return None

    async def trigger(
        self,
        input: InputT | Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        concurrency_key: str | None = None,
        labels: Mapping[str, str] | None = None,
        coalesce: Literal["skip"] | None = None,
        key_scope: str | None = None,
    ) -> Run:
        """Enqueue a run; return it with its ``disposition``.

        Args:
            input: a dict or an instance of the job's input type; validated before storing.
            idempotency_key: a second trigger with the same key returns the first run
                (``disposition="idempotent"``) whatever its status.
            concurrency_key: runs sharing a key never execute at once (across jobs), and a
                job has at most one pending run per key.
            labels: ``str → str`` tags for filtering and scoping.
            coalesce: ``"skip"`` (needs ``concurrency_key``) returns the pending run holding
                the key (``disposition="coalesced"``) instead of raising ``ConflictError``.
            key_scope: a namespace for both keys: triggers with another scope (or none)
                never meet these keys (a multi-tenant app passes the tenant; see
                :func:`durably_web.core.trigger.scoped_key`). Local engines only: a server
                decides its callers' scope.

        Raises:
            ValidationError: invalid input, labels or options; nothing is stored.
            ConflictError: a pending run holds the concurrency key and ``coalesce`` is unset.

        """
        item = TriggerItem(input, idempotency_key, concurrency_key, labels, coalesce, key_scope)
        return (await self._enqueue([item], batch=False))[0]

    async def batch_trigger(
        self, items: Sequence[InputT | Mapping[str, Any] | TriggerItem]
    ) -> list[Run]:
        """Validate every item, then enqueue all in one transaction (all or nothing).

        Args:
            items: plain inputs, or :class:`TriggerItem` for per-item options.

        """
        prepared = [item if isinstance(item, TriggerItem) else TriggerItem(item) for item in items]
        return await self._enqueue(prepared, batch=True)

    async def trigger_and_wait(
        self,
        input: InputT | Mapping[str, Any],
        *,
        timeout: float | None = None,
        on_progress: Callable[[Any], Any] | None = None,
        on_log: Callable[[Any], Any] | None = None,
        idempotency_key: str | None = None,
        concurrency_key: str | None = None,
        labels: Mapping[str, str] | None = None,
        coalesce: Literal["skip"] | None = None,
        key_scope: str | None = None,
    ) -> JobResult[OutputT]:
        """Trigger, then wait for the run to complete; see :meth:`trigger`.

        Raises:
            RunFailed / RunCancelled: the run did not complete.
            TimeoutError: it did not finish within ``timeout`` seconds.

        """
        run = await self.trigger(
            input,
            idempotency_key=idempotency_key,
            concurrency_key=concurrency_key,
            labels=labels,
            coalesce=coalesce,
            key_scope=key_scope,
        )
        done = await self._engine.wait_for_run(
            run.id, timeout=timeout, on_progress=on_progress, on_log=on_log
        )
        output = done.output
        adapter = None if self.definition is None else self.definition.output_adapter
        if adapter is not None:
            output = parse(adapter, output, f"output of run {run.id}")
        return JobResult(run.id, output, done.with_disposition(run.disposition or "created"))

    async def get_runs(self, **filters: Any) -> list[Run]:
        """``get_runs`` restricted to this job."""
        return await self._engine.get_runs(job_name=self.name, **filters)

    @abstractmethod
    async def _enqueue(self, items: list[TriggerItem], *, batch: bool) -> list[Run]:
        """Enqueue the items (all or nothing); return the runs with their dispositions."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class JobHandle(BaseJobHandle[InputT, OutputT]):
    """Trigger and inspect one job registered on a local engine."""

    def __init__(self, durably: Durably, definition: JobDefinition[InputT, OutputT]) -> None:
        self._durably = durably
        self._engine = durably
        self._definition = definition
        self.name = definition.name

    @property
    def definition(self) -> JobDefinition[InputT, OutputT]:
        """The job's definition."""
        return self._definition

    async def _enqueue(self, items: list[TriggerItem], *, batch: bool) -> list[Run]:
        return await self._durably._enqueue(self._definition, items, batch=batch)


H = TypeVar("H", bound=BaseJobHandle[Any, Any])


class Jobs(Generic[H]):
    """The registered jobs by key: ``jobs.import_csv`` or ``jobs["import_csv"]``."""

    def __init__(self) -> None:
        self._handles: dict[str, H] = {}

    def _add(self, key: str, handle: H) -> None:
        self._handles[key] = handle

    def get(self, key: str) -> H | None:
        """Return the handle registered under ``key``, or None."""
        return self._handles.get(key)

    def __getattr__(self, key: str) -> H:
        handles = self.__dict__.get("_handles", {})
        if key in handles:
            return handles[key]  # type: ignore[no-any-return]
        raise AttributeError(f"no job registered under {key!r}; registered: {sorted(handles)}")

    def __getitem__(self, key: str) -> H:
        try:
            return self._handles[key]
        except KeyError:
            raise KeyError(f"no job registered under {key!r}") from None

    def __contains__(self, key: object) -> bool:
        return key in self._handles

    def __iter__(self) -> Iterator[str]:
        return iter(self._handles)

    def __len__(self) -> int:
        return len(self._handles)

    def items(self) -> list[tuple[str, H]]:
        """Return ``(key, handle)`` pairs."""
        return list(self._handles.items())
