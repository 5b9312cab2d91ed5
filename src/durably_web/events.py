"""Events: what the engine tells listeners, in Python and on the wire.

Each event is a frozen dataclass with ``type``, ``run_id``, ``job_name``, ``labels``,
``timestamp`` and ``sequence`` (one counter per instance, starting at 1; snapshots of a run's
current state carry 0). :meth:`Event.to_wire` gives upstream Durably's camelCase JSON, omitting
keys whose value is unset (``output``, ``data``) as upstream does.

``run:start`` is upstream 0.15's ``run:leased`` under the name this project's contract uses:
it is sent as ``run:leased`` on the wire so upstream clients understand it, and ``on()``
accepts either name. ``run:retry`` is this project's own (in-place retry has no upstream
counterpart), and so are ``run:wait``, ``run:signal`` and ``step:retry`` (durable waits,
signals and step retries); upstream clients ignore them.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

from durably_web.clock import Clock, format_timestamp
from durably_web.errors import ValidationError
from durably_web.models import Progress, Waiting

__all__ = [
    "EVENT_CLASSES",
    "EVENT_TYPES",
    "Event",
    "EventBus",
    "EventHandler",
    "LogWrite",
    "RunCancel",
    "RunCoalesced",
    "RunComplete",
    "RunDelete",
    "RunFail",
    "RunLeaseRenewed",
    "RunProgress",
    "RunRetry",
    "RunSignal",
    "RunStart",
    "RunTrigger",
    "RunWait",
    "ScheduleTick",
    "StepCancel",
    "StepComplete",
    "StepFail",
    "StepRetry",
    "StepStart",
    "TERMINAL_EVENT_TYPES",
    "WorkerError",
    "event_from_wire",
    "wire_names",
]

_log = logging.getLogger("durably_web")


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Fields every event carries."""

    type: ClassVar[str] = ""
    wire_type: ClassVar[str] = ""
    omit_when_none: ClassVar[frozenset[str]] = frozenset()

    run_id: str | None
    job_name: str | None
    labels: dict[str, str] = field(default_factory=dict)
    sequence: int = 0
    at: float = 0.0

    @property
    def timestamp(self) -> str:
        """When the event was emitted, as ISO-8601 UTC text."""
        return format_timestamp(self.at)

    def to_wire(self) -> dict[str, Any]:
        """Return the camelCase JSON object upstream Durably sends for this event."""
        out: dict[str, Any] = {"type": self.wire_type or self.type}
        for name, camel in wire_names(type(self)):
            value = getattr(self, name)
            if value is None and name in self.omit_when_none:
                continue
            out[camel] = value.to_wire() if isinstance(value, (Progress, Waiting)) else value
        out["labels"] = self.labels
        out["timestamp"] = self.timestamp
        out["sequence"] = self.sequence
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class RunTrigger(Event):
    """A run was created (``trigger``, ``batch_trigger``, ``retrigger``)."""

    type = "run:trigger"
    input: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCoalesced(Event):
    """A trigger with ``coalesce="skip"`` returned the existing pending run ``run_id``."""

    type = "run:coalesced"
    skipped_input: Any = None
    skipped_labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStart(Event):
    """A worker claimed the run and is executing it (upstream's ``run:leased``)."""

    type = "run:start"
    wire_type = "run:leased"
    input: Any = None
    lease_owner: str = ""
    lease_expires_at: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunLeaseRenewed(Event):
    """The executing worker extended its lease."""

    type = "run:lease-renewed"
    lease_owner: str = ""
    lease_expires_at: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunProgress(Event):
    """``step.progress()`` was called."""

    type = "run:progress"
    progress: Progress = field(default_factory=lambda: Progress(0))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunComplete(Event):
    """The run completed; ``duration`` is milliseconds since this attempt claimed it."""

    type = "run:complete"
    omit_when_none = frozenset({"output"})
    output: Any = None
    duration: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFail(Event):
    """The run failed with ``error``; ``failed_step_name`` is the failing step or ``unknown``."""

    type = "run:fail"
    error: str = ""
    failed_step_name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCancel(Event):
    """The run was cancelled."""

    type = "run:cancel"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRetry(Event):
    """A failed or cancelled run went back to pending in place (same id)."""

    type = "run:retry"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunWait(Event):
    """The run started waiting (a sleep, a signal, a step's retry): ``waiting`` says for what.

    The run holds no lease and no worker slot until the wait ends; ``run:start`` follows when
    a worker takes it up again.
    """

    type = "run:wait"
    waiting: Waiting = field(default_factory=lambda: Waiting("sleep", "", None))


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSignal(Event):
    """``durably.signal(run_id, name, payload)`` delivered a signal to the run."""

    type = "run:signal"
    name: str = ""
    payload: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleTick(Event):
    """A schedule's tick triggered its run ``run_id`` (``durably.schedule``).

    ``tick`` is the tick's time (ISO-8601 UTC text), ``schedule`` the schedule's name.
    """

    type = "schedule:tick"
    schedule: str = ""
    tick: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunDelete(Event):
    """The run and its steps and logs were deleted."""

    type = "run:delete"


