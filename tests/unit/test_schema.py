"""Migrations are numbered, forward-only, and produce exactly schema.sql."""

from __future__ import annotations

import sqlite3
from contextlib import closing

from durably_web.storage.queries import migrations, queries, schema


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
