"""The report: Markdown tables of medians with oriented ratios, and the targets' verdicts."""

from __future__ import annotations

import statistics
from typing import Any

from catalog import SELVES, SUITE_TITLES, SYSTEMS, TARGETS, Suite, System, Workload

TIMES = "\u00d7"  # the ratio sign in tables


def oriented_ratio(metric_better: str, mine: float, theirs: float) -> float | None:
    """durably_web ÷ peer for higher-is-better metrics, peer ÷ durably_web otherwise."""
    if mine <= 0 or theirs <= 0:
        return None
    return mine / theirs if metric_better == "higher" else theirs / mine


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


def median_range(values: list[float]) -> str:
    """Return ``median (min-max)`` of ``values``, whole numbers with thousands separators."""
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


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
    commit = "on" if synchronous == "FULL" else "off"
    setting = (
        f"synchronous_commit={commit} (as synchronous={synchronous})"
        if suite == "postgres"
        else f"WAL, synchronous={synchronous}"
    )
    heading = f"### {SUITE_TITLES[suite]}: {setting} (median of {repeat})"
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
        variants = [s for s in present if s.role == "variant"]
        for metric in workload.metrics:
            values = [data[s.name].get(metric.key) for s in present]
            if all(v is None for v in values):
                continue
            arrow = "↑" if metric.better == "higher" else "↓"
            out.append(f"| {metric.label} {arrow} | " + " | ".join(fmt(v) for v in values) + " |")
            # Ratio rows: the suite's durably_web, then each variant (another configuration).
            for who, label in [(me, "durably_web"), *((v.name, v.label) for v in variants)]:
                mine = data.get(who, {}).get(metric.key)
                if mine is None:
                    continue
                cells = []
                for system, theirs in zip(present, values, strict=True):
                    show = system.role == "peer" or (
                        system.role == "floor" and metric.against_floors
                    )
                    ratio = oriented_ratio(metric.better, mine, theirs) if show and theirs else None
                    cells.append(f"{TIMES}{fmt(ratio)}" if ratio else "")
                if any(cells):
                    out.append(
                        f"| &nbsp;&nbsp;{label} ÷ it (> 1 better) | " + " | ".join(cells) + " |"
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