@dataclass(frozen=True, slots=True, kw_only=True)
class StepStart(Event):
    """A step that has no checkpoint started running (replayed steps emit nothing)."""

    type = "step:start"
    step_name: str = ""
    step_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class StepComplete(Event):
    """A step finished and its result was checkpointed."""

    type = "step:complete"
    omit_when_none = frozenset({"output"})
    step_name: str = ""
    step_index: int = 0
    output: Any = None
    duration: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class StepFail(Event):
    """A step's function raised."""

    type = "step:fail"
    step_name: str = ""
    step_index: int = 0
    error: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRetry(Event):
    """Attempt ``attempt`` of a step failed with ``error``; it runs again in ``delay`` seconds.

    ``step:fail`` is emitted only when the last attempt fails.
    """

    type = "step:retry"
    step_name: str = ""
    step_index: int = 0
    attempt: int = 1
    delay: float = 0.0
    error: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepCancel(Event):
    """A step's checkpoint was refused because the run had been cancelled."""

    type = "step:cancel"
    step_name: str = ""
    step_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class LogWrite(Event):
    """``step.log.info/warn/error`` wrote a structured log line."""

    type = "log:write"
    omit_when_none = frozenset({"data"})
    step_name: str | None = None
    level: str = "info"
    message: str = ""
    data: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerError(Event):
    """Something failed outside a job: an event handler, a lease renewal, the worker loop."""

    type = "worker:error"
    omit_when_none = frozenset({"run_id", "job_name"})
    error: str = ""
    context: str = ""


EVENT_CLASSES: tuple[type[Event], ...] = (
    RunTrigger,
    RunCoalesced,
    RunStart,
    RunLeaseRenewed,
    RunProgress,
    RunComplete,
    RunFail,
    RunCancel,
    RunRetry,
    RunWait,
    RunSignal,
    RunDelete,
    StepStart,
    StepComplete,
    StepFail,
    StepRetry,
    StepCancel,
    LogWrite,
    WorkerError,
    ScheduleTick,
)
EVENT_TYPES: frozenset[str] = frozenset(cls.type for cls in EVENT_CLASSES)
TERMINAL_EVENT_TYPES: frozenset[str] = frozenset(
    {"run:complete", "run:fail", "run:cancel", "run:delete"}
)
_BY_WIRE_TYPE: dict[str, type[Event]] = {cls.wire_type or cls.type: cls for cls in EVENT_CLASSES}
_ALIASES = {"run:leased": "run:start"}
_BASE_WIRE = (("run_id", "runId"), ("job_name", "jobName"))
_WIRE_NAMES: dict[type[Event], tuple[tuple[str, str], ...]] = {}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def wire_names(cls: type[Event]) -> tuple[tuple[str, str], ...]:
    """Return ``(attribute, wire name)`` of an event class's own fields (``run_id`` first)."""
    names = _WIRE_NAMES.get(cls)
    if names is None:
        own = [f.name for f in fields(cls) if f.name not in {"labels", "sequence", "at"}]
        names = tuple((name, _camel(name)) for name in own)
        _WIRE_NAMES[cls] = names
    return names


def event_from_wire(data: dict[str, Any]) -> Event:
    """Rebuild an event from its wire JSON (either ``run:leased`` or ``run:start``)."""
    wire_type = _ALIASES.get(str(data.get("type")), str(data.get("type")))
    cls = _BY_WIRE_TYPE.get(wire_type) or next(
        (c for c in EVENT_CLASSES if c.type == wire_type), None
    )
    if cls is None:
        raise ValidationError(f"unknown event type {data.get('type')!r}")
    kwargs: dict[str, Any] = {}
    for name, camel in wire_names(cls):
        if camel in data:
            value = data[camel]
            if name == "progress":
                value = Progress.from_wire(value)
            elif name == "waiting":
                value = Waiting.from_wire(value)
            kwargs[name] = value
    kwargs.setdefault("run_id", None)
    kwargs.setdefault("job_name", None)
    timestamp = data.get("timestamp")
    at = 0.0
    if isinstance(timestamp, str):
        from durably_web.clock import parse_timestamp

        at = parse_timestamp(timestamp)
    return cls(
        labels=dict(data.get("labels") or {}),
        sequence=int(data.get("sequence") or 0),
        at=at,
        **kwargs,
    )


