"""What the benchmark measures: the systems, the workloads and their metrics, the targets.

A *system* belongs to a *suite* (``native``, ``browser`` or ``postgres``); each suite's
``self`` system, its durably_web variant (:data:`SELVES`), is what that suite's ratios and
targets are about.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from setup_systems import (
    BENCH,
    DBOS_VENV,
    NODE_DIR,
    PROJECT_PYTHON,
    setup_browser,
    setup_dbos,
    setup_dbos_pg,
    setup_node,
    setup_postgres,
    setup_upstream_browser,
    setup_upstream_pg,
)

Role = Literal["self", "variant", "peer", "floor"]
Suite = Literal["native", "browser", "postgres"]


# -- systems ------------------------------------------------------------------------------


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
        suite: ``native``, ``browser`` or ``postgres``: tables, ratios and targets are per
            suite, about its ``self`` system.

    """

    name: str
    label: str
    command: Callable[[], list[str]]
    workloads: frozenset[str]
    role: Role
    setup: Callable[[], None] | None = None
    suite: Suite = "native"


#: The script that runs a suite's systems by name (``--system NAME``), in ``bench/systems/``.
_DRIVERS: dict[Suite, str] = {"browser": "chromium.py", "postgres": "pg_suite.py"}

#: What the PostgreSQL suite's systems run (``bench/systems/pg_suite.py``).
_PG_WORKLOADS = frozenset({"pg_throughput", "pg_latency", "resume", "pg_io"})


def _driven(
    suite: Suite,
    name: str,
    label: str,
    workloads: frozenset[str],
    role: Role,
    setup: Callable[[], None],
) -> System:
    """Declare a system its suite's driver (:data:`_DRIVERS`) runs: ``DRIVER --system NAME``."""
    driver = BENCH / "systems" / _DRIVERS[suite]

    def command() -> list[str]:
        return [str(PROJECT_PYTHON), str(driver), "--system", name]

    return System(name, label, command, workloads, role, setup, suite)


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
            "durably_web_batched",
            "durably_web (CPython), checkpoint=batched",
            lambda: [
                str(PROJECT_PYTHON),
                str(BENCH / "systems" / "durably_cpython.py"),
                "--checkpoint",
                "batched",
            ],
            frozenset({"throughput"}),
            "variant",
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
        _driven(
            "browser",
            "durably_web_chromium",
            "durably_web (Chromium: Pyodide worker, OPFS)",
            frozenset({"throughput", "latency", "resume", "queries", "start"}),
            "self",
            setup_browser,
        ),
        _driven(
            "browser",
            "durably_web_chromium_batched",
            "durably_web (Chromium), checkpoint=batched",
            frozenset({"throughput"}),
            "variant",
            setup_browser,
        ),
        _driven(
            "browser",
            "upstream_chromium",
            "upstream Durably 0.15 (Chromium: SQLocal, OPFS)",
            frozenset({"throughput", "latency", "resume", "queries", "start"}),
            "peer",
            setup_upstream_browser,
        ),
        _driven(
            "browser",
            "raw_wasm",
            "raw sqlite-wasm (same worker, JS loop)",
            frozenset({"throughput"}),
            "floor",
            setup_browser,
        ),
        _driven(
            "browser",
            "raw_sqlocal",
            "raw SQLocal (page, one INSERT per transaction)",
            frozenset({"throughput"}),
            "floor",
            setup_upstream_browser,
        ),
        _driven(
            "postgres",
            "durably_web_pg",
            "durably_web (CPython, PostgreSQL)",
            _PG_WORKLOADS,
            "self",
            setup_postgres,
        ),
        _driven(
            "postgres",
            "upstream_pg",
            "upstream Durably 0.15 (Node, kysely pg)",
            _PG_WORKLOADS,
            "peer",
            setup_upstream_pg,
        ),
        _driven(
            "postgres",
            "dbos_pg",
            "DBOS Transact (PostgreSQL)",
            _PG_WORKLOADS,
            "peer",
            setup_dbos_pg,
        ),
    )
}
#: The durably_web variant of each suite: ratios and targets are about it.
SELVES: dict[Suite, str] = {
    "native": "durably_web",
    "browser": "durably_web_chromium",
    "postgres": "durably_web_pg",
}


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


