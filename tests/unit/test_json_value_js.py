"""The page's JS check (the JS client's ``json.mjs``) keeps the rules of ``durably_web.json_value``.

Runs the module under Node (a project requirement: ``durably-web build`` needs it too) on the
values that JSON text would mangle, and on the Python side's limits, so the two cannot drift.
"""

from __future__ import annotations

from durably_web.json_value import MAX_DEPTH
from durably_web.sitebuild.layout import PACKAGE
from tests.node_module import run_module

MODULE = PACKAGE / "web" / "client" / "json.mjs"

SCRIPT = """
const { checkJson, MAX_DEPTH } = await import(process.argv[1]);
const nest = (n, leaf) => { let v = leaf; for (let i = 0; i < n; i++) v = [v]; return v; };
const cases = {
  nan: { a: NaN },
  infinity: [1, -Infinity],
  bigint: { n: 10n },
  loneHigh: "a\\ud800",
  loneLowKey: { "\\udc00": 1 },
  escapedSurrogate: JSON.parse('{"x": "\\\\ud800"}'),
  tooDeep: nest(MAX_DEPTH + 1, 1),
  veryDeep: nest(100000, 1),
  atTheLimit: nest(MAX_DEPTH, 1),
  plain: { s: "é😀", n: 1.5e308, i: -3, b: true, z: null, d: new Date(0), u: undefined },
  deepDates: nest(MAX_DEPTH, new Date(0)),
};
const out = { MAX_DEPTH };
for (const [name, value] of Object.entries(cases)) {
  try {
    checkJson(value, "input");
    out[name] = null;
  } catch (error) {
    out[name] = { name: error.name, code: error.code, message: error.message };
  }
}
console.log(JSON.stringify(out));
"""


def run_check() -> dict[str, object]:
    out: dict[str, object] = run_module(SCRIPT, MODULE)
    return out


def test_js_check_refuses_what_the_engine_refuses() -> None:
    out = run_check()
    assert out["MAX_DEPTH"] == MAX_DEPTH
    expected = {
        "nan": "input: a: numbers must be finite, got NaN",
        "infinity": "input: 1: numbers must be finite, got -Infinity",
        "bigint": "input: n: a BigInt is not JSON (got 10n)",
        "loneHigh": "input: strings must be valid Unicode, got a lone surrogate \\ud800 at position 1",
        "loneLowKey": (
            "input: object keys: strings must be valid Unicode, got a lone surrogate \\udc00 "
            "at position 0"
        ),
        "escapedSurrogate": (
            "input: x: strings must be valid Unicode, got a lone surrogate \\ud800 at position 0"
        ),
        "tooDeep": f"input: 0.0.0.0.…({MAX_DEPTH - 8} more)….0.0.0.0: nested more than "
        f"{MAX_DEPTH} levels deep",
        "veryDeep": f"input: 0.0.0.0.…({MAX_DEPTH - 8} more)….0.0.0.0: nested more than "
        f"{MAX_DEPTH} levels deep",
    }
    for name, message in expected.items():
        error = out[name]
        assert error == {"name": "ValidationError", "code": "validation_error", "message": message}
    for name in ("atTheLimit", "plain", "deepDates"):
        assert out[name] is None, (name, out[name])