E = TypeVar("E", bound=Event)
EventHandler = Callable[[Any], Awaitable[None] | None]


class EventBus:
    """Dispatches events to handlers registered by type or for every type (``"*"``).

    Handlers may be sync or async. A handler that raises (or whose coroutine fails) does not
    stop the others: its error is emitted as ``worker:error``. An event is built only when
    someone listens for its type; the sequence advances either way. A handler registered with
    ``remote=True`` also receives the events read from other processes' writes
    (:meth:`dispatch` with ``remote=True``, see :mod:`durably_web.core.remote`).
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._handlers: dict[str, list[EventHandler]] = {}
        self._remote: dict[str, list[EventHandler]] = {}
        self._sequence = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.listened: frozenset[str] = frozenset()
        """The event types some handler receives (all of them once one listens to ``"*"``):
        ``type in bus.listened`` is :meth:`wants` without a call, for the per-step events."""

    def on(
        self, event_type: str, handler: EventHandler, *, remote: bool = False
    ) -> Callable[[], None]:
        """Register ``handler`` for ``event_type`` (or ``"*"``); return a function removing it.

        With ``remote``, the handler also receives the events of other processes' runs.
        """
        name = _ALIASES.get(event_type, event_type)
        if name != "*" and name not in EVENT_TYPES:
            known = ", ".join(sorted(EVENT_TYPES))
            raise ValidationError(f"unknown event type {event_type!r}; known: *, {known}")
        if not callable(handler):
            raise ValidationError(f"event handler must be callable, got {handler!r}")
        tables = (self._handlers, self._remote) if remote else (self._handlers,)
        for table in tables:
            table.setdefault(name, []).append(handler)
        self._relisten()

        def unsubscribe() -> None:
            for table in tables:
                handlers = table.get(name, [])
                if handler in handlers:
                    handlers.remove(handler)
            self._relisten()

        return unsubscribe

    def _relisten(self) -> None:
        handlers = self._handlers
        if handlers.get("*"):
            self.listened = frozenset(EVENT_TYPES)
        else:
            self.listened = frozenset(kind for kind, table in handlers.items() if table)

    def wants(self, event_type: str) -> bool:
        """Return True when some handler would receive an event of this type."""
        return event_type in self.listened

    def skip(self) -> None:
        """Account for an event nobody listens to (the sequence still advances)."""
        self._sequence += 1

    def emit(self, cls: type[E], **values: Any) -> E | None:
        """Build and dispatch an event of class ``cls``; return it, or None if nobody listens."""
        self._sequence += 1
        if cls.type not in self.listened:
            return None
        event = cls(sequence=self._sequence, at=self._clock.now(), **values)
        self.dispatch(event)
        return event

    def dispatch(self, event: Event, *, remote: bool = False) -> None:
        """Deliver an already-built event to its handlers (``remote``: another process's)."""
        table = self._remote if remote else self._handlers
        for handler in (*table.get(event.type, ()), *table.get("*", ())):
            try:
                result = handler(event)
            except Exception as exc:  # noqa: BLE001 - handler errors are reported, not raised
                self._handler_failed(event, exc)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(functools.partial(self._async_done, event=event))

    def _async_done(self, task: asyncio.Future[Any], *, event: Event) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            assert exc is not None
            self._handler_failed(event, exc)

    def _handler_failed(self, event: Event, exc: BaseException) -> None:
        if isinstance(event, WorkerError):
            _log.error("worker:error handler failed: %r (while handling %r)", exc, event)
            return
        self.emit(
            WorkerError,
            run_id=event.run_id,
            job_name=event.job_name,
            labels=event.labels,
            error=f"{type(exc).__name__}: {exc}",
            context=f"event-handler:{event.type}",
        )

    async def drain(self) -> None:
        """Wait for every async handler still running."""
        while self._tasks:
            finished = list(self._tasks)  # see Worker.stop: gather may not yield on 3.12+
            await asyncio.gather(*finished, return_exceptions=True)
            self._tasks.difference_update(finished)
