"""What every Python system script shares: the command line, the result line, the data set.

A *system* is a command that runs one workload once and prints one JSON line on stdout::

    <command> --workload NAME --synchronous FULL|NORMAL --dir DIR --params '{"runs": 100}'

    {"system": "...", "workload": "...", "synchronous": "FULL", "metrics": {...}, "info": {...}}

``metrics`` holds numbers the harness takes medians of; ``info`` holds facts (versions,
settings) it reports once. The Node scripts in ``bench/upstream_node`` speak the same protocol.
This module is stdlib-only so that it runs in every interpreter the harness uses (the
project's venv and the separate DBOS venv); ``percentiles`` comes from its stdlib-only
sibling ``bench_workloads``, which the browser's worker loads too.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench_workloads import percentiles

__all__ = [
    "EXPIRED",
    "QUERY_JOB",
    "Args",
    "dataset_rows",
    "dataset_sql",
    "dataset_summary",
    "emit",
    "parse_args",
    "peak_rss_mb",
    "percentiles",
    "step_value",
]

#: A lease expiry in the past: the harness writes it to "expire" a crashed worker's lease.
EXPIRED = "2000-01-01T00:00:00.000Z"

#: The job name of the bulk-inserted runs in the queries workload.
QUERY_JOB = "bench-query"

_BASE = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Args:
    """One invocation: which workload, at which durability setting, where, how big."""

    workload: str
    synchronous: str
    dir: str
    params: dict[str, Any]
    phase: str

    def db_path(self, name: str = "bench.db") -> str:
        """Return a database file inside this invocation's private directory."""
        return os.path.join(self.dir, name)


def parse_args(
    description: str, workloads: Sequence[str], argv: Sequence[str] | None = None
) -> Args:
    """Parse the common system-script command line (``argv``: default ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--workload", required=True, choices=list(workloads))
    parser.add_argument("--synchronous", required=True, choices=["NORMAL", "FULL"])
    parser.add_argument("--dir", required=True, help="a fresh directory for database files")
    parser.add_argument("--params", default="{}", help="workload sizes as a JSON object")
    parser.add_argument("--phase", default="measure", help=argparse.SUPPRESS)
    ns = parser.parse_args(argv)
    params = json.loads(ns.params)
    if not isinstance(params, dict):
        parser.error("--params must be a JSON object")
    return Args(ns.workload, ns.synchronous, ns.dir, params, ns.phase)


def emit(args: Args, system: str, metrics: dict[str, Any], info: dict[str, Any]) -> None:
    """Print the one result line the harness reads."""
    line = {
        "system": system,
        "workload": args.workload,
        "synchronous": args.synchronous,
        "params": args.params,
        "metrics": metrics,
        "info": info,
    }
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def step_value(i: int) -> dict[str, Any]:
    """Return the small JSON value every benchmark step returns."""
    return {"i": i, "ok": True}


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def open_raw(path: str, synchronous: str) -> sqlite3.Connection:
    """Open a plain autocommit ``sqlite3`` connection with the benchmark's durability settings."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    return db


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dataset_rows(count: int) -> Iterator[tuple[tuple[Any, ...], tuple[str, str, str]]]:
    """Yield ``count`` stored runs for the queries workload, in upstream's schema.

    Each item is a ``durably_runs`` row (in :data:`RUN_COLUMNS` order) and its
    ``durably_run_labels`` row. The mix is deterministic and the same in every system (the
    Node script computes the same formula): 90% completed, 5% failed, 5% pending; label
    ``org`` in 10 values; one run per second of created_at.
    """
    for i in range(count):
        h = (i * 2654435761) % 4294967296
        bucket = h % 100
        status = "failed" if bucket < 5 else "pending" if bucket < 10 else "completed"
        org = f"org-{(h // 256) % 10}"
        run_id = f"01BENCH{i:019d}"
        created = _iso(_BASE + timedelta(seconds=i))
        done = None if status == "pending" else _iso(_BASE + timedelta(seconds=i, milliseconds=500))
        yield (
            (
                run_id,
                QUERY_JOB,
                json.dumps({"n": i}, separators=(",", ":")),
                status,
                json.dumps({"org": org}, separators=(",", ":")),
                0 if status == "pending" else 3,
                0 if status == "pending" else 3,
                '{"ok":true}' if status == "completed" else None,
                "boom" if status == "failed" else None,
                done,
                done,
                created,
                done or created,
            ),
            (run_id, "org", org),
        )


