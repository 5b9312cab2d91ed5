"""The records the engine returns: runs, steps, logs and progress, with their wire forms.

Python attributes are snake_case; :meth:`to_wire` gives the camelCase JSON object upstream
Durably sends, key for key. Timestamps are aware UTC ``datetime`` objects in Python and
``YYYY-MM-DDTHH:MM:SS.mmmZ`` strings on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = [
    "ACTIVE_STATUSES",
    "Disposition",
    "Log",
    "LogLevel",
    "Progress",
    "CATCH_UPS",
    "CatchUp",
    "Run",
    "RunStatus",
    "Schedule",
    "Step",
    "StepStatus",
    "TERMINAL_STATUSES",
    "WAIT_KINDS",
    "WaitKind",
    "Waiting",
    "wire_time",
]

RunStatus = Literal["pending", "leased", "waiting", "completed", "failed", "cancelled"]
StepStatus = Literal["completed", "failed", "cancelled"]
LogLevel = Literal["info", "warn", "error"]
Disposition = Literal["created", "idempotent", "coalesced"]
WaitKind = Literal["sleep", "signal", "retry"]
CatchUp = Literal["latest", "all", "none"]
CATCH_UPS: tuple[CatchUp, ...] = ("latest", "all", "none")

RUN_STATUSES: tuple[RunStatus, ...] = (
    "pending",
    "leased",
    "waiting",
    "completed",
    "failed",
    "cancelled",
)
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
ACTIVE_STATUSES: frozenset[str] = frozenset({"pending", "leased", "waiting"})
WAIT_KINDS: tuple[WaitKind, ...] = ("sleep", "signal", "retry")


def wire_time(value: datetime | None) -> str | None:
    """Format a datetime as upstream's ``toISOString()`` form; ``None`` stays ``None``."""
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_time(text: str | None) -> datetime | None:
    """Parse an ISO-8601 timestamp into an aware UTC datetime (raises ``ValueError`` if bad).

    Stored values are read with :func:`durably_web.storage.rows.read_time` instead, which
    never raises.
    """
    return None if text is None else datetime.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class Progress:
    """A run's last reported progress: ``current`` of ``total``, with an optional message."""

    current: int | float
    total: int | float | None = None
    message: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """Return ``{"current", "total"?, "message"?}``, omitting unset keys as upstream does."""
        out: dict[str, Any] = {"current": self.current}
        if self.total is not None:
            out["total"] = self.total
        if self.message is not None:
            out["message"] = self.message
        return out

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Progress:
        """Build from the JSON object form."""
        return cls(data["current"], data.get("total"), data.get("message"))


@dataclass(frozen=True, slots=True)
class Waiting:
    """What a ``waiting`` run waits for: ``run.waiting``, and the ``run:wait`` event's field.

    Attributes:
        kind: ``sleep`` (``step.sleep``/``sleep_until``), ``signal``
            (``step.wait_for_signal``) or ``retry`` (a step's backoff before its next attempt).
        name: the step that waits (for a signal, also the signal's name).
        until: when the wait ends: the sleep's end, the retry's time, the signal wait's
            timeout (``None``: no timeout). A signal that arrives ends it at once.
        since: when the wait began (not on the wire; the step's ``started_at``).

    """

    kind: WaitKind
    name: str
    until: datetime | None
    since: datetime | None = field(default=None, compare=False)

    def to_wire(self) -> dict[str, Any]:
        """Return ``{"kind", "name", "until"}`` (``until`` as ISO text or null)."""
        return {"kind": self.kind, "name": self.name, "until": wire_time(self.until)}

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Waiting:
        """Build from the JSON object form."""
        return cls(data["kind"], data["name"], parse_time(data.get("until")))


