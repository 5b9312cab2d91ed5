"""Auth hooks of the HTTP handler, as upstream Durably's ``createDurablyHandler`` has them.

``authenticate(request)`` runs first on every request and returns a context (a user, a
tenant) that the other hooks receive. Any hook rejects a request by raising
:class:`~durably_web.server.http.HTTPError` (or a ``DurablyError``); the client gets
``{"error", "code"}`` with that status. Hooks may be sync or async.

Unlike upstream, hooks are called even when ``authenticate`` returns ``None``: a missing
context must not silently switch access checks off.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, Literal, TypeVar

from durably_web.models import Run
from durably_web.server.http import Request

__all__ = ["Auth", "RunAccess", "RunsFilter", "SubscribeFilter", "call_hook"]

C = TypeVar("C")
T = TypeVar("T")

RunAccess = Literal["read", "subscribe", "steps", "retrigger", "retry", "cancel", "delete"]


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
            ``retry``, ``cancel``, ``delete``.
        scope_runs: ``(context, RunsFilter) -> RunsFilter``: narrow ``GET /runs``.
        scope_runs_subscribe: ``(context, SubscribeFilter) -> SubscribeFilter``: narrow
            ``GET /runs/subscribe``; without it, ``scope_runs`` narrows it too.
    """

    authenticate: Callable[[Request], C | Awaitable[C]]
    on_trigger: Callable[[C, Any], Awaitable[None] | None] | None = None
    on_run_access: Callable[[C, Run, RunAccess], Awaitable[None] | None] | None = None
    scope_runs: Callable[[C, RunsFilter], RunsFilter | Awaitable[RunsFilter]] | None = None
    scope_runs_subscribe: (
        Callable[[C, SubscribeFilter], SubscribeFilter | Awaitable[SubscribeFilter]] | None
    ) = None

    def __post_init__(self) -> None:
        if not callable(self.authenticate):
            raise TypeError("Auth.authenticate is required and must be callable")


async def call_hook(hook: Callable[..., T | Awaitable[T]], *args: Any) -> T:
    """Call a sync or async hook and return its result."""
    result = hook(*args)
    if inspect.isawaitable(result):
        return await result
    return result
