"""``durably_web.json_value``: the one definition of a JSON value durably_web accepts."""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest

from durably_web.errors import ValidationError
from durably_web.json_value import (
    MAX_DEPTH,
    MAX_REQUEST_DEPTH,
    check_text,
    check_value,
    find_problem,
    flat_exact,
    loads,
    plain_copy,
    storable_text,
)
from durably_web.validation import dump_json_exact
from tests.conftest import VERY_DEEP


def nest(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


def refusal(value: Any, **options: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        check_value(value, "input", **options)
    assert caught.value.code == "validation_error"
    return str(caught.value)


class Colour(enum.Enum):
    RED = "red"


class Size(enum.IntEnum):
    BIG = 3


def test_plain_json_data_is_accepted_up_to_the_limits() -> None:
    fine = {
        "s": "é😀\u0000",
        "i": -(2**1000),
        "f": 1.7976931348623157e308,
        "b": False,
        "z": None,
        "l": [1, (2, 3)],
        "deep": nest(MAX_DEPTH - 1),
        "enum": Size.BIG,
    }
    assert find_problem(fine) is None
    assert find_problem(nest(MAX_DEPTH)) is None
    assert find_problem({}) is None and find_problem("") is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "input: numbers must be finite, got nan"),
        ({"a": [1, float("inf")]}, "input: a.1: numbers must be finite, got inf"),
        ({"a": -float("inf")}, "input: a: numbers must be finite, got -inf"),
        (
            {"n": 10**400},
            "input: n: numbers must be finite doubles (at most ±1.8e308), got an integer of "
            "401 digits",
        ),
        (
            ["\udcff"],
            "input: 0: strings must be valid Unicode, got a lone surrogate '\\udcff' at "
            "position 0 (an invalid \\u escape or non-UTF-8 bytes)",
        ),
        (
            {"ok": {"b\ud800": 1}},
            "input: ok.'b\\ud800': object keys: strings must be valid Unicode, got a lone "
            "surrogate '\\ud800' at position 1 (an invalid \\u escape or non-UTF-8 bytes)",
        ),
        ({1: "a"}, "input: object keys must be strings, got 1 (int)"),
        ({"s": {1, 2}}, "input: s: set is not JSON-serialisable"),
        ([object()], "input: 0: object is not JSON-serialisable"),
        (Colour.RED, "input: Colour is not JSON-serialisable"),
        (
            nest(MAX_DEPTH + 1),
            "input: 0.0.0.0.…(24 more)….0.0.0.0: nested more than 32 levels deep",
        ),
        (nest(VERY_DEEP), "input: 0.0.0.0.…(24 more)….0.0.0.0: nested more than 32 levels deep"),
    ],
    ids=[
        "nan",
        "inf",
        "-inf",
        "1e400-as-int",
        "lone-surrogate",
        "surrogate-key",
        "int-key",
        "set",
        "object",
        "enum",
        "129-levels",
        "very-deep",
    ],
)
def test_each_rule_is_refused_naming_the_path(value: Any, message: str) -> None:
    assert refusal(value) == message


def test_a_cycle_is_refused_as_too_deep() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert "nested more than 32 levels deep" in refusal(loop)


def test_lenient_mode_lets_other_objects_through_for_a_validator() -> None:
    import datetime

    check_value({"when": datetime.date(2026, 1, 1), 3: {1, 2}}, "input", strict=False)
    assert "numbers must be finite" in refusal({"x": {float("nan")}}, strict=False)
    assert "nested more than" in refusal(nest(MAX_DEPTH + 1), strict=False)


def test_convert_replaces_objects_and_its_result_is_checked() -> None:
    class Box:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

    def convert(value: Any) -> Any:
        if isinstance(value, Box):
            return {"inner": value.inner}
        raise TypeError(f"{type(value).__name__} is not JSON-serialisable")

    check_value([Box(1)], "x", convert=convert)
    assert plain_copy([Box((1, 2))], "x", convert=convert) == [{"inner": [1, 2]}]
    with pytest.raises(ValidationError, match=r"^x: 0\.inner: numbers must be finite, got nan$"):
        check_value([Box(float("nan"))], "x", convert=convert)
    with pytest.raises(ValidationError, match=r"^x: 0: object is not JSON-serialisable$"):
        check_value([object()], "x", convert=convert)


def test_plain_copy_copies_in_order_without_recursion() -> None:
    value = {"b": [1, {"c": (2, "d")}], "a": Size.BIG, "z": None}
    copy = plain_copy(value, "x")
    assert copy == {"b": [1, {"c": [2, "d"]}], "a": 3, "z": None}
    assert list(copy) == ["b", "a", "z"] and type(copy["a"]) is int
    deep = plain_copy(nest(MAX_DEPTH), "x")
    assert json.dumps(deep) == json.dumps(nest(MAX_DEPTH))


