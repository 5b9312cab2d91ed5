r"""What durably_web accepts as a JSON value, checked in one place.

Every value that is stored or crosses a wire (trigger input, labels, keys, step results, log
data, outputs, request bodies, the CLI's ``--input``) must be JSON that every reader, Python
or JavaScript, reads back as the same value:

- arrays and objects nest at most :data:`MAX_DEPTH` levels deep (deeper values crash
  recursive encoders and validators, pydantic's included, long before they are useful);
- numbers are finite: no NaN or Infinity (JSON has no spelling for them; Python's encoder
  would write an invalid ``NaN`` and pydantic a silent ``null``, so NaN and Infinity would
  look like the same input), and no integer beyond the largest finite double, ±1.8e308
  (JavaScript reads it as Infinity);
- strings, object keys included, are valid Unicode: no lone surrogate (from a ``\ud800``
  JSON escape or a non-UTF-8 command-line argument), which UTF-8 cannot encode and SQLite
  cannot store;
- object keys are strings.

A value that breaks a rule raises :class:`~durably_web.errors.ValidationError` naming what it
was, where in it the problem is (``input for job 'x': rows.3.price: numbers must be finite,
got nan``) and the rule, before anything is written.

This module also runs on PyScript pages under MicroPython (the page client checks a value
before sending it), so it keeps to the subset both share, like :mod:`durably_web.errors`.
"""

import json
import math
import re

try:
    from collections.abc import Callable
    from typing import Any
except ImportError:  # MicroPython (PyScript pages): annotations are never evaluated there
    pass

from durably_web.errors import ValidationError

__all__ = [
    "MAX_DEPTH",
    "MAX_REQUEST_DEPTH",
    "check_exact",
    "check_text",
    "check_value",
    "flat_exact",
    "storable_text",
    "find_problem",
    "loads",
    "parse",
    "plain_copy",
    "shown",
    "valid_text",
]

MAX_DEPTH = 32
"""Most levels of nested arrays and objects a value may have (``[[1]]`` has 2).

The same everywhere, so a database moves between engines: pydantic's serializer gives up
after 48 levels in Pyodide (255 on CPython), and the models around a value take some too.
"""

MAX_REQUEST_DEPTH = MAX_DEPTH + 3
"""Most levels a request carrying a value may have: ``{"items": [{"input": value}]}``."""

_MAX_INTEGER = (2**53 - 1) * 2**971
"""The largest finite double, as an integer: a larger one reads as Infinity in JavaScript."""

_SHOWN = 60
try:
    import reprlib

    _REPR: "Any" = reprlib.Repr()
    _REPR.maxlevel = 3
    _REPR.maxstring = _REPR.maxother = 80
except ImportError:  # MicroPython: its repr of a page's values is what there is
    _REPR = None
try:
    _SETS: "tuple[type[Any], ...]" = (set, frozenset)
except NameError:  # a MicroPython build without frozenset
    _SETS = (set,)
_PATH_PARTS = 8

try:
    _TooDeep: "type[Exception]" = RecursionError
except NameError:  # MicroPython raises RuntimeError for too deep a recursion
    _TooDeep = RuntimeError


def shown(value: "Any", width: int = _SHOWN) -> str:
    """Return ``repr(value)`` cut to ``width`` characters, for error messages.

    ``repr`` escapes lone surrogates, so the message itself is always valid Unicode; nested
    values are shown a few levels deep (a plain ``repr`` of a 50,000-level list recurses
    until it fails).
    """
    text = _REPR.repr(value) if _REPR is not None else repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def valid_text(text: str) -> bool:
    """Whether ``text`` is valid Unicode (no lone surrogate): whether UTF-8 can encode it."""
    try:
        text.encode("utf-8")
    except UnicodeError:
        return False
    return True


def _text_problem(text: str) -> str:
    for position, char in enumerate(text):
        if 0xD800 <= ord(char) <= 0xDFFF:
            return (
                f"strings must be valid Unicode, got a lone surrogate {shown(char)} "
                f"at position {position} (an invalid \\u escape or non-UTF-8 bytes)"
            )
    return "strings must be valid Unicode"  # pragma: no cover - encode() found one above


