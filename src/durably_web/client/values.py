"""Turn the wire's JSON into Python values for a page: attribute records, JSON for JS.

Pure Python in the subset MicroPython shares with CPython (no dataclasses, no typing at run
time, no ``from __future__``: MicroPython has no ``__future__`` module and ignores
annotations, and CPython 3.11+ evaluates these ones fine), so a PyScript page runs it under
either interpreter, and CPython tests it.

- Runs, steps, logs, events and progress become :class:`Record` objects whose camelCase wire
  names are snake_case attributes (``run.job_name``, ``event.progress.current``).
- User data (``input``, ``output``, ``labels``, log ``data``) keeps its own keys, as a
  Record too, so ``run.output.count`` and ``run.output["count"]`` both work.
- ``run:leased`` on the wire is ``run:start`` here, as in the Python engine.

Errors come back through :func:`durably_web.errors.error_from_wire`, the one decoder.
"""

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any
except ImportError:  # MicroPython: annotations are never evaluated there
    pass

import json

from durably_web.json_value import MAX_DEPTH, MAX_REQUEST_DEPTH, plain_copy

__all__ = [
    "Record",
    "checked",
    "event_from_wire",
    "from_wire",
    "plain",
    "snake",
    "to_json",
    "with_fields",
]

_USER_DATA = ("input", "output", "labels", "data", "skippedInput", "skippedLabels")


class Record:
    """A read-only attribute view of a JSON object (``rec.name`` or ``rec["name"]``).

    Keys that clash with a method name (``keys``, ``get``, ...) are reachable with ``[]``.
    """

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = fields

    def __getattr__(self, name: str) -> Any:
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(f"record has no field {name!r}") from None

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __contains__(self, key: object) -> bool:
        return key in self._fields

    def __iter__(self) -> Any:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Record):
            return self._fields == other._fields
        return isinstance(other, dict) and self.to_dict() == other

    def __repr__(self) -> str:
        inner = ", ".join(f"{key}={value!r}" for key, value in self._fields.items())
        return f"Record({inner})"

    def get(self, key: str, default: Any = None) -> Any:
        """Return the field ``key``, or ``default``."""
        return self._fields.get(key, default)

    def keys(self) -> Any:
        """Return the field names."""
        return self._fields.keys()

    def items(self) -> Any:
        """Return ``(name, value)`` pairs."""
        return self._fields.items()

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as plain dicts and lists (for ``json.dumps``)."""
        return {key: plain(value) for key, value in self._fields.items()}


def with_fields(record: Record, **changes: Any) -> Record:
    """Return a copy of ``record`` with some fields replaced (Records are read-only views)."""
    fields = dict(record._fields)
    fields.update(changes)
    return Record(fields)


def plain(value: Any) -> Any:
    """Return ``value`` as JSON data: Records and pydantic models become dicts."""
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return dump(mode="json")
    return value


def checked(value: Any, what: str, max_depth: int = MAX_DEPTH) -> Any:
    """Return ``value`` as plain JSON data (like :func:`plain`), checked on the way.

    Raises:
        ValidationError: the value holds what :mod:`durably_web.json_value` refuses (NaN,
            Infinity, an integer past ±1.8e308, deeper than ``max_depth`` levels, ...): the
            engine would refuse it too, and JSON text cannot even carry some of it to JS.

    """
    return plain_copy(value, what, max_depth=max_depth, convert=_unwrap)


def to_json(value: Any, what: str) -> str:
    """Return ``value`` as JSON text for the JS adapter; see :func:`checked`."""
    return json.dumps(checked(value, what, MAX_REQUEST_DEPTH))


def _unwrap(value: Any) -> Any:
    if isinstance(value, Record):
        return value._fields
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def snake(name: str) -> str:
    """Return a camelCase wire name in snake_case (``jobName`` → ``job_name``)."""
    out = []
    for char in name:
        if char.isupper():
            out.append("_")
            out.append(char.lower())
        else:
            out.append(char)
    return "".join(out)


def _user(value: Any) -> Any:
    if isinstance(value, dict):
        return Record({key: _user(item) for key, item in value.items()})
    if isinstance(value, list):
        return [_user(item) for item in value]
    return value


def from_wire(value: Any) -> Any:
    """Convert a wire value (Run, Step, Log, lists of them) into Records, recursively."""
    if isinstance(value, list):
        return [from_wire(item) for item in value]
    if not isinstance(value, dict):
        return value
    fields = {}
    for key, item in value.items():
        if key in _USER_DATA:
            fields[snake(key)] = _user(item)
        elif key == "progress" and isinstance(item, dict):
            fields["progress"] = Record(
                {
                    "current": item.get("current", 0),
                    "total": item.get("total"),
                    "message": item.get("message"),
                }
            )
        else:
            fields[snake(key)] = from_wire(item)
    if "leaseGeneration" in value:  # a full Run: the engine's Run always has a disposition
        fields.setdefault("disposition", None)
    return Record(fields)


def event_from_wire(value: dict[str, Any]) -> Record:
    """Convert a wire event into a Record (``run:leased`` becomes ``run:start``)."""
    event: Record = from_wire(value)
    fields = event._fields
    if fields.get("type") == "run:leased":
        fields["type"] = "run:start"
    for name in ("run_id", "job_name"):
        if name not in fields:
            fields[name] = None
    if fields.get("type") in ("run:complete", "step:complete") and "output" not in fields:
        fields["output"] = None
    if fields.get("type") == "log:write" and "data" not in fields:
        fields["data"] = None
    return event