def test_loads_parses_and_checks_text_from_outside() -> None:
    assert loads('{"a": [1, 2.5, "é"]}', "--input") == {"a": [1, 2.5, "é"]}
    assert loads(b'{"a": 1}', "body") == {"a": 1}
    bad = {
        "NaN": "--input is not valid JSON: NaN is not JSON (numbers must be finite)",
        "[-Infinity]": "--input is not valid JSON: -Infinity is not JSON (numbers must be finite)",
        "1e400": "--input: numbers must be finite, got inf",
        '"\\ud800"': "--input: strings must be valid Unicode, got a lone surrogate '\\ud800' at "
        "position 0 (an invalid \\u escape or non-UTF-8 bytes)",
        "9" * 5000: "--input: numbers must be finite doubles (at most ±1.8e308), got an "
        "integer of thousands of digits",
        "[" * 300 + "]" * 300: "--input: nested more than 32 levels deep",
        '["[[[[", ' * 200 + "1" + "]" * 200: "--input: nested more than 32 levels deep",
        "[" * 100_000 + "]" * 100_000: "--input: nested more than 32 levels deep",
        "{": "--input is not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
    }
    for text, message in bad.items():
        with pytest.raises(ValidationError) as caught:
            loads(text, "--input")
        assert str(caught.value) == message, text[:20]
    with pytest.raises(ValidationError, match="is not valid JSON: 'utf-8' codec can't decode"):
        loads(b'"\xff"', "body")
    assert loads("[" * MAX_REQUEST_DEPTH + "]" * MAX_REQUEST_DEPTH, "body", MAX_REQUEST_DEPTH)
    # Brackets inside strings (escaped quotes included) do not count; unterminated is not JSON.
    inside = "[" * 200 + '\\"' + "{" * 200
    assert loads(f'["{inside}", {{"a": [[1]]}}]', "x") == [
        "[" * 200 + '"' + "{" * 200,
        {"a": [[1]]},
    ]
    with pytest.raises(ValidationError, match="is not valid JSON"):
        loads('"' + '\\"[' * 1000, "x")
    assert loads(" [" * 10 + "1" + "]" * 10, "x", max_depth=10) == nest(10)
    with pytest.raises(ValidationError, match="nested more than 9 levels deep"):
        loads("[" * 10 + "]" * 10, "x", max_depth=9)


def test_check_text_and_storable_text() -> None:
    assert check_text("plain é", "key") == "plain é"
    with pytest.raises(ValidationError, match=r"^key: strings must be valid Unicode"):
        check_text("x\udcff", "key")
    assert storable_text("ok") == "ok"
    assert storable_text("file \udcff.txt") == "file \\udcff.txt"
    storable_text("file \udcff.txt").encode("utf-8")
    with pytest.raises(ValidationError, match=r"^key: text must not contain NUL .* position 1"):
        check_text("a\x00", "key")
    assert storable_text("a\x00b \udcff") == "a\\x00b \\udcff"


class Tone(enum.StrEnum):
    SOFT = "soft"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"i": 1, "ok": True, "s": 'é\n"', "f": 0.5, "n": None, "-": -0.0}, (True, True)),
        ("text", (True, True)),
        (7, (True, True)),
        ({"nested": {"a": 1}}, (False, True)),  # not flat: walked, still exact
        ({"t": (1, 2)}, (False, False)),  # a tuple is not its own JSON form
        ({"e": Tone.SOFT}, (False, False)),  # a str subclass
        (True, (True, True)),
    ],
)
def test_flat_results_take_the_one_pass_check(value: Any, expected: tuple[bool, bool]) -> None:
    """``flat_exact`` picks out flat plain values; ``dump_json_exact`` gives the same text and
    exactness on both paths."""
    flat, exact = expected
    assert flat_exact(value) is flat
    text, is_exact = dump_json_exact(value, "result")
    assert is_exact is exact
    assert text == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": "\ud800"}, "result: a: strings must be valid Unicode, got a lone surrogate"),
        ({"\udfff": 1}, "result: '\\udfff': object keys: strings must be valid Unicode"),
        ("\ud800", "result: strings must be valid Unicode"),
        ({"x": float("nan")}, "result: x: numbers must be finite, got nan"),
        ({"big": 10**400}, "result: big: numbers must be finite doubles"),
        ({1: "a"}, "result: object keys must be strings, got 1 (int)"),
    ],
)
def test_flat_results_that_break_a_rule_get_the_walks_message(value: Any, message: str) -> None:
    """A flat value the one-pass check passes on (bad Unicode) or refuses is walked, so the
    error names the place as for any other value."""
    with pytest.raises(ValidationError) as caught:
        dump_json_exact(value, "result")
    assert str(caught.value).startswith(message)
