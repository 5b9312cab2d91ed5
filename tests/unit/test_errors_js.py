"""The page's error classes (the JS client's ``errors.mjs``) are ``durably_web.errors``'s.

``errors.py`` is the home of the error shape: every class's name, HTTP status and code, the
codes of other classes' (``opfs_busy`` is a :class:`StorageError`), and the class an HTTP
status stands for when an answer names no code. ``errors.mjs`` mirrors them so a page can
``catch`` the same classes; this runs it under Node and compares, so the two cannot drift.
"""

from __future__ import annotations

import json

import durably_web.errors as errors
from durably_web.sitebuild.layout import PACKAGE
from tests.node_module import run_module

MODULE = PACKAGE / "web" / "client" / "errors.mjs"
STATUSES = (400, 401, 404, 408, 409, 418, 500, 503)

SCRIPT = """
const module = await import(process.argv[1]);
const [codes, statuses] = JSON.parse(process.argv[2]);
const { DurablyError, errorFromWire, errorFromHttp } = module;
const classes = {};
for (const value of Object.values(module)) {
  if (value === DurablyError || value.prototype instanceof DurablyError) {
    classes[value.name] = [value.statusCode, value.defaultCode];
  }
}
const byCode = Object.fromEntries(codes.map((code) => [code, errorFromWire({ error: "m", code }).name]));
const byStatus = Object.fromEntries(
  statuses.map((status) => [status, errorFromHttp(status, "", '{"error": "m"}').name]),
);
console.log(JSON.stringify({ classes, byCode, byStatus }));
"""


def run_js(codes: list[str]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = run_module(SCRIPT, MODULE, json.dumps([codes, STATUSES]))
    return out


def python_classes() -> list[type[errors.DurablyError]]:
    exported = (getattr(errors, name) for name in errors.__all__)
    return [
        cls for cls in exported if isinstance(cls, type) and issubclass(cls, errors.DurablyError)
    ]


def test_js_error_classes_are_the_python_ones() -> None:
    codes = sorted(errors._BY_CODE)
    js = run_js([*codes, "job_module_failed", "no_such_code"])
    assert js["classes"] == {cls.__name__: [cls.status_code, cls.code] for cls in python_classes()}
    # every code Python rebuilds as a class, the JS rebuilds as the same class (and a code
    # neither knows stays a plain DurablyError on both sides)
    expected = {code: errors._BY_CODE[code].__name__ for code in codes}
    expected |= {"job_module_failed": "DurablyError", "no_such_code": "DurablyError"}
    assert js["byCode"] == expected
    # an HTTP answer without a code (upstream's handler): the class of its status
    by_status = {
        str(status): type(errors.error_from_wire({"error": "m"}, status)).__name__
        for status in STATUSES
    }
    assert js["byStatus"] == by_status
