"""A trigger on the wire: its options' wire names, translated in one place.

A trigger's options are ``idempotency_key``, ``concurrency_key``, ``labels`` and
``coalesce`` in Python and ``idempotencyKey``, ``concurrencyKey``, ``labels`` and
``coalesce`` on every wire (upstream Durably's ``POST /trigger`` body, the browser worker's
``trigger`` message, a batch item), beside ``input``. The HTTP server, the worker host, the
CPython HTTP client and the page client all translate with these two functions.

This module also runs on PyScript pages under MicroPython (the page client builds its
requests with it), so it keeps to the subset both share, like :mod:`durably_web.errors`.
"""

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any
except ImportError:  # MicroPython (PyScript pages): annotations are never evaluated there
    pass

from durably_web.errors import ValidationError

__all__ = ["TRIGGER_OPTIONS", "options_to_wire", "trigger_from_wire", "trigger_to_wire"]

TRIGGER_OPTIONS = (
    ("idempotency_key", "idempotencyKey"),
    ("concurrency_key", "concurrencyKey"),
    ("labels", "labels"),
    ("coalesce", "coalesce"),
)
"""``(python name, wire name)`` of each trigger option."""

_WIRE_NAME = dict(TRIGGER_OPTIONS)
_WIRE_NAMES = set(_WIRE_NAME.values())


def options_to_wire(options: "dict[str, Any]") -> "dict[str, Any]":
    """Return trigger options by wire name, leaving out the ones that are None.

    Args:
        options: options by Python name (``idempotency_key``) or wire name
            (``idempotencyKey``).

    Raises:
        ValidationError: an option name that is neither.

    """
    out = {}
    for name, value in options.items():
        wire = _WIRE_NAME.get(name) or (name if name in _WIRE_NAMES else None)
        if wire is None:
            known = ", ".join(sorted(_WIRE_NAME))
            raise ValidationError(f"unknown trigger option {name!r}; known: {known}")
        if value is not None:
            out[wire] = value
    return out


def trigger_to_wire(input: "Any", options: "dict[str, Any]") -> "dict[str, Any]":
    """Return a trigger as the wire has it: ``{"input", <wire option>: value, ...}``.

    Raises:
        ValidationError: an unknown option name (see :func:`options_to_wire`).

    """
    body = {"input": input}
    body.update(options_to_wire(options))
    return body


def trigger_from_wire(data: "dict[str, Any]") -> "dict[str, Any]":
    """Return the options of a wire trigger by Python name (absent ones are None).

    Other keys (``input``, ``jobName``, anything upstream's clients add) are not options;
    the values are checked where the trigger is validated.
    """
    return {name: data.get(wire) for name, wire in TRIGGER_OPTIONS}
