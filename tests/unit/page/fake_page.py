"""A fake JS adapter and a fake DOM, for the live views' checks on CPython and MicroPython.

:class:`FakeEngine` answers like ``web/client/python.mjs`` (JSON text in, JSON text out) from
runs it holds in memory, and pushes events the way the adapter does; a check sets the runs'
state by hand (:meth:`FakeEngine.set`) and emits the events that would follow. Reads can be
held (:meth:`FakeEngine.hold`) to put events between a read's question and its answer.
:class:`FakeDocument` makes elements with the few DOM members the helpers use.

Written in the subset MicroPython shares with CPython: ``live_check.py`` runs under both.
"""

import asyncio
import json

try:  # noqa: SIM105 - MicroPython has no contextlib
    from typing import Any
except ImportError:  # MicroPython never evaluates annotations
    pass


class FakeEngine:
    """The JS adapter of a page client, over runs in memory (newest last in ``order``)."""

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.logs: dict[str, list[dict[str, Any]]] = {}
        self.calls: list[str] = []
        self.listeners: dict[int, str] = {}
        self.unknown_types = ["run:wait"]  # as an engine without durable waits
        self.unknown_statuses = ["waiting"]
        self.dispatcher: Any = None
        self.fail_next: dict[str, dict[str, str]] = {}
        self._held: dict[str, Any] = {}
        self._next = 1

    # -- what a check does --------------------------------------------------------------

    def add(self, job: str = "work", status: str = "pending", **fields: Any) -> dict[str, Any]:
        """Store a new run (the newest); return it."""
        run_id = "run" + str(10000 + self._next)
        self._next += 1
        run = {
            "id": run_id,
            "jobName": job,
            "input": fields.pop("input", {}),
            "status": status,
            "progress": None,
            "output": None,
            "error": None,
            "labels": fields.pop("labels", {}),
            "leaseGeneration": 1,
            "createdAt": "2030-01-01T00:00:00.000Z",
        }
        run.update(fields)
        self.runs[run_id] = run
        self.order.append(run_id)
        return run

    def set(self, run_id: str, **fields: Any) -> None:
        """Change a stored run's fields."""
        self.runs[run_id].update(fields)

    def emit(self, event_type: str, run_id: str, **fields: Any) -> None:
        """Push an event of a stored run to the listeners of its type (full form: a sequence)."""
        event = {"type": event_type, "runId": run_id, "jobName": self.runs[run_id]["jobName"]}
        event["labels"] = self.runs[run_id]["labels"]
        event.update(fields)
        if "sequence" not in fields:
            event["sequence"] = self._next
            self._next += 1
        elif event["sequence"] is None:
            del event["sequence"]  # a server's trimmed event
        wanted = "run:start" if event_type == "run:leased" else event_type
        for token, listened in list(self.listeners.items()):
            if listened == wanted or listened == "*":
                self.dispatcher.receive("event", json.dumps({"token": token, "event": event}))

    def hold(self, method: str) -> Any:
        """Make the next call of ``method`` wait until the returned event is set."""
        gate = asyncio.Event()
        self._held[method] = gate
        return gate

    # -- what the page client calls (python.mjs's interface) ----------------------------

    async def call(self, method: str, args_json: str) -> str:
        self.calls.append(method)
        gate = self._held.pop(method, None)
        if gate is not None:
            await gate.wait()
        if method in self.fail_next:
            return json.dumps({"ok": False, "error": self.fail_next.pop(method)})
        args = json.loads(args_json)
        result = getattr(self, "_" + method)(*args)
        if isinstance(result, dict) and "error" in result and "code" in result:
            return json.dumps({"ok": False, "error": result})
        return json.dumps({"ok": True, "result": result})

    def on(self, event_type: str) -> str:
        if event_type in self.unknown_types:
            error = {"error": "unknown event type " + event_type, "code": "validation_error"}
            return json.dumps({"ok": False, "error": error})
        token = self._next
        self._next += 1
        self.listeners[token] = event_type
        return json.dumps({"ok": True, "result": token})

    def off(self, token: int) -> None:
        self.listeners.pop(token, None)

    # -- the engine's answers -----------------------------------------------------------

    def _getRun(self, run_id: str) -> Any:
        return self.runs.get(run_id)

    def _getRuns(self, query: dict[str, Any]) -> Any:
        statuses = query.get("status")
        if isinstance(statuses, str):
            statuses = [statuses]
        for status in statuses or []:
            if status in self.unknown_statuses:
                return {"error": "unknown status " + status, "code": "validation_error"}
        names = query.get("jobName")
        if isinstance(names, str):
            names = [names]
        labels = query.get("labels") or {}
        found = []
        for run_id in reversed(self.order):
            run = self.runs[run_id]
            if statuses and run["status"] not in statuses:
                continue
            if names and run["jobName"] not in names:
                continue
            if any(run["labels"].get(key) != value for key, value in labels.items()):
                continue
            found.append(run)
        offset = query.get("offset") or 0
        limit = query.get("limit")
        return found[offset : offset + limit] if limit is not None else found[offset:]

    def _getLogs(self, run_id: str) -> Any:
        return self.logs.get(run_id, [])

    def _getSteps(self, run_id: str) -> Any:
        return [{"runId": run_id, "name": "s0", "index": 0, "status": "completed", "output": 1}]

    def _trigger(self, key: str, input: Any, options: dict[str, Any]) -> Any:
        if input.get("bad"):
            return {"error": "input: bad is not allowed", "code": "validation_error"}
        run = self.add("work", input=input, labels=options.get("labels") or {})
        self.emit("run:trigger", run["id"])
        return run

    def _cancel(self, run_id: str) -> Any:
        if self.runs[run_id]["status"] not in ("pending", "leased"):
            return {"error": "run " + run_id + " is finished", "code": "conflict"}
        self.set(run_id, status="cancelled")
        self.emit("run:cancel", run_id)
        return self.runs[run_id]

    def _retry(self, run_id: str) -> Any:
        self.set(run_id, status="pending", error=None)
        self.emit("run:retry", run_id)
        return self.runs[run_id]

    def _retrigger(self, run_id: str) -> Any:
        old = self.runs[run_id]
        run = self.add(old["jobName"], input=old["input"])
        self.emit("run:trigger", run["id"])
        return run

    def _deleteRun(self, run_id: str) -> Any:
        if self.runs[run_id]["status"] in ("pending", "leased"):
            return {"error": "run " + run_id + " is not finished", "code": "conflict"}
        run = self.runs[run_id]
        self.emit("run:delete", run_id)
        del self.runs[run_id]
        self.order.remove(run_id)
        return run


