"""The engine host inside the browser worker: answers the page's requests, forwards events.

Messages are JSON text in both directions (one ``JSON.parse`` on each side, no proxies).
Requests from the page are ``{"type", "id", ...}``; each gets exactly one answer
``{"type": "response", "id", "ok": true, "result"}`` or
``{"type": "response", "id", "ok": false, "error": {"error", "code"}}`` (the one error
shape of every transport, :func:`durably_web.errors.error_to_wire`).
The host also pushes:

- ``{"type": "events", "events": [...]}``: engine events of the types the page listens to
  (``listen`` request), in upstream Durably's wire form, batched once per event-loop turn so
  a fast run does not flood the page with messages;
- ``{"type": "subscription", "id", "event"}`` and ``{"type": "subscription-end", "id"}``
  (with ``"error"`` when it ended with one) for a ``subscribe`` request.

The request types, their fields and results are the operations of
:data:`durably_web.protocol.operations.OPERATIONS` (``worker`` ones): this host is a router over
that table. ``ping``, ``listen`` and ``unsubscribe`` are the link's own (``control``);
``subscribe`` answers with a subscription id and pushes the run's events. Fields are camelCase
like the wire (``{"type": "trigger", "id": 3, "jobName": "import_csv", "input": {...},
"idempotencyKey": "..."}``).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from durably_web.core.durably import Durably
from durably_web.errors import ValidationError, error_to_wire
from durably_web.events import EVENT_TYPES, Event
from durably_web.json_value import MAX_REQUEST_DEPTH, check_value, parse, shown
from durably_web.protocol.operations import (
    OPERATIONS,
    Args,
    Operation,
    args_from_message,
    registered_jobs,
)

__all__ = ["Host"]

Post = Callable[[str], None]


_TRAILING_ID = re.compile(r'"id":(-?[0-9]{1,15})}\s*\Z')


def _trailing_id(text: str) -> int | None:
    """Return the id of a request the page's link wrote (``{...message, id}``: id last)."""
    match = _TRAILING_ID.search(text[-40:]) if isinstance(text, str) else None
    return None if match is None else int(match[1])


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Host:
    """Serve one page's requests against ``durably``; ``post`` sends JSON text to the page."""

    def __init__(self, durably: Durably, post: Post) -> None:
        self.durably = durably
        self._post = post
        self._listening: set[str] = set()
        self._unlisten: list[Callable[[], None]] = []
        self._outbox: list[dict[str, Any]] = []
        self._flush_scheduled = False
        self._subscriptions: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._operations = {op.name: op for op in OPERATIONS if op.worker}
        self._own: dict[str, Callable[[Any, Args], Awaitable[Any]]] = {
            "ping": self._ping,
            "listen": self._listen,
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
        }

    def jobs(self) -> list[dict[str, str]]:
        """Return the registered jobs as ``[{"key", "name"}]`` for the ready message."""
        return registered_jobs(self.durably)

    def receive(self, text: str) -> None:
        """Handle one request (JSON text) from the page; the answer is posted when ready."""
        task = asyncio.ensure_future(self._answer(text))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, text: str) -> None:
        request_id: Any = _trailing_id(text)  # answerable even if the text cannot be parsed
        try:
            message = parse(text, "request", MAX_REQUEST_DEPTH)
            if not isinstance(message, dict):
                raise ValidationError("a request must be a JSON object")
            request_id = message.get("id")
            check_value(message, "request", max_depth=MAX_REQUEST_DEPTH)
            op = self._operations.get(str(message.get("type")))
            if op is None:
                known = ", ".join(sorted(self._operations))
                raise ValidationError(
                    f"unknown request type {shown(message.get('type'))}; known: {known}"
                )
            result = await self._call(op, request_id, args_from_message(op, message))
        except Exception as exc:  # noqa: BLE001 - every failure becomes an error answer
            self._send(
                {"type": "response", "id": request_id, "ok": False, "error": error_to_wire(exc)}
            )
            return
        self._send({"type": "response", "id": request_id, "ok": True, "result": result})

    async def _call(self, op: Operation, request_id: Any, args: Args) -> Any:
        """Answer one request: the engine's (through the table), or the host's own."""
        own = self._own.get(op.name)
        if own is not None:
            return await own(request_id, args)
        assert op.call is not None
        return op.result(await op.call(self.durably, args))

    def _send(self, message: dict[str, Any]) -> None:
        self._post(_dumps(message))

    # -- events -------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        self._outbox.append(event.to_wire())
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_events)

    def _flush_events(self) -> None:
        self._flush_scheduled = False
        if self._outbox:
            events, self._outbox = self._outbox, []
            self._send({"type": "events", "events": events})

    async def _listen(self, request_id: Any, args: Args) -> list[str]:
        return self.listen(args["events"])

    def listen(self, types: Any) -> list[str]:
        """Forward events of ``types`` (``"*"``: all) to the page from now on, and no others.

        The ``listen`` request does this; the boot does it before the engine starts, with the
        types of the page's init config.

        Raises:
            ValidationError: not a list of known event type names.

        """
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise ValidationError("events must be a list of event type names")
        unknown = [t for t in types if t != "*" and t not in EVENT_TYPES and t != "run:leased"]
        if unknown:
            raise ValidationError(f"unknown event types {unknown}")
        self._listening = {"run:start" if t == "run:leased" else t for t in types}
        # One handler per type asked for, none otherwise: the engine then skips building
        # events nobody listens to (step events are on the per-step hot path).
        # "*" covers every type: another handler beside it would send its events twice.
        registered = ["*"] if "*" in self._listening else sorted(self._listening)
        for unlisten in self._unlisten:
            unlisten()
        self._unlisten = [self.durably.on(t, self._on_event) for t in registered]
        return sorted(self._listening)

    # -- requests -----------------------------------------------------------------------

    async def _ping(self, request_id: Any, args: Args) -> str:
        return "pong"

    async def _subscribe(self, request_id: Any, args: Args) -> str:
        subscription = str(request_id)
        events = self.durably.subscribe(args["run_id"])

        async def pump() -> None:
            error: dict[str, str] | None = None
            try:
                async for event in events:
                    self._send(
                        {"type": "subscription", "id": subscription, "event": event.to_wire()}
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reported to the page
                error = error_to_wire(exc)
            finally:
                self._subscriptions.pop(subscription, None)
                await events.aclose()
            end: dict[str, Any] = {"type": "subscription-end", "id": subscription}
            if error is not None:
                end["error"] = error
            self._send(end)

        self._subscriptions[subscription] = asyncio.ensure_future(pump())
        return subscription

    async def _unsubscribe(self, request_id: Any, args: Args) -> bool:
        task = self._subscriptions.pop(str(args["subscription"]), None)
        if task is None:
            return False
        task.cancel()
        return True
