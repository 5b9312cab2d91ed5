"""Draw the benchmark's ratios and the browser start breakdown as SVG, from run.py's JSON.

    .venv/bin/python bench/charts.py RESULT.json [RESULT.json ...] [--out bench/charts]

Writes, for what the files hold (a system measured in several files, e.g. the alternating
one-repetition runs of a paired comparison, takes the median of their medians):

- ``throughput.svg``: steps/s of every system as a share of its suite's raw floor
  (``raw_python`` on CPython, ``raw_wasm`` in Chromium), one bar each, with the targets
  (durably_web's default and batched modes) drawn as ticks;
- ``start.svg``: the browser start, navigation → engine ready, cold and warm, split into the
  page's stages (worker created, SQLite ready, VFS open, Pyodide booted, engine started),
  beside upstream's total.

Plain SVG written here (no chart library), so ``RESULTS.md`` shows it on any Markdown viewer.
"""

from __future__ import annotations

import argparse
import json
import statistics
from html import escape
from pathlib import Path
from typing import Any

from catalog import SYSTEMS

FLOORS = {"native": "raw_python", "browser": "raw_wasm"}
TARGETS = {  # issue 13: share of the raw floor each durably_web mode should reach
    "durably_web": 0.45,
    "durably_web_batched": 0.75,
    "durably_web_chromium": 0.25,
    "durably_web_chromium_batched": 0.50,
}
COLOURS = {"self": "#2563eb", "variant": "#0891b2", "peer": "#9ca3af", "floor": "#4b5563"}
STAGE_COLOURS = ["#93c5fd", "#60a5fa", "#3b82f6", "#2563eb", "#1e40af", "#172554"]
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def medians(files: list[Path], workload: str, metric: str) -> dict[str, float]:
    """Median ``metric`` of ``workload`` per system at NORMAL, over every file."""
    found: dict[str, list[float]] = {}
    for file in files:
        data = json.loads(file.read_text())
        for system, values in data.get("medians", {}).get("NORMAL", {}).get(workload, {}).items():
            if metric in values:
                found.setdefault(system, []).append(values[metric])
    return {system: statistics.median(values) for system, values in found.items()}


def _svg(width: int, height: int, body: list[str]) -> str:
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" {FONT}>',
            f'<rect width="{width}" height="{height}" fill="white"/>',
            *body,
            "</svg>",
            "",
        ]
    )


def throughput_chart(steps: dict[str, float]) -> str | None:
    """Bars of steps/s as a share of the suite's raw floor; None without a floor."""
    rows: list[tuple[str, str, float, float]] = []  # suite title, system, share, steps/s
    for suite, floor in FLOORS.items():
        if floor not in steps:
            continue
        for name, system in SYSTEMS.items():
            if system.suite == suite and name in steps:
                rows.append((suite, name, steps[name] / steps[floor], steps[name]))
    if not rows:
        return None
    left, bar, gap, scale_w = 330, 20, 8, 360
    top = 40
    high = max(1.0, max(share for _, _, share, _ in rows))
    body = [
        '<text x="10" y="20" font-weight="bold">Steps/s as a share of the raw SQLite floor '
        "(NORMAL; ticks: targets)</text>"
    ]
    y = top
    suite_seen = None
    for suite, name, share, value in rows:
        if suite != suite_seen:
            title = (
                "CPython (floor: raw sqlite3)"
                if suite == "native"
                else ("Chromium (floor: raw sqlite-wasm, same worker)")
            )
            body.append(f'<text x="10" y="{y + 12}" font-weight="bold">{escape(title)}</text>')
            y += bar + gap
            suite_seen = suite
        system = SYSTEMS[name]
        width = share / high * scale_w
        body.append(
            f'<text x="{left - 8}" y="{y + 14}" text-anchor="end">{escape(system.label)}</text>'
        )
        body.append(
            f'<rect x="{left}" y="{y}" width="{width:.1f}" height="{bar}" '
            f'fill="{COLOURS[system.role]}"/>'
        )
        body.append(
            f'<text x="{left + width + 6:.1f}" y="{y + 14}">{share:.0%} ({value:,.0f}/s)</text>'
        )
        if name in TARGETS:
            x = left + TARGETS[name] / high * scale_w
            body.append(
                f'<line x1="{x:.1f}" y1="{y - 3}" x2="{x:.1f}" y2="{y + bar + 3}" '
                f'stroke="#dc2626" stroke-width="2"/>'
            )
        y += bar + gap
    x100 = left + 1 / high * scale_w
    body.append(
        f'<line x1="{x100:.1f}" y1="{top}" x2="{x100:.1f}" y2="{y}" stroke="#111" '
        f'stroke-dasharray="3 3"/>'
    )
    body.append(f'<text x="{x100:.1f}" y="{y + 14}" text-anchor="middle">100% = floor</text>')
    return _svg(left + scale_w + 170, y + 24, body)


