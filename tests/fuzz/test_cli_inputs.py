"""Fuzz the CLI's arguments: exit 0 with the right answer, or exit 2 with one line; no traceback.

``main(argv)`` runs in process (a subprocess per example would make the suite slow; the
subprocess path, with argv bytes that are not UTF-8, is ``tests/integration/test_cli.py``).
Lone surrogates in the generated text are what Python makes of non-UTF-8 argv bytes.

- ``run MODULE:JOB --input TEXT [--idempotency-key K]``: exit 0 and the output printed is
  the input's JSON form exactly when the text is JSON the documented rules accept (and the
  key is valid); otherwise exit 2, one ``durably-web: error:`` line, no run stored (no
  database file at all when the refusal comes before opening one).
- ``run-info ID``, ``runs --job X --status S --limit N`` on an existing database: exit 0 or
  2, never a traceback, and the database unchanged.
"""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import event, example, given
from hypothesis import strategies as st

from durably_web.cli import main
from tests.fuzz.strategies import (
    FUZZ,
    acceptable,
    as_json,
    characters,
    json_values,
    key_ok,
    texts,
)

JOB = f"{Path(__file__).with_name('cli_jobs.py')}:echo"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, out: str, err: str) -> None:
    assert code == 2, (code, out, err)
    assert out == "" and err.startswith("durably-web: error: "), (out, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err


def _refuse(name: str) -> Any:
    raise ValueError(name)


def expected_value(text: str) -> tuple[bool, Any]:
    """The reference: (accepted, value) for an ``--input`` text, from the documented rules."""
    try:
        value = json.loads(text, parse_constant=_refuse)
    except (ValueError, RecursionError):
        return False, None
    return acceptable(value), value


def dumped(value: Any) -> str:
    try:
        return json.dumps(value, allow_nan=True)
    except (ValueError, RecursionError):
        return "null"


input_texts = (
    json_values.map(dumped)
    | st.text(characters, max_size=20)
    | st.builds(
        lambda n, inner: "[" * n + inner + "]" * n,
        st.integers(0, 60_000),
        st.sampled_from(["", "1", "NaN"]),
    )
    | st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", '"\\ud800"', "9" * 5000, "{", ""])
)


@FUZZ
@given(text=input_texts, key=st.none() | texts)
@example(text="[" * 300 + "]" * 300, key=None)
@example(text='{"x": NaN}', key=None)
@example(text='{"x": "\\udcff"}', key=None)
@example(text='{"x": "\udcff"}', key=None)
@example(text="{}", key="k\udcff")
def test_run_answers_or_refuses_any_input(text: str, key: str | None) -> None:
    accepted, value = expected_value(text)
    accepted = accepted and key_ok(key)
    event("accepted" if accepted else "refused")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "fuzz.db"
        # OPTION=VALUE: a value starting with "-" would otherwise be read as an option.
        argv = ["run", JOB, f"--input={text}", f"--db={db}"]
        if key is not None:
            argv.append(f"--idempotency-key={key}")
        code, out, err = cli(*argv)
        if accepted:
            assert code == 0, (code, err)
            assert json.loads(out) == as_json(value)
        else:
            assert_one_line_error(code, out, err)
            if db.exists():  # only a key the argument parser let through reaches the engine
                with contextlib.closing(sqlite3.connect(db)) as conn:
                    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
                    if "durably_runs" in tables:
                        assert conn.execute("SELECT count(*) FROM durably_runs").fetchone() == (0,)


_DB: list[Path] = []


def existing_database() -> tuple[Path, str]:
    """A database with one completed run, made once for the read-only commands."""
    if not _DB:
        directory = Path(tempfile.mkdtemp(prefix="durably-fuzz-"))
        db = directory / "read.db"
        code, _, err = cli("run", JOB, "--input", '{"a": 1}', "--db", str(db))
        assert code == 0, err
        _DB.append(db)
    db = _DB[0]
    with contextlib.closing(sqlite3.connect(db)) as conn:
        [(run_id,)] = conn.execute("SELECT id FROM durably_runs").fetchall()
    return db, str(run_id)


def snapshot(db: Path) -> list[Any]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return [
            conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("durably_runs", "durably_steps", "durably_logs", "durably_run_labels")
        ]


@FUZZ
@given(
    command=st.sampled_from(["run-info", "runs"]),
    text=texts | st.text(characters, max_size=30) | st.sampled_from(["pending", "completed"]),
    limit=st.none() | st.sampled_from(["1", "0", "-1", "x", "99999999999999999999", "٣"]),
    real_id=st.booleans(),
)
@example(command="run-info", text="\udcff", limit=None, real_id=False)
@example(command="runs", text="\udcff", limit=None, real_id=False)
def test_read_commands_answer_or_refuse_and_write_nothing(
    command: str, text: str, limit: str | None, real_id: bool
) -> None:
    db, run_id = existing_database()
    before = snapshot(db)
    if command == "run-info":
        argv = ["run-info", run_id if real_id else text, "--db", str(db)]
    else:
        argv = ["runs", "--db", str(db), "--job", text]
        if real_id:
            argv += ["--status", text]
        if limit is not None:
            argv += ["--limit", limit]
    code, out, err = cli(*argv)
    event(f"{command} exit {code}")
    if code == 0:
        assert err == "" and out
        if command == "run-info":
            assert run_id in out
    else:
        assert_one_line_error(code, out, err)
    assert snapshot(db) == before