def check_text(value: str, what: str) -> str:
    """Return ``value`` if a store can keep it as text; raise ``ValidationError`` naming ``what``.

    For text stored in a column of its own (keys, label values, step names, messages, ids):
    valid Unicode, and no NUL (U+0000), which PostgreSQL's text cannot hold; the rule is the
    same on every store, so a database's runs move between them. Inside JSON values (input,
    results, log data) a NUL is fine: JSON text stores it escaped.
    """
    if not valid_text(value):
        raise ValidationError(f"{what}: {_text_problem(value)}")
    position = value.find("\x00")
    if position >= 0:
        raise ValidationError(
            f"{what}: text must not contain NUL (U+0000), which PostgreSQL cannot store; "
            f"found at position {position}"
        )
    return value


def storable_text(text: str) -> str:
    r"""Return ``text`` with each lone surrogate written as ``\udXXX`` and each NUL as ``\x00``.

    For text the engine stores but did not get from a caller to refuse, such as an
    exception's message (a file name decoded with ``surrogateescape`` can carry a surrogate;
    any message a NUL): what :func:`check_text` refuses, escaped instead.
    """
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if valid_text(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _path(parts: "Any") -> str:
    keys = []
    while parts is not None:
        parts, key = parts
        keys.append(key)
    keys.reverse()
    if len(keys) > _PATH_PARTS:  # a deep path: its start and its end say where
        head = [_shown_key(key) for key in keys[: _PATH_PARTS // 2]]
        tail = [_shown_key(key) for key in keys[-(_PATH_PARTS // 2) :]]
        return ".".join(head + [f"…({len(keys) - _PATH_PARTS} more)…"] + tail)  # noqa: RUF005 - MicroPython has no [*a, *b]
    return ".".join(_shown_key(key) for key in keys)


def _shown_key(key: "Any") -> str:
    if isinstance(key, int):
        return str(key)
    if isinstance(key, str) and repr(key)[1:-1] == key:  # nothing to escape: shown as it is
        return key if len(key) <= 30 else key[:29] + "…"
    return shown(key, 30)  # a newline, a surrogate, a backslash: its repr keeps one line


def find_problem(
    value: "Any",
    *,
    strict: bool = True,
    max_depth: int = MAX_DEPTH,
    convert: "Callable[[Any], Any] | None" = None,
) -> "tuple[str, str] | None":
    """Return ``(path, problem)`` for the first rule ``value`` breaks, or None if it keeps all.

    Args:
        value: the value to check.
        strict: only JSON data is allowed (dicts with string keys, lists, tuples, str,
            int, float, bool, None). Not strict, other objects (a datetime, a model) are
            let through for a validator to judge, and sets are walked like lists.
        max_depth: most levels of nested containers.
        convert: turns an object JSON cannot hold into JSON data (e.g. a pydantic model
            into its dict), or raises ``TypeError``; its result is checked in place.

    Returns:
        None, or the dotted path of the offending part (``""`` for the value itself) and
        what is wrong with it.

    """
    return _walk(value, strict, max_depth, convert, None)


def plain_copy(
    value: "Any",
    what: str,
    *,
    max_depth: int = MAX_DEPTH,
    convert: "Callable[[Any], Any] | None" = None,
) -> "Any":
    """Check ``value`` strictly and return a copy made of plain dicts, lists and scalars.

    Objects ``convert`` handles (a page's records, a model) are replaced by what it returns.
    The walk is a loop, not a recursion, so MicroPython's small stack holds any depth.

    Raises:
        ValidationError: as :func:`check_value`.

    """
    out: list[Any] = [None]
    _raise(what, _walk(value, True, max_depth, convert, out))
    return out[0]


def _walk(
    value: "Any",
    strict: bool,
    max_depth: int,
    convert: "Callable[[Any], Any] | None",
    out: "list[Any] | None",
    exact: "list[bool] | None" = None,
) -> "tuple[str, str] | None":
    """Check ``value`` (see :func:`find_problem`); with ``out``, copy it into ``out[0]``.

    With ``exact``, ``exact[0]`` is set to False when any part of ``value`` is not its own
    JSON form (a tuple, a subclass, something ``convert`` turned into JSON data).
    """
    # Each entry: the item, its depth, its path (linked pairs), where its copy goes.
    todo: list[tuple[Any, int, Any, Any, Any]] = [(value, 0, None, out, 0)]
    while todo:
        item, depth, parts, holder, slot = todo.pop()
        kind = type(item)
        if kind is str:
            if not valid_text(item):
                return _path(parts), _text_problem(item)
        elif kind is int:
            if not -_MAX_INTEGER <= item <= _MAX_INTEGER:
                return _path(parts), (
                    f"numbers must be finite doubles (at most ±1.8e308), got an integer of "
                    f"{len(str(abs(item)))} digits"
                )
        elif kind is float:
            if not math.isfinite(item):
                return _path(parts), f"numbers must be finite, got {item!r}"
        elif item is None or kind is bool:
            pass
        elif isinstance(item, dict):
            if exact is not None and kind is not dict:
                exact[0] = False
            if depth >= max_depth:
                return _path(parts), f"nested more than {max_depth} levels deep"
            copy: Any = None if holder is None else {}
            for key, child in item.items():
                if isinstance(key, str):
                    if not valid_text(key):
                        return _path((parts, key)), "object keys: " + _text_problem(key)
                elif strict:
                    return _path(parts), (
                        f"object keys must be strings, got {shown(key, 30)} ({type(key).__name__})"
                    )
                if copy is not None:
                    copy[key] = None  # keeps the order; the child's copy replaces it
                todo.append((child, depth + 1, (parts, key), copy, key))
            item = copy
        elif isinstance(item, (list, tuple)) or (not strict and isinstance(item, _SETS)):
            if exact is not None and kind is not list:
                exact[0] = False
            if depth >= max_depth:
                return _path(parts), f"nested more than {max_depth} levels deep"
            copy = None if holder is None else [None] * len(item)
            for index, child in enumerate(item):
                todo.append((child, depth + 1, (parts, index), copy, index))
            item = copy
        elif isinstance(item, str):  # a subclass: a str enum member
            if exact is not None:
                exact[0] = False
            if not valid_text(item):
                return _path(parts), _text_problem(item)
        elif isinstance(item, (int, float)):  # bool and int enums, float subclasses
            if exact is not None:
                exact[0] = False
            plain = int(item) if isinstance(item, int) else float(item)
            todo.append((plain, depth, parts, holder, slot))
            continue
        elif convert is not None:
            if exact is not None:
                exact[0] = False
            try:
                converted = convert(item)
            except TypeError as exc:
                return _path(parts), str(exc)
            todo.append((converted, depth, parts, holder, slot))
            continue
        elif strict:
            return _path(parts), f"{type(item).__name__} is not JSON-serialisable"
        if holder is not None:
            holder[slot] = item
    return None


def _raise(what: str, found: "tuple[str, str] | None") -> None:
    if found is not None:
        path, problem = found
        raise ValidationError(f"{what}: {path}: {problem}" if path else f"{what}: {problem}")


def check_value(
    value: "Any",
    what: str,
    *,
    strict: bool = True,
    max_depth: int = MAX_DEPTH,
    convert: "Callable[[Any], Any] | None" = None,
) -> None:
    """Raise ``ValidationError`` naming ``what`` if ``value`` breaks a rule of this module.

    Arguments as for :func:`find_problem`.
    """
    _raise(what, _walk(value, strict, max_depth, convert, None))


def check_exact(value: "Any", what: str, *, convert: "Callable[[Any], Any] | None" = None) -> bool:
    """Check ``value`` strictly, as :func:`check_value`; return True if it is its own JSON form.

    True when decoding the value's JSON text would give an equal value of the same types:
    only dicts, lists, str, int, float, bool and None, no subclass, tuple or converted object.

    Raises:
        ValidationError: as :func:`check_value`.

    """
    exact = [True]
    _raise(what, _walk(value, True, MAX_DEPTH, convert, None, exact))
    return exact[0]


def flat_exact(value: "Any") -> bool:
    """Whether ``value`` is a flat plain value that keeps every rule here but valid Unicode.

    Flat plain: a scalar (str, int, float, bool, None, no subclass) or a dict of ``str`` keys
    to such scalars; such a value is its own JSON form. The common step result, checked in
    one pass without a copy or a path. The caller checks the Unicode of the encoded text
    instead (one ``encode`` of it, or ``isascii``), and walks the value (:func:`check_exact`)
    when this says False or the text is not valid: False
    means "not this shape", not "invalid".
    """
    if type(value) is not dict:
        return _plain_scalar(value)
    for key, item in value.items():
        kind = type(item)
        if type(key) is not str:
            return False
        if kind is str or kind is bool or item is None:
            continue
        if not _plain_scalar(item):  # numbers: the limits
            return False
    return True


def _plain_scalar(value: "Any") -> bool:
    kind = type(value)
    if kind is int:
        return bool(-_MAX_INTEGER <= value <= _MAX_INTEGER)
    if kind is float:
        return math.isfinite(value)
    return kind is str or kind is bool or value is None


# A JSON string (an unterminated one runs to the end: no backtracking) or a bracket.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.?)*"?|[\[\]{}]')


def _too_deep(text: str, max_depth: int) -> bool:
    """Whether the arrays and objects of JSON ``text`` nest past ``max_depth``, unparsed."""
    if text.count("[") + text.count("{") <= max_depth:  # the common case: too few brackets
        return False
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token == "[" or token == "{":
            depth += 1
            if depth > max_depth:
                return True
        elif token == "]" or token == "}":
            depth -= 1
    return False


def _refuse_constant(name: str) -> "Any":
    raise ValueError(f"{name} is not JSON (numbers must be finite)")


def parse(text: "str | bytes", what: str, max_depth: int = MAX_DEPTH) -> "Any":
    """Decode JSON text from outside without checking the value (see :func:`loads`).

    For a caller that needs part of the value (a request's id) even when the rest is
    refused: it calls :func:`check_value` itself.

    Raises:
        ValidationError: the text is not JSON (``NaN`` and ``Infinity`` are not), is not
            valid UTF-8, or nests deeper than the interpreter can decode.

    """
    too_deep = ValidationError(f"{what}: nested more than {max_depth} levels deep")
    try:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode(json.detect_encoding(text))
        if _too_deep(text, max_depth):
            raise too_deep  # before json.loads, whose recursion would overflow Pyodide's stack
        return json.loads(text, parse_constant=_refuse_constant)
    except _TooDeep:
        raise too_deep from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many digits
        if str(exc).startswith("Exceeds the limit"):  # Python's own integer-digits limit
            raise ValidationError(
                f"{what}: numbers must be finite doubles (at most ±1.8e308), got an integer "
                f"of thousands of digits"
            ) from None
        raise ValidationError(f"{what} is not valid JSON: {exc}") from None


def loads(text: "str | bytes", what: str, max_depth: int = MAX_DEPTH) -> "Any":
    """Parse JSON text from outside (a request body, a command-line option) and check it.

    Args:
        text: the JSON text (bytes are decoded as UTF-8, -16 or -32, as ``json.loads`` does).
        what: names the text in error messages (``"--input"``, ``"request body"``).
        max_depth: most levels of nested arrays and objects.

    Returns:
        The decoded value.

    Raises:
        ValidationError: the text is not JSON (``NaN`` and ``Infinity`` are not), is not
            valid UTF-8, nests too deep, or holds a value this module refuses.

    """
    value = parse(text, what, max_depth)
    check_value(value, what, max_depth=max_depth)
    return value