def start_loads(files: list[Path]) -> dict[str, list[dict[str, Any]]]:
    """Every recorded page load of the ``start`` workload, per system."""
    loads: dict[str, list[dict[str, Any]]] = {}
    for file in files:
        data = json.loads(file.read_text())
        for run in data.get("runs", []):
            if run.get("workload") == "start" and run.get("info", {}).get("loads"):
                loads.setdefault(run["system"], []).extend(
                    dict(load, cold=i == 0) for i, load in enumerate(run["info"]["loads"])
                )
    return loads


def _stage_medians(loads: list[dict[str, Any]]) -> list[tuple[str, float]]:
    names: list[str] = []
    for load in loads:
        for name in load.get("stages") or {}:
            if name not in names and name != "ready":  # ready_ms is the last segment
                names.append(name)
    stages = [
        (
            name,
            statistics.median(
                load["stages"][name] for load in loads if name in (load.get("stages") or {})
            ),
        )
        for name in names
    ]
    stages.sort(key=lambda item: item[1])
    stages.append(("ready", statistics.median(load["ready_ms"] for load in loads)))
    return stages


def start_chart(loads: dict[str, list[dict[str, Any]]]) -> str | None:
    """Stacked bars of the start stages, cold and warm; None without start loads."""
    rows: list[tuple[str, list[tuple[str, float]]]] = []
    for name in ("durably_web_chromium", "upstream_chromium"):
        for cold in (True, False):
            chosen = [load for load in loads.get(name, []) if load["cold"] == cold]
            if chosen:
                label = f"{SYSTEMS[name].label.split(' (')[0]}, {'cold' if cold else 'warm'}"
                rows.append((label, _stage_medians(chosen)))
    if not rows:
        return None
    left, bar, gap, scale_w, top = 200, 22, 10, 480, 40
    longest = max(stages[-1][1] for _, stages in rows)
    body = [
        '<text x="10" y="20" font-weight="bold">Browser start: navigation → engine ready '
        "(ms, medians; segments: the page's stages)</text>"
    ]
    y = top
    legend: dict[str, str] = {}
    for label, stages in rows:
        body.append(f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>')
        start = 0.0
        for i, (stage, at) in enumerate(stages):
            colour = STAGE_COLOURS[min(i, len(STAGE_COLOURS) - 1)]
            legend.setdefault(stage, colour)
            x, width = left + start / longest * scale_w, (at - start) / longest * scale_w
            body.append(
                f'<rect x="{x:.1f}" y="{y}" width="{max(width, 0):.1f}" height="{bar}" '
                f'fill="{legend[stage]}"><title>{escape(stage)}: {at:,.0f} ms</title></rect>'
            )
            start = at
        body.append(
            f'<text x="{left + start / longest * scale_w + 6:.1f}" y="{y + 15}">{start:,.0f}</text>'
        )
        y += bar + gap
    x = 10
    for stage, colour in legend.items():
        body.append(f'<rect x="{x}" y="{y + 4}" width="12" height="12" fill="{colour}"/>')
        body.append(f'<text x="{x + 16}" y="{y + 14}">{escape(stage)}</text>')
        x += 24 + 7 * len(stage)
    return _svg(max(left + scale_w + 80, x + 10), y + 30, body)


def main() -> None:
    """Read the result files and write the charts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "charts")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, svg in (
        ("throughput.svg", throughput_chart(medians(args.results, "throughput", "steps_per_s"))),
        ("start.svg", start_chart(start_loads(args.results))),
    ):
        if svg is None:
            print(f"{name}: nothing to draw in these files")
            continue
        (args.out / name).write_text(svg)
        print(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()
