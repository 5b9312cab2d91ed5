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
a :class:`System` to :data:`SYSTEMS` whose command speaks the same protocol; a workload only it
runs goes into :data:`WORKLOADS`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
NODE_DIR = BENCH / "upstream_node"
UPSTREAM_BROWSER_DIR = BENCH / "upstream_browser"
CHROMIUM = Path("/usr/bin/chromium")
DBOS_VENV = BENCH / ".venv-dbos"
DBOS_REQUIREMENTS = BENCH / "requirements-dbos.txt"
PROJECT_PYTHON = ROOT / ".venv" / "bin" / "python"

Role = Literal["self", "peer", "floor"]
Suite = Literal["native", "browser"]


# -- systems ------------------------------------------------------------------------------


def _run_setup(argv: Sequence[str], cwd: Path) -> None:
    print(f"setup: {' '.join(argv)}  (in {cwd.relative_to(ROOT)})", file=sys.stderr)
    subprocess.run(argv, cwd=cwd, check=True, stdout=sys.stderr)


def setup_node() -> None:
    """``npm ci`` in bench/upstream_node unless node_modules matches package-lock.json."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SystemExit("node and npm are needed for the upstream and raw_node systems")
    installed = NODE_DIR / "node_modules" / ".package-lock.json"
    binding = NODE_DIR / "node_modules/better-sqlite3/build/Release/better_sqlite3.node"
    lock = NODE_DIR / "package-lock.json"
    if (
        installed.exists()
        and binding.exists()
        and installed.stat().st_mtime >= lock.stat().st_mtime
    ):
        return
    # better-sqlite3 compiles its SQLite from source when no prebuilt binary can be fetched:
    # a few minutes on two cores, once.
    _run_setup(["npm", "ci", "--no-audit", "--no-fund"], NODE_DIR)


def setup_dbos() -> None:
    """Create bench/.venv-dbos with the pinned DBOS unless it is there already."""
    python = DBOS_VENV / "bin" / "python"
    wanted = next(
        line.strip()
        for line in DBOS_REQUIREMENTS.read_text().splitlines()
        if line.lower().startswith("dbos==")
    )
    if python.exists():
        probe = subprocess.run(
            [
                str(python),
                "-c",
                "import importlib.metadata as m; print('dbos==' + m.version('dbos'))",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == wanted:
            return
    else:
        _run_setup([sys.executable, "-m", "venv", str(DBOS_VENV)], BENCH)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run_setup([*pip, "-r", str(DBOS_REQUIREMENTS)], BENCH)


def setup_browser() -> None:
    """Check for Playwright and Chromium; bring web/vendor up to date (``durably-web build``)."""
    probe = subprocess.run(
        [str(PROJECT_PYTHON), "-c", "import playwright"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        raise SystemExit("the browser systems need the playwright package in .venv")
    if not CHROMIUM.exists():
        raise SystemExit(f"the browser systems need {CHROMIUM}: apt-get install chromium")
    # A no-op when web/vendor matches its inputs, src/durably_web included: the browser runs
    # the current engine.
    _run_setup([str(PROJECT_PYTHON), "-m", "durably_web", "build"], ROOT)


def setup_upstream_browser() -> None:
    """``npm ci`` in bench/upstream_browser unless current, then bundle it unless current."""
    setup_browser()
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SystemExit("node and npm are needed for upstream_chromium and raw_sqlocal")
    installed = UPSTREAM_BROWSER_DIR / "node_modules" / ".package-lock.json"
    lock = UPSTREAM_BROWSER_DIR / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        # --ignore-scripts: @coji/durably depends on better-sqlite3, which a browser never
        # loads; without it npm would compile it (minutes). esbuild needs no install script.
        npm_ci = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
        _run_setup(npm_ci, UPSTREAM_BROWSER_DIR)
    bundle = UPSTREAM_BROWSER_DIR / "dist" / "page.js"
    inputs = ("page.mjs", "sqlocal-worker.mjs", "build.mjs", "package-lock.json")
    if not bundle.exists() or any(
        (UPSTREAM_BROWSER_DIR / name).stat().st_mtime > bundle.stat().st_mtime for name in inputs
    ):
        _run_setup(["node", "build.mjs"], UPSTREAM_BROWSER_DIR)


@dataclass(frozen=True)
class System:
    """A command that runs one workload once and prints one JSON result line.

    Attributes:
        name: the key used on the command line and in the JSON.
        label: how tables name it.
        command: argv prefix (the harness appends ``--workload --synchronous --dir --params``).
        workloads: the workloads it can run.
        role: ``self`` (this project: ratios are computed for it), ``peer`` or ``floor``.
        setup: makes the command runnable on a fresh machine (idempotent, fast when done).
        suite: ``native`` or ``browser``: tables, ratios and targets are per suite, about its
            ``self`` system.

    """

    name: str
    label: str
    command: Callable[[], list[str]]
    workloads: frozenset[str]
    role: Role
    setup: Callable[[], None] | None = None
    suite: Suite = "native"


def _chromium(system: str) -> Callable[[], list[str]]:
    return lambda: [str(PROJECT_PYTHON), str(BENCH / "systems" / "chromium.py"), "--system", system]


SYSTEMS: dict[str, System] = {
    system.name: system
    for system in (
        System(
            "durably_web",
            "durably_web (CPython)",
            lambda: [str(PROJECT_PYTHON), str(BENCH / "systems" / "durably_cpython.py")],
            frozenset({"throughput", "latency", "resume", "queries"}),
            "self",
        ),
        System(
            "upstream",
            "upstream Durably 0.15 (Node)",
            lambda: ["node", str(NODE_DIR / "bench.mjs")],
            frozenset({"throughput", "latency", "resume", "queries"}),
            "peer",
            setup_node,
        ),
        System(
            "dbos",
            "DBOS Transact (SQLite)",
            lambda: [str(DBOS_VENV / "bin" / "python"), str(BENCH / "systems" / "dbos_python.py")],
            frozenset({"throughput", "latency", "resume", "queries"}),
            "peer",
            setup_dbos,
        ),
        System(
            "raw_python",
            "raw sqlite3 (Python)",
            lambda: [str(PROJECT_PYTHON), str(BENCH / "systems" / "raw_sqlite3.py")],
            frozenset({"throughput"}),
            "floor",
        ),
        System(
            "raw_node",
            "raw better-sqlite3 (Node)",
            lambda: ["node", str(NODE_DIR / "raw.mjs")],
            frozenset({"throughput"}),
            "floor",
            setup_node,
        ),
        System(
            "durably_web_chromium",
            "durably_web (Chromium: Pyodide worker, OPFS)",
            _chromium("durably_web_chromium"),
            frozenset({"throughput", "latency", "resume", "queries", "start"}),
            "self",
            setup_browser,
            "browser",
        ),
        System(
            "upstream_chromium",
            "upstream Durably 0.15 (Chromium: SQLocal, OPFS)",
            _chromium("upstream_chromium"),
            frozenset({"throughput", "latency", "resume", "queries", "start"}),
            "peer",
            setup_upstream_browser,
            "browser",
        ),
        System(
            "raw_wasm",
            "raw sqlite-wasm (same worker, JS loop)",
            _chromium("raw_wasm"),
            frozenset({"throughput"}),
            "floor",
            setup_browser,
            "browser",
        ),
        System(
            "raw_sqlocal",
            "raw SQLocal (page, one INSERT per transaction)",
            _chromium("raw_sqlocal"),
            frozenset({"throughput"}),
            "floor",
            setup_upstream_browser,
            "browser",
        ),
    )
}
#: The durably_web variant of each suite: ratios and targets are about it.
SELVES: dict[Suite, str] = {"native": "durably_web", "browser": "durably_web_chromium"}


# -- workloads ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One number a workload reports.

    Attributes:
        key: the key in the result line's ``metrics``.
        label: the row label.
        better: ``higher`` or ``lower``; ratios are oriented so > 1 means durably_web is better.
        against_floors: also show ratios against the raw floors.

    """

    key: str
    label: str
    better: Literal["higher", "lower"]
    against_floors: bool = False