#: Column order of :func:`dataset_rows`' run rows.
RUN_COLUMNS = (
    "id",
    "job_name",
    "input",
    "status",
    "labels",
    "current_step_index",
    "completed_step_count",
    "output",
    "error",
    "started_at",
    "completed_at",
    "created_at",
    "updated_at",
)


def bulk_insert_runs(db: sqlite3.Connection, count: int) -> None:
    """Insert ``count`` runs and their labels into upstream Durably's schema in one transaction."""
    columns = ", ".join(f'"{c}"' for c in RUN_COLUMNS)
    marks = ", ".join("?" for _ in RUN_COLUMNS)
    rows = list(dataset_rows(count))
    db.execute("BEGIN IMMEDIATE")
    db.executemany(f"INSERT INTO durably_runs ({columns}) VALUES ({marks})", [r for r, _ in rows])
    db.executemany(
        "INSERT INTO durably_run_labels (run_id, key, value) VALUES (?, ?, ?)",
        [label for _, label in rows],
    )
    db.execute("COMMIT")


_DATASET_SQL = """
WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < {count}),
hashed(i, h) AS (SELECT i, (i * 2654435761) % 4294967296 FROM seq),
mixed(i, status, org) AS (
  SELECT i,
    CASE WHEN h % 100 < 5 THEN 'failed' WHEN h % 100 < 10 THEN 'pending' ELSE 'completed' END,
    'org-' || ((h / 256) % 10)
  FROM hashed
),
dated(i, status, org, created, done) AS (
  SELECT i, status, org,
    strftime('%Y-%m-%dT%H:%M:%fZ', {base} + i, 'unixepoch'),
    CASE WHEN status <> 'pending'
      THEN strftime('%Y-%m-%dT%H:%M:%fZ', {base} + i + 0.5, 'unixepoch') END
  FROM mixed
)
INSERT INTO durably_runs ({columns})
SELECT '01BENCH' || printf('%019d', i), '{job}', '{{"n":' || i || '}}', status,
  '{{"org":"' || org || '"}}',
  CASE status WHEN 'pending' THEN 0 ELSE 3 END, CASE status WHEN 'pending' THEN 0 ELSE 3 END,
  CASE status WHEN 'completed' THEN '{{"ok":true}}' END, CASE status WHEN 'failed' THEN 'boom' END,
  done, done, created, COALESCE(done, created)
FROM dated ORDER BY i
"""


def dataset_sql(count: int) -> list[str]:
    """Return SQL statements that insert the same rows as :func:`dataset_rows`, in order.

    For systems that run inside a browser, where sending 2 x ``count`` parameterised
    statements across a worker boundary would take longer than the workload: the rows are
    generated by SQLite itself (a recursive CTE), then the labels are copied from them. Run
    the statements in one transaction after the engine's migration.
    """
    columns = ", ".join(f'"{c}"' for c in RUN_COLUMNS)
    base = int(_BASE.timestamp())
    runs = _DATASET_SQL.format(count=int(count), base=base, columns=columns, job=QUERY_JOB)
    labels = (
        "INSERT INTO durably_run_labels (run_id, key, value) "
        "SELECT id, 'org', json_extract(labels, '$.org') FROM durably_runs "
        f"WHERE job_name = '{QUERY_JOB}' ORDER BY id"
    )
    return [runs.strip(), labels]


#: A query summarising the stored data set: compare its row with :func:`dataset_summary`.
DATASET_SUMMARY_SQL = (
    "SELECT COUNT(*), SUM(status = 'failed'), SUM(status = 'pending'), MAX(created_at), "
    "(SELECT COUNT(*) FROM durably_run_labels WHERE key = 'org' AND value = 'org-3') "
    f"FROM durably_runs WHERE job_name = '{QUERY_JOB}'"
)


def dataset_summary(count: int) -> list[Any]:
    """Return the row :data:`DATASET_SUMMARY_SQL` gives for ``count`` runs of the data set."""
    runs, failed, pending, org3, last = 0, 0, 0, 0, ""
    for run, label in dataset_rows(count):
        runs += 1
        failed += run[3] == "failed"
        pending += run[3] == "pending"
        org3 += label[2] == "org-3"
        last = max(last, run[11])
    return [runs, failed, pending, last, org3]