@dataclass(frozen=True, slots=True)
class Run:
    """One execution of a job, as stored.

    Attributes:
        id: the run's ULID.
        job_name: the name of the job it runs.
        input: the validated input, as JSON data.
        status: ``pending``, ``leased``, ``waiting`` (asleep, waiting for a signal or for a
            step's retry: it holds no lease and no worker slot), ``completed``, ``failed`` or
            ``cancelled``.
        idempotency_key / concurrency_key: the keys it was triggered with, if any.
        current_step_index: one past the index of the last completed step.
        completed_step_count: how many steps have completed.
        progress: the last progress reported, or ``None``.
        output: the job's output as JSON data once completed.
        error: the failure message of a failed run.
        labels: string labels for filtering and scoping.
        lease_owner / lease_expires_at / lease_generation: the current lease; the
            generation fences every write of the lease holder.
        started_at / completed_at / created_at / updated_at: lifecycle timestamps.
        waiting: what a ``waiting`` run waits for (``None`` in every other status).
        run_at: when a delayed ``pending`` run may start (``trigger(delay=..., run_at=...)``);
            ``None`` for a run that may start at once, and in every other status.
        wait: the wait recorded on the run whatever its status (the engine resumes it: a run
            that just woke holds the wait it woke from until its step completes); not on the
            wire. Read ``waiting`` instead.
        disposition: for a run returned by a trigger, whether it was ``created``, found by
            its idempotency key (``idempotent``) or is an existing pending run
            (``coalesced``); ``None`` elsewhere.
        unreadable: stored columns that could not be parsed, by column name, with their raw
            text (empty for every healthy run). Such a field holds a stand-in: ``None``, the
            raw text for JSON, the run id's ULID time for ``created_at``, or the latest
            representable time for a timestamp beyond the year 9999. A worker fails a run whose
            ``input`` or ``labels`` are unreadable instead of executing it.

    """

    id: str
    job_name: str
    input: Any
    status: RunStatus
    idempotency_key: str | None
    concurrency_key: str | None
    current_step_index: int
    completed_step_count: int
    progress: Progress | None
    output: Any
    error: str | None
    labels: dict[str, str]
    lease_owner: str | None
    lease_expires_at: datetime | None
    lease_generation: int
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    waiting: Waiting | None = None
    run_at: datetime | None = None
    wait: Waiting | None = field(default=None, compare=False, repr=False)
    disposition: Disposition | None = field(default=None, compare=False)
    unreadable: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def is_terminal(self) -> bool:
        """True once the run is completed, failed or cancelled."""
        return self.status in TERMINAL_STATUSES

    @property
    def is_active(self) -> bool:
        """True while the run is pending, leased or waiting (it can still be cancelled)."""
        return self.status in ACTIVE_STATUSES

    def with_disposition(self, disposition: Disposition) -> Run:
        """Return a copy carrying a trigger disposition."""
        return replace(self, disposition=disposition)

    def to_wire(self) -> dict[str, Any]:
        """Return upstream's full ``Run`` JSON, plus ``waiting`` and ``runAt`` (and
        ``disposition`` when set).
        """  # noqa: D205 - the summary needs both lines
        out: dict[str, Any] = {
            "id": self.id,
            "jobName": self.job_name,
            "input": self.input,
            "status": self.status,
            "idempotencyKey": self.idempotency_key,
            "concurrencyKey": self.concurrency_key,
            "currentStepIndex": self.current_step_index,
            "completedStepCount": self.completed_step_count,
            "progress": None if self.progress is None else self.progress.to_wire(),
            "output": self.output,
            "error": self.error,
            "labels": self.labels,
            "leaseOwner": self.lease_owner,
            "leaseExpiresAt": wire_time(self.lease_expires_at),
            "leaseGeneration": self.lease_generation,
            "startedAt": wire_time(self.started_at),
            "completedAt": wire_time(self.completed_at),
            "createdAt": wire_time(self.created_at),
            "updatedAt": wire_time(self.updated_at),
            "waiting": None if self.waiting is None else self.waiting.to_wire(),
            "runAt": wire_time(self.run_at),
        }
        if self.disposition is not None:
            out["disposition"] = self.disposition
        return out

    def to_client_wire(self) -> dict[str, Any]:
        """Return upstream's ``ClientRun`` JSON (the form its HTTP handler sends), plus
        ``waiting`` and ``runAt``.
        """  # noqa: D205 - the summary needs both lines
        return {
            "id": self.id,
            "jobName": self.job_name,
            "input": self.input,
            "status": self.status,
            "currentStepIndex": self.current_step_index,
            "completedStepCount": self.completed_step_count,
            "progress": None if self.progress is None else self.progress.to_wire(),
            "output": self.output,
            "error": self.error,
            "labels": self.labels,
            "startedAt": wire_time(self.started_at),
            "completedAt": wire_time(self.completed_at),
            "createdAt": wire_time(self.created_at),
            "isTerminal": self.is_terminal,
            "isActive": self.is_active,
            "waiting": None if self.waiting is None else self.waiting.to_wire(),
            "runAt": wire_time(self.run_at),
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Run:
        """Rebuild a run from either wire form (missing lease fields become ``None``/0)."""
        progress = data.get("progress")
        waiting = data.get("waiting")
        created = parse_time(data["createdAt"])
        assert created is not None
        return cls(
            id=data["id"],
            job_name=data["jobName"],
            input=data.get("input"),
            status=data["status"],
            idempotency_key=data.get("idempotencyKey"),
            concurrency_key=data.get("concurrencyKey"),
            current_step_index=int(data.get("currentStepIndex", 0)),
            completed_step_count=int(data.get("completedStepCount", 0)),
            progress=None if progress is None else Progress.from_wire(progress),
            output=data.get("output"),
            error=data.get("error"),
            labels=dict(data.get("labels") or {}),
            lease_owner=data.get("leaseOwner"),
            lease_expires_at=parse_time(data.get("leaseExpiresAt")),
            lease_generation=int(data.get("leaseGeneration", 0)),
            started_at=parse_time(data.get("startedAt")),
            completed_at=parse_time(data.get("completedAt")),
            created_at=created,
            updated_at=parse_time(data.get("updatedAt")) or created,
            waiting=None if waiting is None else Waiting.from_wire(waiting),
            run_at=parse_time(data.get("runAt")),
            disposition=data.get("disposition"),
        )


@dataclass(frozen=True, slots=True)
class Step:
    """A finished step's checkpoint record (no row exists while a step is running).

    A step with retries has one row per failed attempt (status ``failed``, with ``retry_at``
    when another attempt follows) and one for its last attempt. ``attempt`` counts from 1.
    ``unreadable`` lists stored columns that could not be parsed, as on :class:`Run`.
    """

    id: str
    run_id: str
    name: str
    index: int
    status: StepStatus
    output: Any
    error: str | None
    started_at: datetime
    completed_at: datetime | None
    attempt: int = 1
    retry_at: datetime | None = None
    unreadable: dict[str, str] = field(default_factory=dict, compare=False)

    def to_wire(self) -> dict[str, Any]:
        """Return upstream's step JSON, plus ``attempt`` and ``retryAt``."""
        return {
            "id": self.id,
            "runId": self.run_id,
            "name": self.name,
            "index": self.index,
            "status": self.status,
            "output": self.output,
            "error": self.error,
            "startedAt": wire_time(self.started_at),
            "completedAt": wire_time(self.completed_at),
            "attempt": self.attempt,
            "retryAt": wire_time(self.retry_at),
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Step:
        """Rebuild a step from its JSON form."""
        started = parse_time(data["startedAt"])
        assert started is not None
        return cls(
            data["id"],
            data["runId"],
            data["name"],
            int(data["index"]),
            data["status"],
            data.get("output"),
            data.get("error"),
            started,
            parse_time(data.get("completedAt")),
            attempt=int(data.get("attempt") or 1),
            retry_at=parse_time(data.get("retryAt")),
        )


@dataclass(frozen=True, slots=True)
class Log:
    """A structured log line written by ``step.log``.

    ``unreadable`` lists stored columns that could not be parsed, as on :class:`Run`.
    """

    id: str
    run_id: str
    step_name: str | None
    level: LogLevel
    message: str
    data: Any
    created_at: datetime
    unreadable: dict[str, str] = field(default_factory=dict, compare=False)

    def to_wire(self) -> dict[str, Any]:
        """Return upstream's log JSON."""
        return {
            "id": self.id,
            "runId": self.run_id,
            "stepName": self.step_name,
            "level": self.level,
            "message": self.message,
            "data": self.data,
            "createdAt": wire_time(self.created_at),
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Log:
        """Rebuild a log from its JSON form."""
        created = parse_time(data["createdAt"])
        assert created is not None
        return cls(
            data["id"],
            data["runId"],
            data.get("stepName"),
            data["level"],
            data["message"],
            data.get("data"),
            created,
        )


@dataclass(frozen=True, slots=True)
class Schedule:
    """A persisted cron schedule (``durably.schedule``): one run of ``job_name`` per tick.

    Attributes:
        name: the schedule's unique name.
        job_name: the job each tick triggers.
        cron: the 5-field cron expression.
        timezone: the IANA time zone ``cron`` is read in.
        input: the input of every run.
        catch_up: what runs for ticks missed while no worker ran: ``latest``, ``all``, ``none``.
        next_tick: the next tick not triggered yet.
        last_tick: the last tick triggered (or skipped by ``catch_up``), None before the first.

    """

    name: str
    job_name: str
    cron: str
    timezone: str
    input: Any
    catch_up: CatchUp
    next_tick: datetime
    last_tick: datetime | None
    created_at: datetime
    updated_at: datetime

    def to_wire(self) -> dict[str, Any]:
        """Return the camelCase JSON object."""
        return {
            "name": self.name,
            "jobName": self.job_name,
            "cron": self.cron,
            "timezone": self.timezone,
            "input": self.input,
            "catchUp": self.catch_up,
            "nextTick": wire_time(self.next_tick),
            "lastTick": wire_time(self.last_tick),
            "createdAt": wire_time(self.created_at),
            "updatedAt": wire_time(self.updated_at),
        }