class _Dataset:
    """An element's ``dataset``: attributes set and read by name."""


class FakeElement:
    """The DOM members the live helpers use, and a way to click."""

    def __init__(self, document: "FakeDocument", tag: str) -> None:
        self.ownerDocument = document
        self.tagName = tag.upper()
        self.children: list[FakeElement] = []
        self.parent: FakeElement | None = None
        self.dataset = _Dataset()
        self.textContent = ""
        self.title = ""
        self.className = ""
        self.disabled = False
        self.value: Any = 0
        self.max: Any = 1
        self.listeners: list[Any] = []
        self.attributes: dict[str, str] = {}

    def append(self, *nodes: "FakeElement") -> None:
        for node in nodes:
            if node.parent is not None:
                node.parent.children.remove(node)
            node.parent = self
            self.children.append(node)

    def remove(self) -> None:
        if self.parent is not None:
            self.parent.children.remove(self)
            self.parent = None

    def replaceChildren(self) -> None:
        for child in self.children:
            child.parent = None
        self.children = []

    def removeAttribute(self, name: str) -> None:
        setattr(self, name, None)

    def setAttribute(self, name: str, value: str) -> None:
        self.attributes[name] = value

    def getAttribute(self, name: str) -> str | None:
        return self.attributes.get(name)

    def addEventListener(self, kind: str, listener: Any) -> None:
        self.listeners.append(listener)

    def removeEventListener(self, kind: str, listener: Any) -> None:
        self.listeners.remove(listener)

    def click(self) -> None:
        """Call the click listeners, as a user's click would."""
        if not self.disabled:
            for listener in list(self.listeners):
                listener(None)

    def find(self, class_name: str) -> "FakeElement":
        """Return the first descendant with this class name."""
        for child in self.children:
            if child.className == class_name:
                return child
            try:
                return child.find(class_name)
            except LookupError:
                pass
        raise LookupError(class_name)


class FakeDocument:
    """Makes :class:`FakeElement` objects."""

    def createElement(self, tag: str) -> FakeElement:
        return FakeElement(self, tag)

    def createElementNS(self, namespace: str, tag: str) -> FakeElement:
        return FakeElement(self, tag)
