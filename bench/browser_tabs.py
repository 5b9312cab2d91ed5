"""Measure several tabs on one database in headless Chromium: a follower's start, a hand-over.

    .venv/bin/python bench/browser_tabs.py [--samples 5] [--json F]

Needs ``durably-web build`` (done first when its inputs changed), the ``playwright`` package
and Debian's ``/usr/bin/chromium``. Serves the demo's site with the test pages
(``playwright_tests.site``) on 127.0.0.1 and opens ``/check/tabs.html?db=...`` in tabs of one
profile (``playwright_tests/tabs.py``). The leader runs one long run of ``tick`` throughout.

- **follower ready**: a new tab, while the leader runs: navigation → ``connect()`` resolved
  (the follower found the leader and has its jobs); ``--samples`` tabs, each closed after.
- **hand-over**: the leader tab closed mid-run, ``--samples`` times (a new follower is opened
  after each, so there are always three tabs): close → the next tab holds the lock and starts
  its worker (lock), its engine boot (boot), close → the run's next step starts in the new
  leader (running again), close → every remaining tab is ready again (served).

Prints medians (and min-max); ``--json`` writes every sample.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import uuid
from pathlib import Path
from typing import Any

from playwright_tests.browser import launch_options
from playwright_tests.site import serve_site, staged_site
from playwright_tests.tabs import Tab, close_leader

LONG_RUN = {"steps": 1000, "delay_ms": 100}  # 100 s: outlasts every sample


def summary(values: list[float]) -> str:
    """Median (min-max), ms."""
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def follower_ready(context: Any, url: str, db: str, samples: int) -> list[float]:
    """Open a follower ``samples`` times while the leader runs; navigation → connected (ms)."""
    times = []
    for _ in range(samples):
        tab = Tab.open(context, url, db)
        times.append(tab.wait_connected())
        assert tab.role == "follower", tab.role
        tab.page.close()
    return times


def hand_overs(
    context: Any, url: str, db: str, tabs: list[Tab], run_id: str, samples: int
) -> list[dict[str, Any]]:
    """Close the leader ``samples`` times while ``run_id`` runs; each hand-over's times (ms)."""
    rows = []
    for _ in range(samples):
        hand_over = close_leader(tabs)
        hand_over.leader.page.wait_for_function(
            """([id, closed]) => window.tab.record.events.some(
                e => e.type === "step:start" && e.runId === id && e.at > closed)""",
            arg=[run_id, hand_over.closed_at],
            timeout=120_000,
        )
        running_again = min(
            e["at"]
            for e in hand_over.leader.events("step:start")
            if e["runId"] == run_id and e["at"] > hand_over.closed_at
        )
        rows.append(
            {
                "lock_ms": hand_over.lock_ms,
                "boot_ms": hand_over.boot_ms,
                "running_again_ms": running_again - hand_over.closed_at,
                "served_ms": hand_over.served_ms,
                "stages_ms": hand_over.stages,
            }
        )
        tabs.append(Tab.open(context, url, db))
        tabs[-1].wait_connected()
    return rows


def main() -> None:
    """Run the measurements and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=5, help="samples of each measurement")
    parser.add_argument("--json", type=Path, help="write every sample here")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    db = "bench" + uuid.uuid4().hex[:8]
    with (
        staged_site() as site,
        serve_site(site) as url,
        sync_playwright() as playwright,
        tempfile.TemporaryDirectory() as profile,
    ):
        context = playwright.chromium.launch_persistent_context(profile, **launch_options())
        tabs = [Tab.open(context, url, db)]
        tabs[0].wait_connected()
        run_id = tabs[0].trigger(LONG_RUN)
        tabs[0].wait_step(run_id, 1)
        ready = follower_ready(context, url, db, args.samples)
        tabs += [Tab.open(context, url, db) for _ in range(2)]
        for tab in tabs[1:]:
            tab.wait_connected()
        handed = hand_overs(context, url, db, tabs, run_id, args.samples)
        context.close()

    print(f"{'(ms, median (min-max))':40} {'n':>3} {'':>22}")
    print(f"{'follower tab: navigation -> ready':40} {len(ready):>3} {summary(ready):>22}")
    for key, label in (
        ("lock_ms", "leader closed -> next tab leads"),
        ("boot_ms", "  its engine boot"),
        ("running_again_ms", "leader closed -> the run runs again"),
        ("served_ms", "leader closed -> every tab ready again"),
    ):
        values = [row[key] for row in handed]
        print(f"{label:40} {len(values):>3} {summary(values):>22}")
    print(
        "last hand-over: the new leader's boot stages reached at ms:",
        {name: round(at) for name, at in handed[-1]["stages_ms"].items()},
    )
    if args.json:
        args.json.write_text(
            json.dumps({"follower_ready_ms": ready, "hand_overs": handed}, indent=1)
        )


if __name__ == "__main__":
    main()
