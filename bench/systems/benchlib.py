"""What every Python system script shares: the command line, the result line, the data set.

A *system* is a command that runs one workload once and prints one JSON line on stdout::

    <command> --workload NAME --synchronous FULL|NORMAL --dir DIR --params '{"runs": 100}'

    {"system": "...", "workload": "...", "synchronous": "FULL", "metrics": {...}, "info": {...}}

``metrics`` holds numbers the harness takes medians of; ``info`` holds facts (versions,
settings) it reports once. The Node scripts in ``bench/upstream_node`` speak the same protocol.
This module is stdlib-only so that it runs in every interpreter the harness uses (the
project's venv and the separate DBOS venv).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sqlite3
import statistics
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "EXPIRED",
    "QUERY_JOB",
    "Args",
    "dataset_rows",
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


def parse_args(description: str, workloads: Sequence[str]) -> Args:
    """Parse the common system-script command line."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--workload", required=True, choices=list(workloads))
    parser.add_argument("--synchronous", required=True, choices=["NORMAL", "FULL"])
    parser.add_argument("--dir", required=True, help="a fresh directory for database files")
    parser.add_argument("--params", default="{}", help="workload sizes as a JSON object")
    parser.add_argument("--phase", default="measure", help=argparse.SUPPRESS)
    ns = parser.parse_args()
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


def percentiles(samples_ms: Sequence[float]) -> tuple[float, float]:
    """Return (p50, p95) of ``samples_ms``; p95 by nearest rank."""
    ordered = sorted(samples_ms)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return statistics.median(ordered), p95


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
