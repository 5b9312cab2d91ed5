"""pydantic at the edges: parse values into types and dump them to JSON, with clear errors.

Every failure raises :class:`~durably_web.errors.ValidationError` whose message names what was
being validated and each offending field, e.g.
``invalid input for job 'import-csv': filename: Field required``. What counts as a JSON value
(depth, finite numbers, valid Unicode) is :mod:`durably_web.json_value`'s to say; every dump
here goes through it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from durably_web.errors import ValidationError
from durably_web.json_value import (
    check_exact,
    check_value,
    flat_exact,
    storable_text,
    valid_text,
)

if TYPE_CHECKING:
    import pydantic

# pydantic is imported where it is used (a value to validate or dump with an adapter exists
# only once pydantic is): a browser engine starts without it (bench/BOOT-NOTES.md).

__all__ = [
    "dump_json",
    "dump_json_exact",
    "format_pydantic_error",
    "load_json",
    "parse",
    "to_json_value",
]


def format_pydantic_error(error: pydantic.ValidationError) -> str:
    """Render a pydantic error as ``field.path: message; other: message``."""
    parts = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or "value"
        parts.append(f"{location}: {item['msg']}")
    return storable_text("; ".join(parts))  # a location can be a caller's dict key


def parse(adapter: pydantic.TypeAdapter[Any], value: Any, what: str) -> Any:
    """Validate ``value`` with ``adapter``; raise ``ValidationError`` naming ``what`` on failure."""
    import pydantic  # see the module's imports

    try:
        return adapter.validate_python(value)
    except pydantic.ValidationError as exc:
        raise ValidationError(f"invalid {what}: {format_pydantic_error(exc)}") from None


def to_json_value(adapter: pydantic.TypeAdapter[Any], value: Any, what: str) -> Any:
    """Dump a validated value to plain JSON data (dicts, lists, str, numbers, bools, None).

    The data is checked again when it is stored (:func:`dump_json`).

    Raises:
        ValidationError: the value breaks a rule of :mod:`durably_web.json_value`. It is
            checked in Python form: pydantic's JSON mode turns NaN and Infinity held by an
            ``Any`` field into ``null`` without a word.

    """
    import pydantic_core  # see the module's imports

    try:
        check_value(adapter.dump_python(value), what, strict=False)
        data = adapter.dump_python(value, mode="json")
    except (pydantic_core.PydanticSerializationError, ValueError, RecursionError) as exc:
        # ValueError: pydantic's "Maximum serialization depth exceeded" (a cycle).
        raise ValidationError(f"{what} is not JSON-serialisable: {exc}") from None
    return data


def dump_json(value: Any, what: str) -> str:
    """Check plain data with :mod:`durably_web.json_value` and serialise it to compact JSON.

    pydantic models are dumped first (``model_dump(mode="json")``).

    Raises:
        ValidationError: ``value`` holds something JSON cannot represent (a set, an object,
            NaN or infinity, a lone surrogate) or nests too deep, naming ``what`` and where.

    """
    check_value(value, what, convert=_dump_model)
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError) as exc:  # pragma: no cover - check_value refuses these
        raise ValidationError(f"{what} is not JSON-serialisable: {exc}") from None


def dump_json_exact(value: Any, what: str | Callable[[], str]) -> tuple[str, bool]:
    """Like :func:`dump_json`; also say whether ``value`` is its own JSON form.

    When it is (plain dicts, lists and scalars, see :func:`~durably_web.json_value.check_exact`),
    the caller may use ``value`` where it would otherwise decode the text again. ``what`` may
    be a function making the name: it is called only for a value that is not the common flat
    one (a step result's name costs a ``repr`` per step otherwise).
    """
    if flat_exact(value):  # the common step result: one pass, then the text's Unicode
        text = "".join(_FLAT_ENCODE(value, 0)) if _FLAT_ENCODE else _ENCODER.encode(value)
        if text.isascii() or valid_text(text):
            return text, True
    if not isinstance(what, str):
        what = what()
    exact = check_exact(value, what, convert=_dump_model)
    try:
        return _ENCODER.encode(value), exact
    except (TypeError, ValueError) as exc:  # pragma: no cover - check_exact refuses these
        raise ValidationError(f"{what} is not JSON-serialisable: {exc}") from None


def _dump_model(value: Any) -> Any:
    import pydantic  # see the module's imports

    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


_ENCODER = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_dump_model
)
# ``_ENCODER.encode`` builds the C encoder anew on each call: half its cost for a small result.
# For flat values (no nesting, so no cycle to look for: markers None) it is built once, with
# the same settings (no indent, ":" and ",", no key sorting, no NaN). None without ``_json``.
_MAKE_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)
_FLAT_ENCODE: Callable[[Any, int], Iterable[str]] | None = (
    None
    if _MAKE_ENCODER is None
    else _MAKE_ENCODER(
        None, _dump_model, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
)


def load_json(text: str | None) -> Any:
    """Decode JSON text stored by :func:`dump_json`; ``None`` stays ``None``."""
    return None if text is None else json.loads(text)
