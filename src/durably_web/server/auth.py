"""Auth hooks of the HTTP handler, as upstream Durably's ``createDurablyHandler`` has them.

``authenticate(request)`` runs first on every request and returns a context (a user, a
tenant) that the other hooks receive. Any hook rejects a request by raising
:class:`~durably_web.server.http.HTTPError` (or a ``DurablyError``); the client gets
``{"error", "code"}`` with that status. Hooks may be sync or async.

Unlike upstream, hooks are called even when ``authenticate`` returns ``None``: a missing
context must not silently switch access checks off.

Idempotency and concurrency keys are namespaced by the caller's *key scope*
(:func:`key_scope_of`): two tenants using the key ``"nightly"`` get two runs, never each
other's run id, and a ``coalesce: "skip"`` never lands on another tenant's run (which would
also send that tenant a ``run:coalesced`` event carrying this caller's input and labels).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Literal, TypeVar

from durably_web.models import Run
from durably_web.server.http import Request

__all__ = ["Auth", "RunAccess", "RunsFilter", "SubscribeFilter", "call_hook", "key_scope_of"]

C = TypeVar("C")
T = TypeVar("T")

RunAccess = Literal[
    "read", "subscribe", "steps", "retrigger", "retry", "cancel", "delete", "signal"
]


@dataclass(frozen=True)
class RunsFilter:
    """The ``GET /runs`` query, as ``scope_runs`` sees and returns it."""

    job_name: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    limit: int | None = None
    offset: int = 0

    def with_labels(self, **labels: str) -> RunsFilter:
        """Return a copy whose label filter also requires ``labels`` (they win on clashes)."""
        return replace(self, labels={**self.labels, **labels})


@dataclass(frozen=True)
class SubscribeFilter:
    """The ``GET /runs/subscribe`` query, as ``scope_runs_subscribe`` sees and returns it."""

    job_name: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)

    def with_labels(self, **labels: str) -> SubscribeFilter:
        """Return a copy whose label filter also requires ``labels``."""
        return replace(self, labels={**self.labels, **labels})


Hook = Callable[..., Any]


@dataclass(frozen=True)
class Auth(Generic[C]):
    """Authentication and authorisation hooks.

    Attributes:
        authenticate: ``(request) -> context``; required. Raise ``HTTPError(401, ...)`` to
            reject.
        on_trigger: ``(context, body) -> None``: before a trigger, with the raw JSON body.
        on_run_access: ``(context, run, operation) -> None``: before any access to one run;
            ``operation`` is one of ``read``, ``subscribe``, ``steps``, ``retrigger``,
            ``retry``, ``cancel``, ``delete``, ``signal``.
        scope_runs: ``(context, RunsFilter) -> RunsFilter``: narrow ``GET /runs``.
        scope_runs_subscribe: ``(context, SubscribeFilter) -> SubscribeFilter``: narrow
            ``GET /runs/subscribe``; without it, ``scope_runs`` narrows it too.
        key_scope: ``(context) -> str | None``: the namespace of the caller's idempotency
            and concurrency keys (a tenant id); callers of one scope share keys, callers of
            different scopes never do; ``None`` is the unscoped namespace of local triggers
            and of servers without auth. Without this hook the scope is derived from
            ``scope_runs`` (see :func:`key_scope_of`), so the label-scoped tenant recipe
            needs nothing more. Required when ``on_run_access`` hides runs and
            ``scope_runs`` is not given: keys would otherwise reveal hidden runs.
    """

    authenticate: Callable[[Request], C | Awaitable[C]]
    on_trigger: Callable[[C, Any], Awaitable[None] | None] | None = None
    on_run_access: Callable[[C, Run, RunAccess], Awaitable[None] | None] | None = None
    scope_runs: Callable[[C, RunsFilter], RunsFilter | Awaitable[RunsFilter]] | None = None
    scope_runs_subscribe: (
        Callable[[C, SubscribeFilter], SubscribeFilter | Awaitable[SubscribeFilter]] | None
    ) = None
    key_scope: Callable[[C], str | Awaitable[str | None] | None] | None = None

    def __post_init__(self) -> None:
        if not callable(self.authenticate):
            raise TypeError("Auth.authenticate is required and must be callable")
        if self.on_run_access is not None and self.scope_runs is None and self.key_scope is None:
            raise TypeError(
                "Auth: on_run_access hides runs, so idempotency and concurrency keys must be "
                "scoped too (or a key would return another caller's run): give key_scope "
                "(context -> a tenant id; `lambda context: None` to share keys) or scope_runs"
            )


async def key_scope_of(auth: Auth[Any] | None, context: Any) -> str | None:
    """Return the key scope of a caller: what namespaces its idempotency and concurrency keys.

    - No auth: ``None`` (keys as upstream stores them).
    - ``auth.key_scope``: its answer.
    - Otherwise ``auth.scope_runs`` applied to an empty ``RunsFilter``: the labels and job
      names it forces are what the caller may see, so they are its scope (as canonical JSON);
      a filter that forces nothing (an administrator) is ``None``.
    - Neither hook: ``None`` (every caller sees every run; there is nothing to hide).

    Raises:
        TypeError: ``key_scope`` returned something other than a string or None.

    """
    if auth is None:
        return None
    if auth.key_scope is not None:
        scope = await call_hook(auth.key_scope, context)
        if scope is not None and not isinstance(scope, str):
            raise TypeError(f"Auth.key_scope must return a string or None, got {scope!r}")
        return scope
    if auth.scope_runs is None:
        return None
    forced = await call_hook(auth.scope_runs, context, RunsFilter())
    if not forced.labels and not forced.job_name:
        return None
    return json.dumps(
        {"jobName": sorted(forced.job_name), "labels": sorted(forced.labels.items())},
        separators=(",", ":"),
        ensure_ascii=False,
    )


async def call_hook(hook: Callable[..., T | Awaitable[T]], *args: Any) -> T:
    """Call a sync or async hook and return its result."""
    result = hook(*args)
    if inspect.isawaitable(result):
        return await result
    return result
