"""The remote operations, declared once: what a client may ask of an engine. No I/O.

Each :class:`Operation` says everything a transport needs:

- its wire name (``getRuns``) and wire arguments (:class:`Param`: camelCase wire name,
  Python name, TypeScript type, required, where it goes in an HTTP request);
- the engine call (``call(durably, args)``, ``args`` by Python name);
- its wire result for the browser worker (``result``) and, where upstream Durably's HTTP
  handler has the operation, the route and upstream's result shape (:class:`HttpRoute`);
- whether a client may send it again after its transport restarted (``repeatable``).

The HTTP server (:mod:`durably_web.server.app`) and the browser worker's host
(:mod:`durably_web.browser.host`) route over :data:`OPERATIONS`; the JS client's types and
route table are generated from it (:mod:`durably_web.protocol.typescript`). Adding an
operation is one entry here, plus its engine method and any client sugar.

``kind`` sorts the entries: ``call`` (request, one answer), ``stream`` (events until the run
ends: an SSE stream over HTTP, ``subscription`` messages from the worker) and ``control``
(the worker link's own messages, answered by the host without the engine).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from durably_web.core.trigger import TriggerItem
from durably_web.errors import NotFoundError, ValidationError
from durably_web.json_value import shown
from durably_web.models import Log, Run, Step
from durably_web.protocol.wire import TRIGGER_OPTIONS, trigger_from_wire

if TYPE_CHECKING:
    from durably_web.core.durably import Durably

__all__ = [
    "BY_NAME",
    "OPERATIONS",
    "Args",
    "HttpRoute",
    "Operation",
    "Param",
    "args_from_message",
    "job_names",
    "registered_jobs",
    "required_message",
]

Args = dict[str, Any]
"""Decoded arguments of one request, by Python name."""
Placement = Literal["query", "query-list", "query-int", "labels", "body"]
"""Where an argument goes in an HTTP request: one query parameter, a repeated one, a
non-negative integer one, ``label.<key>=<value>`` pairs, or a field of the JSON body."""
Guard = Literal[
    "read",
    "subscribe",
    "steps",
    "retrigger",
    "retry",
    "cancel",
    "delete",
    "trigger",
    "runs",
    "runs-subscribe",
]
"""The server's auth step before an HTTP operation: a run access (the run is looked up, a
missing one is 404 ``Run not found``, then ``on_run_access`` with that operation name),
``trigger`` (``on_trigger`` for each trigger, keys scoped), ``runs`` (``scope_runs``) or
``runs-subscribe`` (``scope_runs_subscribe``)."""
Repeat = Literal["always", "never", "idempotency-key"]
"""Whether a request may be sent again after a transport restart: reads always; writes never;
triggers only with an idempotency key (every item of a batch)."""
Kind = Literal["call", "stream", "control"]


@dataclass(frozen=True, slots=True)
class Param:
    """One wire argument of an operation."""

    wire: str
    name: str
    ts: str
    required: bool = False
    http: Placement = "query"


@dataclass(frozen=True, slots=True)
class HttpRoute:
    """An operation as upstream Durably's HTTP handler serves it."""

    method: Literal["GET", "POST", "DELETE"]
    path: str
    result: Callable[[Any], Any]
    ts_result: str
    guard: Guard | None = None


@dataclass(frozen=True, slots=True)
class Operation:
    """One remote operation (see the module docstring)."""

    name: str
    params: tuple[Param, ...]
    call: Callable[[Durably, Args], Awaitable[Any]] | None
    result: Callable[[Any], Any]
    ts_result: str
    repeatable: Repeat
    http: HttpRoute | None = None
    worker: bool = True
    kind: Kind = "call"
    doc: str = ""


def required_message(param: Param) -> str:
    """Return the error for a missing required argument (upstream's words over HTTP)."""
    if param.http in ("query", "query-list", "query-int"):
        return f"{param.wire} query parameter is required"
    return f"{param.wire} is required"


def args_from_message(op: Operation, message: dict[str, Any]) -> Args:
    """Return a worker message's arguments for ``op`` (its wire fields), by Python name.

    Raises:
        ValidationError: a required argument is missing (``runId is required``).

    """
    args: Args = {}
    for param in op.params:
        value = message.get(param.wire)
        if value is None:
            if param.required:
                raise ValidationError(f"{param.wire} is required")
            continue
        args[param.name] = value
    return args


def job_names(durably: Durably, value: Any) -> Any:
    """Resolve ``jobName`` filters: a job's name, or its registration key standing for it.

    Upstream's React client sends the key (``durably.importCsv.useJob()`` asks for
    ``jobName=importCsv``), so a filter resolves like ``trigger`` does: a job's name first,
    then a key; anything else is kept as given (a job registered elsewhere). A value that is
    not a string or a list of strings is returned as it is, for the engine to refuse.
    """
    if isinstance(value, str):
        return _job_name(durably, value)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(dict.fromkeys(_job_name(durably, v) for v in value))
    return value


def _job_name(durably: Durably, value: str) -> str:
    try:
        return durably.job_by_name(value).name
    except (NotFoundError, ValidationError):
        return value


# -- engine calls -------------------------------------------------------------------------