@dataclass(frozen=True)
class Workload:
    """A measurement every system that can runs the same way, with the same sizes.

    Attributes:
        name / title: key and heading; ``title`` is formatted with the sizes.
        metrics: what the table shows.
        full / quick: sizes for a real run and for ``--quick``.
        overrides: per-system sizes (full, quick), where a system cannot run the common ones
            in reasonable time; the table heading states them.

    """

    name: str
    title: str
    metrics: tuple[Metric, ...]
    full: dict[str, Any]
    quick: dict[str, Any]
    overrides: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)

    def params(self, system: str, quick: bool) -> dict[str, Any]:
        """Return the sizes ``system`` runs this workload with."""
        params = dict(self.quick if quick else self.full)
        if system in self.overrides:
            params.update(self.overrides[system][1 if quick else 0])
        return params


WORKLOADS: dict[str, Workload] = {
    workload.name: workload
    for workload in (
        Workload(
            "throughput",
            "1. Throughput and 6. memory: {runs} runs x {steps} steps, max_concurrent_runs=1; "
            "steps/s from first trigger to last completion; peak RSS of that process (browser: "
            "of the renderer process; JS heaps sampled through CDP during the workload)",
            (
                Metric("steps_per_s", "steps/s", "higher", against_floors=True),
                Metric("rss_peak_mb", "peak RSS (MiB)", "lower"),
                Metric("renderer_rss_peak_mb", "renderer peak RSS (MiB)", "lower"),
                Metric("js_heap_peak_mb", "JS heap peak, page + workers (MiB)", "lower"),
                Metric("worker_heap_peak_mb", "JS heap peak, engine/SQLite worker (MiB)", "lower"),
                Metric("wasm_mb", "WASM memory, all workers (MiB)", "lower"),
                Metric("pyodide_wasm_mb", "of which Pyodide's (MiB)", "lower"),
            ),
            {"runs": 100, "steps": 100},
            {"runs": 5, "steps": 20},
            # In Chromium, upstream (SQLocal) does ~30 steps/s and its floor ~150 rows/s:
            # 10,000 steps would take 5-10 minutes per repetition. A rate needs fewer.
            {
                "upstream_chromium": ({"runs": 10, "steps": 100}, {"runs": 2, "steps": 10}),
                "raw_sqlocal": ({"runs": 10, "steps": 100}, {"runs": 2, "steps": 10}),
            },
        ),
        Workload(
            "latency",
            "2. Latency: trigger call → start (run:start / run:leased / workflow body) and → "
            "complete, 1-step job, idle started worker, default polling; {samples} samples",
            (
                Metric("trigger_call_p50_ms", "trigger call itself p50 (ms)", "lower"),
                Metric("start_p50_ms", "→ start p50 (ms)", "lower"),
                Metric("start_p95_ms", "→ start p95 (ms)", "lower"),
                Metric("complete_p50_ms", "→ complete p50 (ms)", "lower"),
                Metric("complete_p95_ms", "→ complete p95 (ms)", "lower"),
            ),
            {"samples": 200, "gap_ms": 20},
            {"samples": 10, "gap_ms": 20},
            # Upstream's idle worker polls every 1000 ms and a trigger does not wake it: each
            # sample waits a random 0-1000 ms first so triggers land at random poll phases,
            # and fewer samples keep the run under a minute.
            {
                "upstream": ({"samples": 40, "gap_ms": 1000}, {"samples": 3, "gap_ms": 1000}),
                "upstream_chromium": (
                    {"samples": 40, "gap_ms": 1000},
                    {"samples": 3, "gap_ms": 1000},
                ),
            },
        ),
        Workload(
            "resume",
            "3. Resume: a {steps}-step run SIGKILLed after checkpointing step {crash_after}; "
            "fresh process, engine start → completion (replays {crash_after} steps)",
            (
                Metric("resume_s", "engine start → complete (s)", "lower"),
                Metric("claim_to_complete_s", "claim → complete (s)", "lower"),
                Metric("fresh_to_complete_s", "page load → complete (s)", "lower"),
            ),
            {"steps": 10_000, "crash_after": 9_000},
            {"steps": 500, "crash_after": 450},
            # Upstream in Chromium needs ~5 minutes to checkpoint 9,000 steps before the crash:
            # a tenth of the size (its resume cost grows linearly with the replayed steps).
            {
                "upstream_chromium": (
                    {"steps": 1_000, "crash_after": 900},
                    {"steps": 100, "crash_after": 90},
                )
            },
        ),
        Workload(
            "queries",
            "4. Queries: get_runs(limit=50) with {runs} runs stored (90% completed, 5% failed, "
            "5% pending; label org in 10 values); {calls} calls each",
            (
                Metric("all_p50_ms", "unfiltered p50 (ms)", "lower"),
                Metric("status_p50_ms", "status=failed p50 (ms)", "lower"),
                Metric("label_p50_ms", "label org=x p50 (ms)", "lower"),
                Metric("all_p95_ms", "unfiltered p95 (ms)", "lower"),
                Metric("status_p95_ms", "status=failed p95 (ms)", "lower"),
                Metric("label_p95_ms", "label org=x p95 (ms)", "lower"),
            ),
            {"runs": 100_000, "calls": 100},
            {"runs": 2_000, "calls": 10},
            # Upstream in Chromium: its unfiltered and label queries take ~0.3 s each there.
            {"upstream_chromium": ({"runs": 100_000, "calls": 20}, {"runs": 2_000, "calls": 10})},
        ),
        Workload(
            "start",
            "5. Browser start: navigation → engine ready (migrated database on OPFS, worker "
            "started), on a fresh profile (cold) then {reloads} reloads (warm: HTTP cache "
            "revalidated, database there); bytes over the wire (headers + encoded bodies)",
            (
                Metric("cold_ready_ms", "cold: navigation → ready (ms)", "lower"),
                Metric("warm_ready_ms", "warm reload: navigation → ready (ms)", "lower"),
                Metric("cold_mb", "cold: transferred (MiB)", "lower"),
                Metric("warm_mb", "warm: transferred (MiB)", "lower"),
                Metric("cold_requests", "cold: requests", "lower"),
            ),
            {"reloads": 3},
            {"reloads": 1},
        ),
    )
}


