"""Measure the demo page in headless Chromium: boot times, bytes, checkpointed steps/s on OPFS.

    .venv/bin/python bench/browser_engine.py [--runs 3] [--reloads 2] [--steps-runs 5] [--json F]

Needs ``durably-web build`` (the demo's site in ``.build/site``), the ``playwright`` package
and Debian's ``/usr/bin/chromium``. Serves the site with ``durably_web.sitebuild``'s server on
127.0.0.1 and loads ``/?db=...`` (the demo: MicroPython page + engine worker), with no request
routing (it would disable the HTTP cache). For each of ``--runs`` fresh profiles:

- **cold**: navigation → page interactive (the page's Python ran: the form works) and →
  engine ready (worker booted, OPFS database open, jobs imported), bytes over the wire;
- **warm**: the same after ``--reloads`` reloads (HTTP cache: the versioned boot files are
  immutable, so not asked for; the rest revalidated, 304s);
- **reopen**: the browser closed and reopened on the same profile (disk cache), then loaded.

Then, on the last profile, the benchmark page's (``/bench.html``, opened beside the demo) "Run
1000 steps" button ``--steps-runs`` times: a job of 1000 trivial ``step.run`` checkpoints on
OPFS (WAL), timed inside the job.
Prints medians (and min-max); ``--json`` writes every sample. Numbers depend on the host's
OPFS write cost: compare runs on one machine only.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from playwright_tests.browser import Meter, launch_options
from report import median_range

from durably_web.sitebuild import Layout, make_server

ROOT = Path(__file__).resolve().parents[1]


def load(page: Any, url: str | None, meter: Meter) -> dict[str, Any]:
    """Navigate (or reload when ``url`` is None); return the page's timings (ms) and bytes."""
    meter.reset()
    started = time.monotonic()
    if url is None:
        page.reload()
    else:
        page.goto(url)
    page.wait_for_function("window.__demo && window.__demo.status === 'ready'", timeout=120_000)
    page.wait_for_timeout(300)  # let late requests finish before counting bytes
    state = page.evaluate("window.__demo")
    return {
        "interactive_ms": round(state["page_ready_ms"]),
        "ready_ms": round(state["ready_ms"]),
        "stages": {name: round(at) for name, at in state["stages"]},
        "wall_s": round(time.monotonic() - started, 2),
        "requests": meter.requests,
        "bytes": meter.bytes,
    }


def steps_per_second(page: Any) -> float:
    """Click the benchmark page's button; return the 1000-step job's steps/s."""
    page.evaluate("document.getElementById('bench-result').removeAttribute('data-result')")
    page.click("#bench")
    page.wait_for_selector("#bench-result[data-result]", timeout=300_000)
    result = json.loads(page.get_attribute("#bench-result", "data-result"))
    return float(result["steps_per_s"])


def main() -> None:
    """Run the measurements and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh profiles (cold loads)")
    parser.add_argument("--reloads", type=int, default=2, help="warm reloads per profile")
    parser.add_argument("--steps-runs", type=int, default=5, help="1000-step jobs to time")
    parser.add_argument("--json", type=Path, help="write every sample here")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    server = make_server(Layout(ROOT).site, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_address[1]}/"
    samples: dict[str, list[Any]] = {"cold": [], "warm": [], "reopen": [], "steps_per_s": []}
    foreign: list[str] = []
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as tmp:

        def launch(profile: Path) -> tuple[Any, Meter]:
            context = playwright.chromium.launch_persistent_context(
                str(profile), **launch_options()
            )
            return context, Meter(context, origin)

        for run in range(args.runs):
            profile = Path(tmp) / f"profile{run}"
            url = f"{origin}?db=bench{run}"
            context, meter = launch(profile)
            page = context.new_page()
            samples["cold"].append(load(page, url, meter))
            for _ in range(args.reloads):
                samples["warm"].append(load(page, None, meter))
            foreign += meter.foreign
            context.close()
            context, meter = launch(profile)
            page = context.new_page()
            samples["reopen"].append(load(page, url, meter))
            if run == args.runs - 1:
                context.new_page().goto(f"{origin}bench.html?db=bench{run}")
                page = context.pages[-1]  # beside the demo's tab: it runs the engine
                page.wait_for_selector("#bench:not([disabled])", timeout=120_000)
                for _ in range(args.steps_runs):
                    samples["steps_per_s"].append(steps_per_second(page))
            foreign += meter.foreign
            context.close()
    server.shutdown()

    print(f"{'':28} {'interactive ms':>20} {'engine ready ms':>20} {'bytes':>22}")
    for kind in ("cold", "warm", "reopen"):
        rows = samples[kind]
        print(
            f"{kind + f' (n={len(rows)})':28} "
            f"{median_range([r['interactive_ms'] for r in rows]):>20} "
            f"{median_range([r['ready_ms'] for r in rows]):>20} "
            f"{median_range([r['bytes'] for r in rows]):>22}"
        )
    stages = samples["cold"][-1]["stages"]
    print("last cold load, stage reached at ms:", stages)
    print(f"1000-step job on OPFS, steps/s: {median_range(samples['steps_per_s'])}")
    print(f"requests that left 127.0.0.1: {len(foreign)}")
    if args.json:
        args.json.write_text(json.dumps(samples, indent=1))


if __name__ == "__main__":
    main()
