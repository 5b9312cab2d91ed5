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

Request types: ``ping``, ``listen``, ``trigger``, ``batchTrigger``, ``getRun``, ``getRuns``,
``getSteps``, ``getLogs``, ``cancel``, ``retry``, ``retrigger``, ``deleteRun``, ``purgeRuns``,
``waitForRun``, ``subscribe``, ``unsubscribe``. Their fields are camelCase like the wire.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from durably_web.core.durably import Durably
from durably_web.core.trigger import TriggerItem
from durably_web.errors import ValidationError, error_to_wire
from durably_web.events import EVENT_TYPES, Event
from durably_web.json_value import MAX_REQUEST_DEPTH, check_value, parse, shown

__all__ = ["Host"]

Post = Callable[[str], None]


_TRAILING_ID = re.compile(r'"id":(-?[0-9]{1,15})}\s*\Z')


def _trailing_id(text: str) -> int | None:
    """Return the id of a request the page's link wrote (``{...message, id}``: id last)."""
    match = _TRAILING_ID.search(text[-40:]) if isinstance(text, str) else None
    return None if match is None else int(match[1])


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _trigger_item(data: dict[str, Any]) -> TriggerItem:
    options = data.get("options") or {}
    if not isinstance(options, dict):
        raise ValidationError(f"options must be an object, got {shown(options)}")
    return TriggerItem(
        data.get("input"),
        idempotency_key=options.get("idempotencyKey"),
        concurrency_key=options.get("concurrencyKey"),
        labels=options.get("labels"),
        coalesce=options.get("coalesce"),
    )


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
        self._handlers: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "ping": self._ping,
            "listen": self._listen,
            "trigger": self._trigger,
            "batchTrigger": self._batch_trigger,
            "getRun": self._get_run,
            "getRuns": self._get_runs,
            "getSteps": self._get_steps,
            "getLogs": self._get_logs,
            "cancel": self._run_action("cancel"),
            "retry": self._run_action("retry"),
            "retrigger": self._run_action("retrigger"),
            "deleteRun": self._run_action("delete_run"),
            "purgeRuns": self._purge_runs,
            "waitForRun": self._wait_for_run,
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
        }

    def jobs(self) -> list[dict[str, str]]:
        """Return the registered jobs as ``[{"key", "name"}]`` for the ready message."""
        return [{"key": key, "name": handle.name} for key, handle in self.durably.jobs.items()]

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
            handler = self._handlers.get(str(message.get("type")))
            if handler is None:
                known = ", ".join(sorted(self._handlers))
                raise ValidationError(
                    f"unknown request type {shown(message.get('type'))}; known: {known}"
                )
            result = await handler(message)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an error answer
            self._send(
                {"type": "response", "id": request_id, "ok": False, "error": error_to_wire(exc)}
            )
            return
        self._send({"type": "response", "id": request_id, "ok": True, "result": result})

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

    async def _listen(self, message: dict[str, Any]) -> list[str]:
        return self.listen(message.get("events") or [])

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

    async def _ping(self, message: dict[str, Any]) -> str:
        return "pong"

    async def _trigger(self, message: dict[str, Any]) -> dict[str, Any]:
        handle = self.durably.job_by_name(str(message.get("job")))
        item = _trigger_item(message)
        run = await handle.trigger(
            item.input,
            idempotency_key=item.idempotency_key,
            concurrency_key=item.concurrency_key,
            labels=item.labels,
            coalesce=item.coalesce,
        )
        return run.to_wire()

    async def _batch_trigger(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        handle = self.durably.job_by_name(str(message.get("job")))
        items = message.get("items")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ValidationError("items must be a list of {input, options} objects")
        runs = await handle.batch_trigger([_trigger_item(item) for item in items])
        return [run.to_wire() for run in runs]

    async def _get_run(self, message: dict[str, Any]) -> dict[str, Any] | None:
        run = await self.durably.get_run(message.get("runId"))  # type: ignore[arg-type]
        return None if run is None else run.to_wire()

    async def _get_runs(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        query = message.get("filter") or {}
        if not isinstance(query, dict):
            raise ValidationError("filter must be an object")
        runs = await self.durably.get_runs(
            status=query.get("status"),
            job_name=query.get("jobName"),
            labels=query.get("labels"),
            limit=query.get("limit"),
            offset=query.get("offset") or 0,
        )
        return [run.to_wire() for run in runs]

    async def _get_steps(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        return [s.to_wire() for s in await self.durably.get_steps(message.get("runId"))]  # type: ignore[arg-type]

    async def _get_logs(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        return [log.to_wire() for log in await self.durably.get_logs(message.get("runId"))]  # type: ignore[arg-type]

    def _run_action(self, method: str) -> Callable[[dict[str, Any]], Awaitable[Any]]:
        async def action(message: dict[str, Any]) -> dict[str, Any]:
            run = await getattr(self.durably, method)(message.get("runId"))
            return run.to_wire()  # type: ignore[no-any-return]

        return action

    async def _purge_runs(self, message: dict[str, Any]) -> int:
        older_than = message.get("olderThan")
        if not isinstance(older_than, str):
            raise ValidationError("olderThan must be a duration like '7d' or an ISO timestamp")
        if older_than[:1].isdigit() and older_than[-1:] in ("d", "h", "m"):
            cutoff: Any = older_than
        else:
            from datetime import datetime

            try:
                cutoff = datetime.fromisoformat(older_than)
            except ValueError:
                raise ValidationError(
                    "olderThan must be a duration like '7d' or an ISO timestamp, "
                    f"got {shown(older_than)}"
                ) from None
        return await self.durably.purge_runs(cutoff, message.get("limit", 500))

    async def _wait_for_run(self, message: dict[str, Any]) -> dict[str, Any]:
        run = await self.durably.wait_for_run(
            message.get("runId"),  # type: ignore[arg-type]
            timeout=message.get("timeout"),
        )
        return run.to_wire()

    async def _subscribe(self, message: dict[str, Any]) -> str:
        subscription = str(message.get("id"))
        events = self.durably.subscribe(message.get("runId"))  # type: ignore[arg-type]

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

    async def _unsubscribe(self, message: dict[str, Any]) -> bool:
        task = self._subscriptions.pop(str(message.get("subscription")), None)
        if task is None:
            return False
        task.cancel()
        return True
