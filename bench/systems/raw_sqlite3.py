"""System ``raw_python``: the commit floor, one INSERT + COMMIT per row in a plain sqlite3 loop.

Same file-database settings as the engines (WAL, the stated ``synchronous``; SQLite's default
``wal_autocheckpoint``); each row holds the JSON of one benchmark step value. Only the
``throughput`` workload: ``runs x steps`` rows, each an INSERT in autocommit mode, i.e. its
own transaction committed by SQLite (the cheapest durable commit: no BEGIN/COMMIT round trips).
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from typing import Any

import benchlib
from benchlib import Args

SYSTEM = "raw_python"


def throughput(args: Args) -> dict[str, Any]:
    """Rows committed per second, one transaction per row."""
    rows = int(args.params["runs"]) * int(args.params["steps"])
    db = benchlib.open_raw(args.db_path(), args.synchronous)
    db.execute("CREATE TABLE steps (id INTEGER PRIMARY KEY, name TEXT NOT NULL, output TEXT)")
    started = time.perf_counter()
    insert = "INSERT INTO steps (name, output) VALUES (?, ?)"
    for i in range(rows):
        db.execute(insert, (f"step-{i}", json.dumps(benchlib.step_value(i))))
    wall = time.perf_counter() - started
    db.close()
    return {"steps_per_s": rows / wall, "wall_s": wall, "rss_peak_mb": benchlib.peak_rss_mb()}


def main() -> None:
    """Run the workload once and print its result line."""
    args = benchlib.parse_args(__doc__.splitlines()[0], ["throughput"])
    info = {
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "settings": f"WAL, synchronous={args.synchronous}, "
        "wal_autocheckpoint=1000 (SQLite default)",
    }
    benchlib.emit(args, SYSTEM, throughput(args), info)


if __name__ == "__main__":
    main()