#: What the latency workloads (on one machine, and across processes on PostgreSQL) report.
_LATENCY_METRICS = (
    Metric("trigger_call_p50_ms", "trigger call itself p50 (ms)", "lower"),
    Metric("start_p50_ms", "→ start p50 (ms)", "lower"),
    Metric("start_p95_ms", "→ start p95 (ms)", "lower"),
    Metric("complete_p50_ms", "→ complete p50 (ms)", "lower"),
    Metric("complete_p95_ms", "→ complete p95 (ms)", "lower"),
)
#: Their sizes (full, quick).
_LATENCY_SIZES = ({"samples": 200, "gap_ms": 20}, {"samples": 10, "gap_ms": 20})
#: Their sizes (full, quick) for a system whose idle worker polls every second and hears no
#: trigger: each sample waits a random gap of up to one interval, so fewer samples.
_POLLED_LATENCY_SIZES = ({"samples": 40, "gap_ms": 1000}, {"samples": 3, "gap_ms": 1000})

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
            _LATENCY_METRICS,
            *_LATENCY_SIZES,
            # Upstream's idle worker polls every 1000 ms and a trigger does not wake it: each
            # sample waits a random 0-1000 ms first so triggers land at random poll phases,
            # and fewer samples keep the run under a minute.
            {
                "upstream": _POLLED_LATENCY_SIZES,
                "upstream_chromium": _POLLED_LATENCY_SIZES,
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
            "started), on a fresh profile (cold) then {reloads} reloads (warm: HTTP cache, the "
            "versioned boot files unasked, the rest revalidated; database there); bytes over "
            "the wire (headers + encoded bodies)",
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
        Workload(
            "pg_throughput",
            "P1. Throughput on PostgreSQL: {runs} runs x {steps} steps triggered from a client "
            "process, then {workers} worker processes (one run at a time each) started "
            "together; steps/s from the start command to the last completion; a fresh "
            "database per worker count",
            (
                Metric("steps_per_s_1w", "steps/s, 1 worker", "higher"),
                Metric("steps_per_s_2w", "steps/s, 2 workers", "higher"),
                Metric("steps_per_s_4w", "steps/s, 4 workers", "higher"),
                Metric("scaling_2w", "2 workers ÷ 1 worker", "higher"),
                Metric("scaling_4w", "4 workers ÷ 1 worker", "higher"),
                Metric("rss_peak_mb", "peak RSS of a worker, 1 worker (MiB)", "lower"),
            ),
            {"runs": 100, "steps": 100, "workers": [1, 2, 4]},
            {"runs": 5, "steps": 20, "workers": [1, 2]},
            # DBOS at synchronous_commit=on does ~100 steps/s on this machine under load:
            # 10,000 steps x 3 worker counts took 6 minutes per repetition. A rate needs fewer.
            {"dbos_pg": ({"runs": 25, "steps": 100, "workers": [1, 2, 4]}, {})},
        ),
        Workload(
            "pg_latency",
            "P2. Latency across processes on PostgreSQL: trigger call in a client process → "
            "start in an idle worker process (run:start / run:leased / workflow body) and → "
            "complete, 1-step job, default polling; {samples} samples",
            _LATENCY_METRICS,
            *_LATENCY_SIZES,
            # Upstream's idle worker polls every 1000 ms (it sends and hears no NOTIFY); DBOS's
            # worker polls its queue every 1 s: random gaps of up to one interval, fewer samples.
            {
                "upstream_pg": _POLLED_LATENCY_SIZES,
                "dbos_pg": _POLLED_LATENCY_SIZES,
            },
        ),
        Workload(
            "pg_io",
            "P3. I/O-bound on PostgreSQL: {runs} runs x {steps} steps, each step awaiting "
            "{sleep_ms} ms, {concurrency} runs at once per worker process; 1 then 4 workers",
            (
                Metric("steps_per_s_1w", "steps/s, 1 worker", "higher"),
                Metric("steps_per_s_4w", "steps/s, 4 workers", "higher"),
                Metric("scaling_4w", "4 workers ÷ 1 worker", "higher"),
            ),
            {"runs": 128, "steps": 40, "sleep_ms": 10, "concurrency": 8, "workers": [1, 4]},
            {"runs": 16, "steps": 5, "sleep_ms": 10, "concurrency": 8, "workers": [1, 4]},
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
        "PostgreSQL, 1 worker: steps/s ≥ 3 x upstream",
        "pg_throughput",
        "steps_per_s_1w",
        3.0,
        "upstream_pg",
        suite="postgres",
    ),
    Target(
        "PostgreSQL, 1 worker: steps/s ≥ 5 x DBOS",
        "pg_throughput",
        "steps_per_s_1w",
        5.0,
        "dbos_pg",
        suite="postgres",
    ),
    Target(
        "PostgreSQL, I/O-bound: 4 workers ≥ 3.5 x 1 worker",
        "pg_io",
        "scaling_4w",
        3.5,
        suite="postgres",
    ),
    Target(
        "PostgreSQL: trigger → start p50 ≤ 10 ms across processes",
        "pg_latency",
        "start_p50_ms",
        10.0,
        at_most=True,
        suite="postgres",
    ),
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
SUITE_TITLES: dict[Suite, str] = {
    "native": "CPython and Node",
    "browser": "headless Chromium",
    "postgres": "PostgreSQL, across processes",
}