# -- targets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A pass/fail line: a suite's durably_web metric, or its ratio to a peer, against a bound."""

    label: str
    workload: str
    metric: str
    bound: float
    peer: str | None = None  # None: the absolute value; else durably_web ÷ peer (oriented)
    at_most: bool = False
    suite: Suite = "native"


TARGETS = (
    Target("steps/s ≥ 3 x upstream on Node", "throughput", "steps_per_s", 3.0, "upstream"),
    Target(
        "steps/s ≥ 50% of the raw Python commit floor",
        "throughput",
        "steps_per_s",
        0.5,
        "raw_python",
    ),
    Target("steps/s ≥ 10 x DBOS", "throughput", "steps_per_s", 10.0, "dbos"),
    Target("trigger → start p50 ≤ 5 ms", "latency", "start_p50_ms", 5.0, at_most=True),
    Target("get_runs(status) p50 ≤ 10 ms", "queries", "status_p50_ms", 10.0, at_most=True),
    Target("get_runs(label) p50 ≤ 10 ms", "queries", "label_p50_ms", 10.0, at_most=True),
    Target(
        "Chromium steps/s ≥ 30 x upstream in Chromium",
        "throughput",
        "steps_per_s",
        30.0,
        "upstream_chromium",
        suite="browser",
    ),
    Target(
        "Chromium steps/s ≥ 50% of raw sqlite-wasm in the same worker",
        "throughput",
        "steps_per_s",
        0.5,
        "raw_wasm",
        suite="browser",
    ),
    Target(
        "engine ready ≤ 3 s cold",
        "start",
        "cold_ready_ms",
        3000.0,
        at_most=True,
        suite="browser",
    ),
    Target(
        "engine ready ≤ 2 s on a warm reload",
        "start",
        "warm_ready_ms",
        2000.0,
        at_most=True,
        suite="browser",
    ),
)
SELF = SELVES["native"]
SUITE_TITLES: dict[Suite, str] = {"native": "CPython and Node", "browser": "headless Chromium"}
TIMES = "\u00d7"  # the ratio sign in tables


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


