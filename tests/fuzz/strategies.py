"""What the fuzz tests generate, and a reference model of which values must be accepted.

The strategies produce JSON of any shape and depth (up to 60,000 levels), any Unicode
(lone surrogates and newlines included), huge and non-finite numbers and odd Python types.
The reference model (:func:`acceptable`, :func:`label_key_ok`, ...) is written from the
documented rules (docs/reference.md, "What a value may be"), independently of
``durably_web.json_value``, so a test compares the engine against the rules, not against
itself.

``DURABLY_FUZZ_EXAMPLES`` sets the examples per test (default 100: a few seconds each in CI);
``DURABLY_FUZZ_EXAMPLES=2000 pytest tests/fuzz`` is a long run.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import math
import os
import string
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("DURABLY_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
"""The settings of every fuzz test (no per-example deadline: the machine is shared)."""

MAX_DEPTH = 32  # docs/reference.md; json_value.MAX_DEPTH must agree (a unit test checks it)
MAX_NUMBER = 1.7976931348623157e308
LABEL_KEY_CHARS = frozenset(string.ascii_letters + string.digits + "-_./")

# Any code point, surrogates included (hypothesis leaves them out of text() by default).
characters = st.characters(codec=None) | st.characters(categories=["Cs"])
texts = st.text(characters, max_size=12) | st.sampled_from(
    ["", "a\n", "\ud800", "caf\udce9", "é😀", "\x00", "a" * 300, "NaN", "1e400"]
)
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [math.nan, math.inf, -math.inf, float("1e400"), 1.5e308, -0.0]
)
integers = st.integers(-(2**70), 2**70) | st.sampled_from(
    [10**308, 10**309, -(10**400), 2**1023, int(MAX_NUMBER), int(MAX_NUMBER) + 2**971]
)
scalars = st.none() | st.booleans() | integers | floats | texts
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(texts, children, max_size=4)
        | st.tuples(children, children)
    ),
    max_leaves=16,
)
depths = st.integers(0, 140) | st.sampled_from([MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 60_000])


def wrap(value: Any, levels: int, in_dict: bool) -> Any:
    """``value`` inside ``levels`` lists (or one-key dicts)."""
    for _ in range(levels):
        value = {"k": value} if in_dict else [value]
    return value


deep_values = st.builds(wrap, json_values, depths, st.booleans())


class Colour(enum.Enum):
    RED = "red"


class Size(enum.IntEnum):
    BIG = 3


odd_objects = st.sampled_from(
    [
        {1, 2},
        frozenset(),
        b"bytes",
        bytearray(b"x"),
        object(),
        decimal.Decimal("1.5"),
        decimal.Decimal("NaN"),
        datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
        datetime.date(2026, 1, 1),
        Colour.RED,
        Size.BIG,
        complex(1, 2),
        range(3),
        type,
        ...,
    ]
)
odd_values = st.recursive(
    scalars | odd_objects,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(texts | integers | st.booleans() | st.none(), children, max_size=3)
    ),
    max_leaves=8,
)
any_values = json_values | deep_values | odd_values


# -- the reference model ----------------------------------------------------------------------


def text_ok(text: str) -> bool:
    """Valid Unicode: no code point in the surrogate range."""
    return not any(0xD800 <= ord(char) <= 0xDFFF for char in text)


def column_text_ok(text: str) -> bool:
    """Text stored in a column of its own (keys, label values): valid Unicode without NUL."""
    return text_ok(text) and "\x00" not in text


def acceptable(value: Any) -> bool:
    """Whether the documented rules accept ``value`` as JSON data (strictly: JSON types)."""
    todo = [(value, 0)]
    while todo:
        item, depth = todo.pop()
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, int):
            if abs(item) > MAX_NUMBER:
                return False
        elif isinstance(item, float):
            if math.isnan(item) or math.isinf(item):
                return False
        elif isinstance(item, str):
            if not text_ok(item):
                return False
        elif isinstance(item, (list, tuple, dict)):
            if depth + 1 > MAX_DEPTH:
                return False
            if isinstance(item, dict):
                if not all(isinstance(key, str) and text_ok(key) for key in item):
                    return False
                todo.extend((child, depth + 1) for child in item.values())
            else:
                todo.extend((child, depth + 1) for child in item)
        else:
            return False
    return True


def as_json(value: Any) -> Any:
    """The JSON form of an acceptable value: what reading it back gives (tuples are lists)."""
    todo: list[tuple[Any, Any, Any]] = []
    root: list[Any] = [None]
    todo.append((value, root, 0))
    while todo:
        item, holder, slot = todo.pop()
        if isinstance(item, dict):
            copy: Any = {}
            for key, child in item.items():
                copy[key] = None
                todo.append((child, copy, key))
        elif isinstance(item, (list, tuple)):
            copy = [None] * len(item)
            for index, child in enumerate(item):
                todo.append((child, copy, index))
        else:
            copy = int(item) if isinstance(item, int) and not isinstance(item, bool) else item
        holder[slot] = copy
    return root[0]


def label_key_ok(key: Any) -> bool:
    """A label key is 1-255 characters of ``[A-Za-z0-9-_./]``, matched whole."""
    return isinstance(key, str) and 0 < len(key) <= 255 and set(key) <= LABEL_KEY_CHARS


def labels_ok(labels: Any) -> bool:
    """Labels are a mapping of valid keys to strings of valid Unicode."""
    if labels is None:
        return True
    return isinstance(labels, dict) and all(
        label_key_ok(key) and isinstance(value, str) and column_text_ok(value)
        for key, value in labels.items()
    )


def key_ok(key: Any) -> bool:
    """An idempotency or concurrency key: None, or 1-255 characters of valid Unicode, no NUL."""
    return key is None or (isinstance(key, str) and 0 < len(key) <= 255 and column_text_ok(key))


valid_label_keys = st.text(st.sampled_from(sorted(LABEL_KEY_CHARS)), min_size=1, max_size=8)
label_keys = (
    valid_label_keys
    | valid_label_keys.map(lambda key: key + "\n")  # what a regex `$` lets through
    | st.text(st.sampled_from([*sorted(LABEL_KEY_CHARS), "\n", " ", "é"]), max_size=8)
    | st.text(st.sampled_from(sorted(LABEL_KEY_CHARS)), min_size=250, max_size=260)
    | texts
)
label_values = valid_label_keys | st.text(max_size=6) | texts | scalars
label_maps = st.dictionaries(valid_label_keys, label_values, max_size=2) | st.dictionaries(
    label_keys, valid_label_keys | label_values, min_size=1, max_size=3
)
labels = st.none() | label_maps | label_maps | any_values
keys = st.none() | texts | st.text(characters, min_size=250, max_size=260) | scalars
