"""An operation over HTTP: its arguments from a request, and the request for its arguments.

Both directions read the operation's :class:`~durably_web.protocol.operations.Param` list and
:class:`~durably_web.protocol.operations.HttpRoute`, so the server
(:mod:`durably_web.server.app`) and the CPython client (:mod:`durably_web.http_client`) place
every argument where upstream Durably's handler and clients put it. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from durably_web.errors import ValidationError
from durably_web.protocol.operations import Args, Operation, Param, required_message

__all__ = ["HttpRequest", "args_from_request", "request_for"]

_MAX_INT = 2**31 - 1
_LABEL = "label."


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What to send for one operation: method, path below the mount point, query, body."""

    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    body: dict[str, Any] | None = None


def args_from_request(
    op: Operation, query: Sequence[tuple[str, str]], body: Mapping[str, Any] | None
) -> Args:
    """Return an HTTP request's arguments for ``op``, by Python name.

    Args:
        op: an operation with an HTTP route.
        query: every query parameter as ``(name, value)`` pairs.
        body: the decoded JSON body (an object), or None for an operation without body
            arguments.

    Raises:
        ValidationError: a required argument is missing (upstream's words: ``runId query
            parameter is required``, ``jobName is required``), or a number parameter is not a
            non-negative integer (``Invalid limit: must be a non-negative integer``).

    """
    args: Args = {}
    for param in op.params:
        value = _value(param, query, body)
        if value is None or value == "":
            if param.required:
                raise ValidationError(required_message(param))
            continue
        args[param.name] = value
    return args


def _value(param: Param, query: Sequence[tuple[str, str]], body: Mapping[str, Any] | None) -> Any:
    if param.http == "body":
        return None if body is None else body.get(param.wire)
    if param.http == "labels":
        labels = {key[len(_LABEL) :]: value for key, value in query if key.startswith(_LABEL)}
        return labels or None
    values = [value for key, value in query if key == param.wire]
    if param.http == "query-list":
        return values or None
    first = values[0] if values else None
    if param.http == "query-int" and first:
        if not (first.isascii() and first.isdigit()) or int(first) > _MAX_INT:
            raise ValidationError(f"Invalid {param.wire}: must be a non-negative integer")
        return int(first)
    return first


def request_for(op: Operation, args: Mapping[str, Any]) -> HttpRequest:
    """Return the HTTP request for ``op`` with ``args`` (by Python name; None: left out).

    Raises:
        ValueError: ``op`` has no HTTP route.

    """
    if op.http is None:
        raise ValueError(f"{op.name} has no HTTP route")
    query: list[tuple[str, str]] = []
    body: dict[str, Any] | None = None
    for param in op.params:
        value = args.get(param.name)
        if value is None:
            continue
        if param.http == "body":
            body = {} if body is None else body
            body[param.wire] = value
        elif param.http == "labels":
            query.extend((_LABEL + key, str(item)) for key, item in dict(value).items())
        elif param.http == "query-list" and isinstance(value, (list, tuple)):
            query.extend((param.wire, str(item)) for item in value)
        else:
            query.append((param.wire, str(value)))
    return HttpRequest(op.http.method, op.http.path, query, body)