def _item(data: Any, index: int, key_scope: str | None) -> TriggerItem:
    if not isinstance(data, dict):
        raise ValidationError(f"items[{index}] must be an object {{input, ...}}, got {shown(data)}")
    return TriggerItem(data.get("input"), **trigger_from_wire(data), key_scope=key_scope)


async def _trigger(durably: Durably, args: Args) -> Run:
    handle = durably.job_by_name(args["job_name"])
    options = {name: args.get(name) for name, _ in TRIGGER_OPTIONS}
    return await handle.trigger(args.get("input"), **options, key_scope=args.get("key_scope"))


async def _batch_trigger(durably: Durably, args: Args) -> list[Run]:
    handle = durably.job_by_name(args["job_name"])
    items = args["items"]
    if not isinstance(items, list):
        raise ValidationError(f"items must be a list of trigger objects, got {shown(items)}")
    scope = args.get("key_scope")
    return await handle.batch_trigger([_item(item, i, scope) for i, item in enumerate(items)])


async def _get_runs(durably: Durably, args: Args) -> list[Run]:
    return await durably.get_runs(
        status=args.get("status"),
        job_name=job_names(durably, args.get("job_name")),
        labels=args.get("labels"),
        limit=args.get("limit"),
        offset=args.get("offset") or 0,
    )


async def _purge_runs(durably: Durably, args: Args) -> int:
    older_than = args["older_than"]
    if not isinstance(older_than, str):
        raise ValidationError(
            f"olderThan must be a duration like '7d' or an ISO timestamp, got {shown(older_than)}"
        )
    cutoff: str | datetime = older_than
    if not (older_than[:1].isdigit() and older_than[-1:] in ("d", "h", "m")):
        try:
            cutoff = datetime.fromisoformat(older_than)
        except ValueError:
            raise ValidationError(
                "olderThan must be a duration like '7d' or an ISO timestamp, "
                f"got {shown(older_than)}"
            ) from None
    return await durably.purge_runs(cutoff, args.get("limit", 500))


def registered_jobs(durably: Durably) -> list[dict[str, str]]:
    """Return the registered jobs as ``[{"key", "name"}]`` (``getJobs``, the worker's ready)."""
    return [{"key": key, "name": handle.name} for key, handle in durably.jobs.items()]


async def _get_jobs(durably: Durably, args: Args) -> list[dict[str, str]]:
    return registered_jobs(durably)


def _run_call(method: str) -> Callable[[Durably, Args], Awaitable[Any]]:
    """Return the engine call of an operation on one run: ``durably.<method>(run_id)``."""

    async def call(durably: Durably, args: Args) -> Any:
        return await getattr(durably, method)(args["run_id"])

    return call


# -- wire results -------------------------------------------------------------------------


def _run(run: Run) -> dict[str, Any]:
    return run.to_wire()


def _run_or_none(run: Run | None) -> dict[str, Any] | None:
    return None if run is None else run.to_wire()


def _runs(runs: Iterable[Run]) -> list[dict[str, Any]]:
    return [run.to_wire() for run in runs]


def _client_run(run: Run) -> dict[str, Any]:
    return run.to_client_wire()


def _client_runs(runs: Iterable[Run]) -> list[dict[str, Any]]:
    return [run.to_client_wire() for run in runs]


def _records(records: Iterable[Step | Log]) -> list[dict[str, Any]]:
    return [record.to_wire() for record in records]


def _same(value: Any) -> Any:
    return value


def _triggered(run: Run) -> dict[str, Any]:
    return {"runId": run.id, "disposition": run.disposition}


def _batch_triggered(runs: Iterable[Run]) -> list[dict[str, Any]]:
    return [_triggered(run) for run in runs]


def _success(_: Any) -> dict[str, Any]:
    return {"success": True}


def _success_run_id(run: Run) -> dict[str, Any]:
    return {"success": True, "runId": run.id}


def _event(event: Any) -> Any:
    return event.to_wire()


# -- the table ----------------------------------------------------------------------------

