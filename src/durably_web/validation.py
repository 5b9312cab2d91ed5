"""pydantic at the edges: parse values into types and dump them to JSON, with clear errors.

Every failure raises :class:`~durably_web.errors.ValidationError` whose message names what was
being validated and each offending field, e.g.
``invalid input for job 'import-csv': filename: Field required``.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pydantic_core

from durably_web.errors import ValidationError

__all__ = ["dump_json", "format_pydantic_error", "load_json", "parse", "to_json_value"]


def format_pydantic_error(error: pydantic.ValidationError) -> str:
    """Render a pydantic error as ``field.path: message; other: message``."""
    parts = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or "value"
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)


def parse(adapter: pydantic.TypeAdapter[Any], value: Any, what: str) -> Any:
    """Validate ``value`` with ``adapter``; raise ``ValidationError`` naming ``what`` on failure."""
    try:
        return adapter.validate_python(value)
    except pydantic.ValidationError as exc:
        raise ValidationError(f"invalid {what}: {format_pydantic_error(exc)}") from None


def to_json_value(adapter: pydantic.TypeAdapter[Any], value: Any, what: str) -> Any:
    """Dump a validated value to plain JSON data (dicts, lists, str, numbers, bools, None)."""
    try:
        return adapter.dump_python(value, mode="json")
    except pydantic_core.PydanticSerializationError as exc:
        raise ValidationError(f"{what} is not JSON-serialisable: {exc}") from None


def dump_json(value: Any, what: str) -> str:
    """Serialise plain data to compact JSON text; pydantic models are dumped first.

    Raises:
        ValidationError: ``value`` holds something JSON cannot represent (a set, an object,
            NaN or infinity), naming ``what``.

    """
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what} is not JSON-serialisable: {exc}") from None


def _dump_model(value: Any) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_dump_model
)


def load_json(text: str | None) -> Any:
    """Decode JSON text stored by :func:`dump_json`; ``None`` stays ``None``."""
    return None if text is None else json.loads(text)
