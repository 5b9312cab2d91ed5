"""Migrations are numbered, forward-only, and produce exactly schema.sql."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from durably_web.adapters.sqlite3 import SQLite3Connection
from durably_web.storage.queries import migrations, queries, schema
from durably_web.storage.sqlite import SQLiteStore


def _schema_of(script_runner: sqlite3.Connection) -> list[str]:
    rows = script_runner.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type DESC, name"
    ).fetchall()
    return sorted(row[0] for row in rows)


def test_migrations_produce_schema_sql() -> None:
    # closing(): Python >= 3.13 warns (ResourceWarning, an error here) about unclosed databases.
    with (
        closing(sqlite3.connect(":memory:")) as migrated,
        closing(sqlite3.connect(":memory:")) as expected,
    ):
        for _, script in migrations():
            migrated.executescript(script)
        expected.executescript(schema())
        assert _schema_of(migrated) == _schema_of(expected)


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    assert [version for version, _ in migrations()] == list(range(1, len(migrations()) + 1))


def test_every_query_compiles_against_the_schema() -> None:
    with closing(sqlite3.connect(":memory:")) as db:
        db.executescript(schema())
        for name, sql in queries().items():
            if name.startswith("filter_"):
                sql = f"SELECT 1 FROM durably_runs r WHERE {sql}"
            sql = sql.replace("{filters}", "1")
            try:
                db.execute("EXPLAIN " + sql)
            except sqlite3.ProgrammingError as exc:  # needs parameters: bind that many NULLs
                count = int(str(exc).split("uses ")[1].split(",")[0])
                db.execute("EXPLAIN " + sql, [None] * count)


def test_clustering_the_steps_keeps_existing_checkpoints() -> None:
    """Migration 3 rebuilds durably_steps: rows and the completed-step constraint survive."""
    with closing(sqlite3.connect(":memory:")) as db:
        scripts = dict(migrations())
        db.executescript(scripts[1])
        db.executescript(scripts[2])
        insert = (
            'INSERT INTO durably_steps (id, run_id, name, "index", status, output, error,'
            " started_at, completed_at) VALUES (?, ?, ?, ?, ?, ?, NULL, 't', 't')"
        )
        db.execute(insert, ("S1", "R1", "a", 0, "completed", "1"))
        db.execute(insert, ("S2", "R1", "b", 1, "failed", None))
        db.execute(insert, ("S3", "R1", "b", 1, "completed", "2"))
        db.executescript(scripts[3])
        rows = db.execute('SELECT id, name, "index", status FROM durably_steps').fetchall()
        assert rows == [
            ("S1", "a", 0, "completed"),
            ("S2", "b", 1, "failed"),
            ("S3", "b", 1, "completed"),
        ]
        try:
            db.execute(insert, ("S4", "R1", "a", 2, "completed", "3"))
        except sqlite3.IntegrityError:
            pass
        else:
            raise AssertionError("a second completed checkpoint of one step was accepted")


_INSERT_STEP = (
    'INSERT INTO durably_steps (id, run_id, name, "index", status, output, error,'
    " started_at, completed_at) VALUES (?, ?, ?, ?, ?, ?, NULL, 't', 't')"
)


def _refuses(db: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> str:
    """Run a statement that must break the completed-step rule; return SQLite's message."""
    try:
        db.execute(sql, params)
    except sqlite3.IntegrityError as exc:
        return str(exc)
    raise AssertionError(f"accepted: {sql} {params}")


def test_keying_the_steps_by_name_keeps_checkpoints_and_the_completed_step_rule() -> None:
    """Migration 6 re-keys durably_steps by (run_id, name, id): rows survive, and a second
    completed row of a step is refused (insert or update) with the unique index's message."""
    with closing(sqlite3.connect(":memory:")) as db:
        scripts = dict(migrations())
        for version in range(1, 6):
            db.executescript(scripts[version])
        db.execute(_INSERT_STEP, ("S1", "R1", "a", 0, "completed", "1"))
        db.execute(_INSERT_STEP, ("S2", "R1", "b", 1, "failed", None))
        db.execute(_INSERT_STEP, ("S3", "R1", "b", 1, "completed", "2"))
        db.execute("UPDATE durably_steps SET attempt = 2, retry_at = 'r' WHERE id = 'S2'")
        db.executescript(scripts[6])
        rows = db.execute(
            'SELECT id, name, "index", status, attempt, retry_at FROM durably_steps ORDER BY id'
        ).fetchall()
        assert rows == [
            ("S1", "a", 0, "completed", None, None),
            ("S2", "b", 1, "failed", 2, "r"),
            ("S3", "b", 1, "completed", None, None),
        ]
        message = _refuses(db, _INSERT_STEP, ("S4", "R1", "a", 2, "completed", "3"))
        assert message == "UNIQUE constraint failed: durably_steps.run_id, durably_steps.name"
        _refuses(db, "UPDATE durably_steps SET status = 'completed' WHERE id = 'S2'", ())
        # What the rule allows: failed attempts of a completed step, the same name in
        # another run, and a completed row rewritten in place.
        db.execute(_INSERT_STEP, ("S5", "R1", "a", 0, "failed", None))
        db.execute(_INSERT_STEP, ("S6", "R2", "a", 0, "completed", "4"))
        db.execute("UPDATE durably_steps SET output = '5', status = 'completed' WHERE id = 'S6'")
        assert db.execute("SELECT COUNT(*) FROM durably_steps").fetchone() == (5,)


def test_a_checkpoint_writes_one_b_tree() -> None:
    """durably_steps has no index besides its key, and the look-ups by name use that key."""
    with closing(sqlite3.connect(":memory:")) as db:
        db.executescript(schema())
        indexes = db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'durably_steps'"
        ).fetchall()
        assert indexes == []
        plan = db.execute(
            "EXPLAIN QUERY PLAN " + queries()["completed_step"], ("R1", "a")
        ).fetchall()
        assert "USING PRIMARY KEY (run_id=? AND name=?)" in plan[0][3]


class _ScriptsSeen(SQLite3Connection):
    """A connection that keeps the scripts it runs."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.scripts: list[str] = []

    def execute_script(self, sql: str) -> None:
        self.scripts.append(sql)
        super().execute_script(sql)


@pytest.mark.parametrize("own_table", [False, True], ids=["new", "with-an-app-table"])
async def test_a_new_database_gets_schema_sql_at_once_and_any_other_the_migrations(
    tmp_path: Path, own_table: bool
) -> None:
    # An empty database gets schema.sql and every version in one transaction (a cold browser
    # start creates one, bench/BOOT-NOTES.md); one with any table already (the app's) is
    # migrated step by step. Both end with the same schema and versions.
    path = tmp_path / "store.db"
    app_table = "CREATE TABLE app_notes (id integer primary key, text text)"
    if own_table:
        with closing(sqlite3.connect(path)) as db:
            db.execute(app_table)
            db.commit()
    connection = _ScriptsSeen(str(path))
    store = SQLiteStore(connection)
    versions = [version for version, _ in migrations()]
    assert await store.migrate(1_000.0) == versions
    assert await store.migrate(1_000.0) == []
    await store.close()
    expected = [schema()] if not own_table else [script for _, script in migrations()]
    assert connection.scripts == expected
    with closing(sqlite3.connect(path)) as db, closing(sqlite3.connect(":memory:")) as fresh:
        fresh.executescript(schema())
        if own_table:
            fresh.execute(app_table)
        assert _schema_of(db) == _schema_of(fresh)
        recorded = db.execute("SELECT version FROM durably_schema_versions ORDER BY 1").fetchall()
        assert [version for (version,) in recorded] == versions