def oriented_ratio(metric_better: str, mine: float, theirs: float) -> float | None:
    """durably_web ÷ peer for higher-is-better metrics, peer ÷ durably_web otherwise."""
    if mine <= 0 or theirs <= 0:
        return None
    return mine / theirs if metric_better == "higher" else theirs / mine


# -- reporting ----------------------------------------------------------------------------


def fmt(value: float | None) -> str:
    """Format a number with as many digits as its size deserves."""
    if value is None:
        return "n/a"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def markdown_tables(
    synchronous: str,
    medians: dict[str, dict[str, dict[str, float]]],
    systems: list[System],
    workloads: list[Workload],
    quick: bool,
    repeat: int,
    suite: Suite = "native",
) -> str:
    """Tables of medians, one per workload, with a ratio row under each metric.

    Only ``suite``'s systems are shown; ratios are its durably_web variant ÷ each peer/floor.
    """
    me = SELVES[suite]
    systems = [s for s in systems if s.suite == suite]
    heading = f"### {SUITE_TITLES[suite]}: WAL, synchronous={synchronous} (median of {repeat})"
    out = [heading, ""]
    for workload in workloads:
        present = [s for s in systems if s.name in medians.get(workload.name, {})]
        if not present:
            continue
        title = workload.title.format(**workload.params(me, quick))
        notes = [
            f"{SYSTEMS[name].label}: " + ", ".join(f"{k}={v}" for k, v in sizes[quick].items())
            for name, sizes in workload.overrides.items()
            if name in {s.name for s in present}
        ]
        out.append(f"**{title}**" + (f" (except {'; '.join(notes)})" if notes else ""))
        out.append("")
        out.append("| metric | " + " | ".join(s.label for s in present) + " |")
        out.append("|---|" + "---:|" * len(present))
        data = medians[workload.name]
        mine_all = data.get(me, {})
        for metric in workload.metrics:
            values = [data[s.name].get(metric.key) for s in present]
            if all(v is None for v in values):
                continue
            arrow = "↑" if metric.better == "higher" else "↓"
            out.append(f"| {metric.label} {arrow} | " + " | ".join(fmt(v) for v in values) + " |")
            mine = mine_all.get(metric.key)
            if mine is None:
                continue
            cells = []
            for system, theirs in zip(present, values, strict=True):
                show = system.role == "peer" or (system.role == "floor" and metric.against_floors)
                ratio = oriented_ratio(metric.better, mine, theirs) if show and theirs else None
                cells.append(
                    "" if system.role == "self" else f"{TIMES}{fmt(ratio)}" if ratio else ""
                )
            if any(cells):
                out.append(
                    "| &nbsp;&nbsp;durably_web ÷ it (> 1 better) | " + " | ".join(cells) + " |"
                )
        out.append("")
    if len(out) == 2:
        return ""
    return "\n".join(out)


