"""The report: medians with min-max ranges, durably_web ÷ upstream ratios, machine, versions."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from server.params import Params
from server.processes import UPSTREAM_DIR

SYSTEMS = ("durably_web", "upstream")
TITLES = {"durably_web": "durably_web (uvicorn)", "upstream": "upstream 0.15 (node:http)"}
TIMES = "\u00d7"  # the ratio and "by" sign in tables
DASH = "\u2013"  # min-max ranges in tables


@dataclass(frozen=True, slots=True)
class Metric:
    """One reported number: its key, row label, which way is better, whether it gets a ratio."""

    key: str
    label: str
    higher_is_better: bool
    ratio: bool = True


METRICS = (
    Metric("trigger_raw_rps", "POST /trigger requests/s, raw asyncio client ↑", True),
    Metric("trigger_raw_p50_ms", "  latency p50 (ms) ↓", higher_is_better=False),
    Metric("trigger_raw_p99_ms", "  latency p99 (ms) ↓", higher_is_better=False),
    Metric("trigger_raw_server_cpu", "  server CPU (cores)", False, ratio=False),
    Metric("trigger_raw_client_cpu", "  load generator CPU (cores)", False, ratio=False),
    Metric("trigger_httpx_rps", "POST /trigger requests/s, httpx client ↑", True),
    Metric("trigger_httpx_p50_ms", "  latency p50 (ms) ↓", higher_is_better=False),
    Metric("trigger_httpx_p99_ms", "  latency p99 (ms) ↓", higher_is_better=False),
    Metric("trigger_httpx_server_cpu", "  server CPU (cores)", False, ratio=False),
    Metric("trigger_httpx_client_cpu", "  load generator CPU (cores)", False, ratio=False),
    Metric("sse_step_events_per_s", "SSE step events/s delivered ↑", higher_is_better=True),
    Metric("sse_events_per_s", "SSE all events/s delivered ↑", higher_is_better=True),
    Metric("sse_run_steps_per_s", "  the run's steps/s (gate open → last terminal event) ↑", True),
    Metric("sse_client_cpu", "  load generator CPU (cores)", False, ratio=False),
    Metric("noop_completed_per_s", "runs the worker completed per s during the load ↑", True),
    Metric("noop_completed_share", "  share of the triggered runs", True, False),
    Metric("peak_rss_mib", "server peak RSS, VmHWM (MiB) ↓", higher_is_better=False),
    Metric("idle_rss_mib", "server RSS when ready (MiB) ↓", higher_is_better=False),
)


def fmt(value: float | None) -> str:
    """Format a number with as many digits as its size deserves."""
    if value is None:
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def summary(results: list[dict[str, Any]], system: str, key: str) -> tuple[float, float, float]:
    """Return the median, min and max of ``key`` over ``system``'s repetitions."""
    values = [r["metrics"][key] for r in results if r["system"] == system and "metrics" in r]
    return statistics.median(values), min(values), max(values)


def ratio(metric: Metric, mine: float, theirs: float) -> float | None:
    """Return durably_web ÷ upstream oriented so that > 1 means durably_web is better."""
    if mine <= 0 or theirs <= 0:
        return None
    return mine / theirs if metric.higher_is_better else theirs / mine


def markdown(results: list[dict[str, Any]], params: Params, repeat: int) -> str:
    """Build the Markdown table of medians (min-max) and ratios."""
    title = (
        f"**Server mode: median of {repeat} ({'min' + DASH + 'max'}); POST /trigger: "
        f"{params.concurrency} in flight for {params.duration_s:g} s; SSE: one run of "
        f"{params.steps:,} steps followed by {params.run_subscribers} {TIMES} `/subscribe` + "
        f"{params.all_subscribers} {TIMES} `/runs/subscribe`; WAL, synchronous=NORMAL, file "
        "database**"
    )
    head = f"| metric | {TITLES['durably_web']} | {TITLES['upstream']} | durably_web ÷ upstream |"
    lines = [title, "", head, "|---|---:|---:|---:|"]
    for metric in METRICS:
        cells = []
        meds = []
        for system in SYSTEMS:
            med, low, high = summary(results, system, metric.key)
            meds.append(med)
            cells.append(f"{fmt(med)} ({fmt(low)}{DASH}{fmt(high)})")
        shown = ratio(metric, meds[0], meds[1]) if metric.ratio else None
        label = (
            metric.label.replace("  ", "&nbsp;&nbsp;", 1)
            if metric.label[0] == " "
            else (metric.label)
        )
        cell = f"{TIMES}{fmt(shown)}" if shown is not None else ""
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {cell} |")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """Describe the machine and the load on it."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "loadavg": os.getloadavg(),
    }


def versions() -> dict[str, Any]:
    """Return the versions of everything measured."""
    node = shutil.which("node")
    node_version = ""
    if node is not None:
        node_version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    package = UPSTREAM_DIR / "node_modules" / "@coji" / "durably" / "package.json"
    upstream = json.loads(package.read_text())["version"] if package.exists() else None
    return {
        "durably_web": version("durably-web"),
        "uvicorn": version("uvicorn"),
        "httpx": version("httpx"),
        "python": platform.python_version(),
        "node": node_version,
        "@coji/durably": upstream,
    }
