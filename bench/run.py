"""Benchmark durably_web side by side with upstream Durably, DBOS and the raw SQLite floors.

    .venv/bin/python bench/run.py [--repeat 5] [--quick] [--synchronous FULL NORMAL]
                                  [--systems ...] [--workloads ...] [--json out.json]

A *system* is a command that runs one workload once, in a fresh process and a fresh
directory, and prints one JSON line (see ``bench/systems/benchlib.py``). The harness sets up
what the selected systems need (``npm ci`` in ``bench/upstream_node``, a venv with DBOS in
``bench/.venv-dbos``), runs every workload for each system alternately (A B C A B C ...)
``--repeat`` times per durability setting, then prints Markdown tables of medians with
ratios (durably_web ÷ peer, oriented so that > 1 means durably_web is better), checks the
targets, and writes everything, every repetition included, to a JSON file.

Systems belong to a *suite* with its own durably_web variant that ratios and targets are
about: ``native`` (durably_web on CPython against upstream on Node, DBOS and the raw floors)
and ``browser`` (durably_web on Pyodide in headless Chromium against upstream Durably on
SQLocal in the same Chromium, and the raw sqlite-wasm / SQLocal floors). To add a system, add
a :class:`catalog.System` to :data:`catalog.SYSTEMS` whose command speaks the same protocol;
a workload only it runs goes into :data:`catalog.WORKLOADS`. Set-up is in ``setup_systems``,
the tables and targets in ``report``, the code and machine record in ``provenance``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from catalog import SUITE_TITLES, SYSTEMS, WORKLOADS, System, Workload
from provenance import code_state, machine_facts
from report import check_targets, markdown_tables, targets_text
from setup_systems import BENCH

# -- running ------------------------------------------------------------------------------


def run_once(
    system: System,
    workload: Workload,
    synchronous: str,
    params: dict[str, Any],
    tmp_root: str,
    timeout: float,
) -> dict[str, Any]:
    """Run one system on one workload in a fresh directory; return its result line."""
    workdir = tempfile.mkdtemp(prefix=f"{system.name}-{workload.name}-", dir=tmp_root)
    argv = [
        *system.command(),
        "--workload",
        workload.name,
        "--synchronous",
        synchronous,
        "--dir",
        workdir,
        "--params",
        json.dumps(params),
    ]
    started = time.perf_counter()
    # Its own process group: on a timeout, whatever it started (a browser, Playwright's
    # driver) is killed with it.
    proc = subprocess.Popen(
        argv,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGTERM first: Playwright's driver then closes the browser it started (which runs
        # in a process group of its own), then SIGKILL whatever is left of the group.
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        return {"error": f"timed out after {timeout:.0f} s", "seconds": timeout}
    except BaseException:  # the harness is stopped: so is the system's process group
        os.killpg(proc.pid, signal.SIGTERM)
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.perf_counter() - started
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (stderr or stdout)[-1500:]
        return {"error": f"exit {proc.returncode}: {tail}", "seconds": seconds}
    result: dict[str, Any] = json.loads(lines[-1])
    result["seconds"] = seconds
    return result


def median_metrics(results: list[dict[str, Any]]) -> dict[str, float]:
    """Return the median of each metric over the successful repetitions."""
    ok = [r["metrics"] for r in results if "metrics" in r]
    keys = sorted({k for metrics in ok for k in metrics})
    return {k: statistics.median(m[k] for m in ok if k in m) for k in keys}


def _write_json(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` whole (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(document, indent=2) + "\n")
    partial.replace(path)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")


# -- main ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, set up, run, report; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, help="repetitions per system (default 5; --quick 1)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run for CI")
    parser.add_argument(
        "--systems",
        nargs="+",
        choices=list(SYSTEMS),
        help="default: all; with --quick, the native ones (the browser ones add ~4 minutes)",
    )
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument(
        "--synchronous",
        nargs="+",
        choices=["FULL", "NORMAL"],
        default=["FULL", "NORMAL"],
        help="SQLite synchronous setting(s), WAL always",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=BENCH / "results" / "latest.json",
        help="where to write every result (default bench/results/latest.json)",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per process")
    parser.add_argument("--tmpdir", default=None, help="where the fresh database directories go")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 5)
    if args.systems is None:
        quick_ok = {s.name for s in SYSTEMS.values() if s.suite == "native"}
        args.systems = [name for name in SYSTEMS if not args.quick or name in quick_ok]
    systems = [SYSTEMS[name] for name in SYSTEMS if name in args.systems]
    workloads = [WORKLOADS[name] for name in WORKLOADS if name in args.workloads]

    # SIGTERM ends the run like Ctrl-C: the set-ups' exit handlers (a PostgreSQL cluster)
    # run, and what was measured so far is in the JSON file (it is written as it grows).
    signal.signal(signal.SIGTERM, _terminate)
    for setup in dict.fromkeys(s.setup for s in systems if s.setup is not None):
        setup()

    started_at = datetime.now(UTC)
    facts = machine_facts()
    code = code_state()
    runs: list[dict[str, Any]] = []
    medians: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    tmp_root = tempfile.mkdtemp(prefix="durably-bench-", dir=args.tmpdir)
    clock = time.perf_counter()
    try:
        for synchronous in args.synchronous:
            for workload in workloads:
                members = [s for s in systems if workload.name in s.workloads]
                for rep in range(repeat):
                    for system in members:  # alternating: A B C A B C ...
                        params = workload.params(system.name, args.quick)
                        result = run_once(
                            system, workload, synchronous, params, tmp_root, args.timeout
                        )
                        result.update(
                            system=system.name,
                            workload=workload.name,
                            synchronous=synchronous,
                            repetition=rep,
                            params=params,
                        )
                        runs.append(result)
                        status = "ERROR " + result["error"] if "error" in result else "ok"
                        print(
                            f"[{synchronous}] {workload.name} {rep + 1}/{repeat} "
                            f"{system.name}: {status} ({result['seconds']:.1f} s)",
                            file=sys.stderr,
                        )
                        partial = {"partial": True, "command": [sys.executable, *sys.argv]}
                        _write_json(args.json, partial | {"machine": facts, "runs": runs})
                medians.setdefault(synchronous, {})[workload.name] = {
                    s.name: median_metrics(
                        [
                            r
                            for r in runs
                            if r["system"] == s.name
                            and r["workload"] == workload.name
                            and r["synchronous"] == synchronous
                        ]
                    )
                    for s in members
                }
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)

    report: list[str] = []
    targets: dict[str, list[dict[str, Any]]] = {}
    suites = [suite for suite in SUITE_TITLES if any(s.suite == suite for s in systems)]
    for synchronous in args.synchronous:
        targets[synchronous] = []
        for suite in suites:
            tables = markdown_tables(
                synchronous, medians[synchronous], systems, workloads, args.quick, repeat, suite
            )
            if not tables:
                continue
            report.append(tables)
            checked = check_targets(medians[synchronous], WORKLOADS, suite)
            targets[synchronous] += checked
            report.append(f"Targets ({SUITE_TITLES[suite]}) at synchronous={synchronous}:\n")
            report.append(targets_text(checked, args.quick))
            report.append("")
    code_after = code_state()
    for key, what in (("src_digest", "engine"), ("browser_digest", "browser runtime")):
        if code_after[key] != code[key]:
            report.append(f"WARNING: the {what} source changed during this run: mixed versions.")
    print("\n".join(report))

    infos: dict[str, dict[str, Any]] = {}
    for r in runs:
        if "info" in r:
            infos.setdefault(r["system"], {})[r["synchronous"]] = r["info"]
    document = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "seconds": time.perf_counter() - clock,
        "command": [sys.executable, *sys.argv],
        "quick": args.quick,
        "repeat": repeat,
        "machine": facts | {"loadavg_end": os.getloadavg()},
        "code": code
        | {
            "src_digest_end": code_after["src_digest"],
            "browser_digest_end": code_after["browser_digest"],
        },
        "systems": {
            s.name: {"label": s.label, "role": s.role, "info": infos.get(s.name)} for s in systems
        },
        "sizes": {
            w.name: {s.name: w.params(s.name, args.quick) for s in systems if w.name in s.workloads}
            for w in workloads
        },
        "medians": medians,
        "targets": targets,
        "runs": runs,
        "report": "\n".join(report),
    }
    _write_json(args.json, document)
    print(f"wrote {args.json}", file=sys.stderr)
    failed = [r for r in runs if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