def check_targets(
    medians: dict[str, dict[str, dict[str, float]]],
    workloads: dict[str, Workload],
    suite: Suite = "native",
) -> list[dict[str, Any]]:
    """Evaluate every target of ``suite`` against one durability setting's medians."""
    checked = []
    for target in TARGETS:
        if target.suite != suite:
            continue
        data = medians.get(target.workload, {})
        mine = data.get(SELVES[suite], {}).get(target.metric)
        value: float | None = mine
        if target.peer is not None:
            theirs = data.get(target.peer, {}).get(target.metric)
            better = next(
                m.better for m in workloads[target.workload].metrics if m.key == target.metric
            )
            value = None if mine is None or theirs is None else oriented_ratio(better, mine, theirs)
        passed = (
            None
            if value is None
            else value <= target.bound
            if target.at_most
            else value >= target.bound
        )
        checked.append(
            {
                "suite": suite,
                "target": target.label,
                "value": value,
                "bound": target.bound,
                "ratio": target.peer is not None,
                "pass": passed,
            }
        )
    return checked


def targets_text(checked: list[dict[str, Any]], quick: bool) -> str:
    """Format the pass/fail lines as a Markdown table."""
    lines = ["| target | measured | result |", "|---|---:|---|"]
    for item in checked:
        value = item["value"]
        shown = "n/a" if value is None else f"{TIMES}{fmt(value)}" if item["ratio"] else fmt(value)
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[item["pass"]]
        lines.append(f"| {item['target']} | {shown} | {verdict} |")
    if quick:
        lines.append("")
        lines.append("(--quick sizes: the targets are stated for the full sizes)")
    return "\n".join(lines)


_NOT_ENGINE = tuple(
    f"src/durably_web/{package}/" for package in ("browser", "client", "server", "cli", "webbuild")
)


def code_state() -> dict[str, Any]:
    """Return the commit, the dirty files and a digest of the engine's source: what ran.

    ``src_digest`` covers src/durably_web without the browser, client, server, CLI and build
    packages, which the CPython engine does not load; ``browser_digest`` covers all of
    src/durably_web and web/'s JavaScript, what the browser systems run.
    """

    def git(*argv: str) -> str:
        proc = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False)
        return proc.stdout

    digest = hashlib.sha1()
    browser = hashlib.sha1()  # what the browser systems run: all of src, web/'s runtime
    for name in sorted(
        git("ls-files", "--cached", "--others", "--exclude-standard", "src", "web").split()
    ):
        path = ROOT / name
        if not path.is_file():
            continue
        entry = name.encode() + b"\0" + path.read_bytes()
        if name.startswith("src/") and not name.startswith(_NOT_ENGINE):
            digest.update(entry)
        if name.startswith("src/") or name.endswith(".mjs"):
            browser.update(entry)
    return {
        "commit": git("rev-parse", "HEAD").strip(),
        "src_dirty": git("status", "--porcelain", "--", "src", "web").splitlines(),
        "src_digest": digest.hexdigest(),
        "browser_digest": browser.hexdigest(),
    }


def machine_facts() -> dict[str, Any]:
    """CPU, cores, load and tool versions, for the record."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    return {
        "cpu": model,
        "nproc": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "node": node.stdout.strip() or None,
    }


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
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.json}", file=sys.stderr)
    failed = [r for r in runs if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
