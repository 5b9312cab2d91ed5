"""Just enough raw ASGI for the server: a request view, JSON responses, a bounded body reader.

No web framework is needed: the app is a plain ASGI callable, so it mounts in Starlette,
FastAPI or any ASGI server, and its only runtime dependency stays pydantic.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from durably_web.errors import DurablyError, error_to_wire
from durably_web.json_value import MAX_REQUEST_DEPTH, loads

__all__ = [
    "HTTPError",
    "Receive",
    "Request",
    "Scope",
    "Send",
    "read_json",
    "send_error",
    "send_json",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class HTTPError(DurablyError):
    """Reject a request with a status and message; raise it from auth hooks too.

    Args:
        status_code: the HTTP status (401, 403, 404, ...).
        message: the ``error`` text of the JSON body.
        code: the stable ``code`` of the JSON body (default derived from the status).
    """

    _CODES: ClassVar[dict[int, str]] = {
        400: "validation_error",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        413: "payload_too_large",
        415: "unsupported_media_type",
    }

    def __init__(self, status_code: int, message: str, code: str | None = None) -> None:
        super().__init__(message, code or self._CODES.get(status_code, "http_error"))
        self.status_code = status_code


@dataclass(frozen=True)
class Request:
    """What the handlers and auth hooks see of an HTTP request.

    Attributes:
        method: upper-case HTTP method.
        path: the path below the app's mount point (``/trigger``, ``/runs``, ...).
        query: every query parameter as ``(name, value)`` pairs, in order.
        headers: header names lower-cased; repeated headers joined with ``, ``.
        client: ``(host, port)`` of the peer, when the server says.
        scope: the raw ASGI scope.
    """

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    client: tuple[str, int] | None
    scope: Scope = field(repr=False)

    @classmethod
    def from_scope(cls, scope: Scope, base_path: str = "") -> Request:
        """Build from an ASGI HTTP scope, removing ``root_path`` and ``base_path``."""
        path = scope.get("path", "/") or "/"
        for prefix in (scope.get("root_path") or "", base_path):
            if prefix and path.startswith(prefix):
                path = path[len(prefix) :] or "/"
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", []):
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        query_text = scope.get("query_string", b"").decode("utf-8", "replace")
        client = scope.get("client")
        return cls(
            method=str(scope.get("method", "GET")).upper(),
            path=path,
            query=tuple(parse_qsl(query_text, keep_blank_values=True)),
            headers=headers,
            client=(str(client[0]), int(client[1])) if client else None,
            scope=scope,
        )

    def param(self, name: str) -> str | None:
        """Return the first value of query parameter ``name``, or None."""
        for key, value in self.query:
            if key == name:
                return value
        return None

    def params(self, name: str) -> list[str]:
        """Return every value of query parameter ``name``."""
        return [value for key, value in self.query if key == name]


async def send_json(
    send: Send, status: int, body: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Send a complete JSON response."""
    payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"cache-control", b"no-store"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def send_error(send: Send, error: BaseException) -> None:
    """Send ``{"error", "code"}`` with the error's status (500 for anything unexpected)."""
    status = error.status_code if isinstance(error, DurablyError) else 500
    extra = [(b"allow", b"GET, POST, DELETE")] if status == 405 else None
    await send_json(send, status, error_to_wire(error, expose=False), extra)


async def read_json(receive: Receive, request: Request, max_body: int) -> Any:
    """Read the body (at most ``max_body`` bytes) and parse it as JSON.

    The body is parsed and checked by :func:`durably_web.json_value.loads`: valid UTF-8,
    finite numbers, no lone surrogate, at most ``MAX_REQUEST_DEPTH`` levels deep.

    Raises:
        HTTPError: 413 for a body over the limit, 400 for an empty body.
        ValidationError: 400, a body that is not JSON or holds a value durably_web refuses.
    """
    declared = request.headers.get("content-length")
    if (
        declared is not None
        and declared.isascii()
        and declared.isdigit()
        and int(declared) > max_body
    ):
        raise HTTPError(413, f"request body is larger than {max_body} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPError(400, "the client disconnected while sending the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body:
            raise HTTPError(413, f"request body is larger than {max_body} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    raw = b"".join(chunks)
    if not raw.strip():
        raise HTTPError(400, "request body must be a JSON object")
    return loads(raw, "request body", MAX_REQUEST_DEPTH)