_RUN_ID = Param("runId", "run_id", "string", required=True)
_OPTION_TS = {
    "idempotency_key": "string",
    "concurrency_key": "string",
    "labels": "Record<string, string>",
    "coalesce": '"skip"',
}
_TRIGGER_PARAMS = (
    Param("jobName", "job_name", "string", required=True, http="body"),
    Param("input", "input", "unknown", http="body"),
    *(Param(wire, name, _OPTION_TS[name], http="body") for name, wire in TRIGGER_OPTIONS),
)
_FILTER_PARAMS = (
    Param("jobName", "job_name", "string | string[]", http="query-list"),
    Param("labels", "labels", "Record<string, string>", http="labels"),
)

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "trigger",
        _TRIGGER_PARAMS,
        _trigger,
        _run,
        "Run",
        "idempotency-key",
        HttpRoute("POST", "/trigger", _triggered, "TriggerAnswer", "trigger"),
        doc="Create a run of a job (by name or registration key).",
    ),
    Operation(
        "batchTrigger",
        (
            Param("jobName", "job_name", "string", required=True, http="body"),
            Param("items", "items", "TriggerItem[]", required=True, http="body"),
        ),
        _batch_trigger,
        _runs,
        "Run[]",
        "idempotency-key",
        HttpRoute("POST", "/batch-trigger", _batch_triggered, "TriggerAnswer[]", "trigger"),
        doc="Create several runs of one job, all or nothing.",
    ),
    Operation(
        "getRun",
        (_RUN_ID,),
        _run_call("get_run"),
        _run_or_none,
        "Run | null",
        "always",
        HttpRoute("GET", "/run", _client_run, "ClientRun", "read"),
        doc="One run (over HTTP a missing run is 404 `Run not found`).",
    ),
    Operation(
        "getRuns",
        (
            *_FILTER_PARAMS,
            Param("status", "status", "RunStatus | RunStatus[]", http="query-list"),
            Param("limit", "limit", "number", http="query-int"),
            Param("offset", "offset", "number", http="query-int"),
        ),
        _get_runs,
        _runs,
        "Run[]",
        "always",
        HttpRoute("GET", "/runs", _client_runs, "ClientRun[]", "runs"),
        doc="Runs, newest first.",
    ),
    Operation(
        "getSteps",
        (_RUN_ID,),
        _run_call("get_steps"),
        _records,
        "Step[]",
        "always",
        HttpRoute("GET", "/steps", _records, "Step[]", "steps"),
        doc="A run's step records.",
    ),
    Operation(
        "getLogs",
        (_RUN_ID,),
        _run_call("get_logs"),
        _records,
        "Log[]",
        "always",
        HttpRoute("GET", "/logs", _records, "Log[]", "read"),
        doc="A run's log lines.",
    ),
    Operation(
        "getJobs",
        (),
        _get_jobs,
        _same,
        "Job[]",
        "always",
        HttpRoute("GET", "/jobs", _same, "Job[]"),
        doc="The registered jobs as {key, name}.",
    ),
    Operation(
        "cancel",
        (_RUN_ID,),
        _run_call("cancel"),
        _run,
        "Run",
        "never",
        HttpRoute("POST", "/cancel", _success, "Success", "cancel"),
        doc="Cancel a pending or leased run.",
    ),
    Operation(
        "retry",
        (_RUN_ID,),
        _run_call("retry"),
        _run,
        "Run",
        "never",
        HttpRoute("POST", "/retry", _success_run_id, "SuccessRunId", "retry"),
        doc="Re-run a failed or cancelled run in place.",
    ),
    Operation(
        "retrigger",
        (_RUN_ID,),
        _run_call("retrigger"),
        _run,
        "Run",
        "never",
        HttpRoute("POST", "/retrigger", _success_run_id, "SuccessRunId", "retrigger"),
        doc="A new run with a finished run's input.",
    ),
    Operation(
        "deleteRun",
        (_RUN_ID,),
        _run_call("delete_run"),
        _run,
        "Run",
        "never",
        HttpRoute("DELETE", "/run", _success, "Success", "delete"),
        doc="Delete a finished run with its steps and logs.",
    ),
    Operation(
        "purgeRuns",
        (
            Param("olderThan", "older_than", "string", required=True, http="body"),
            Param("limit", "limit", "number", http="body"),
        ),
        _purge_runs,
        _same,
        "number",
        "always",
        doc='Delete finished runs older than a duration ("7d") or an ISO time.',
    ),
    Operation(
        "waitForRun",
        (_RUN_ID, Param("timeout", "timeout", "number | null", http="body")),
        lambda durably, args: durably.wait_for_run(args["run_id"], timeout=args.get("timeout")),
        _run,
        "Run",
        "always",
        doc="The completed run; the run's error if it fails (timeout in seconds).",
    ),
    Operation(
        "subscribe",
        (_RUN_ID,),
        None,
        _event,
        "WireEvent",
        "never",
        HttpRoute("GET", "/subscribe", _event, "WireEvent", "subscribe"),
        kind="stream",
        doc="A run's events: its current state first, ending after a terminal event.",
    ),
    Operation(
        "runsSubscribe",
        _FILTER_PARAMS,
        None,
        _event,
        "WireEvent",
        "never",
        HttpRoute("GET", "/runs/subscribe", _event, "TrimmedEvent", "runs-subscribe"),
        worker=False,
        kind="stream",
        doc="Trimmed events of every matching run; never ends (the worker pushes `events`).",
    ),
    Operation(
        "ping",
        (),
        None,
        _same,
        '"pong"',
        "always",
        kind="control",
        doc="Answered once the events sent before it were posted.",
    ),
    Operation(
        "listen",
        (Param("events", "events", "string[]", required=True, http="body"),),
        None,
        _same,
        "string[]",
        "always",
        kind="control",
        doc="Forward events of these types from now on (replaces the set).",
    ),
    Operation(
        "unsubscribe",
        (Param("subscription", "subscription", "string", required=True, http="body"),),
        None,
        _same,
        "boolean",
        "never",
        kind="control",
        doc="Stop a subscription; whether it was active.",
    ),
)
"""Every remote operation, in the order the docs list them."""

BY_NAME: dict[str, Operation] = {op.name: op for op in OPERATIONS}
