"""Time a page of the built site from navigation to what its user sees: the demo, the dashboard.

    .venv/bin/python bench/page_paint.py [--runs 5] [--page demo|dashboard] [--py] [--json F]

For each of ``--runs`` fresh Chromium profiles: the page stores ``--stored`` runs first (the
demo's Import button; the dashboard reads the demo's database), then the browser is
restarted and visited twice:

- **cold**: a new browser process with the HTTP cache and the service worker's caches cleared
  (the database kept): everything is fetched and compiled again;
- **warm**: a reload of the same tab (HTTP cache, service worker and the JIT warm).

Times are taken in the page (``performance.now()``, ms since navigation start):

- **interactive**: the page's Python runs and its controls are live (the demo:
  ``body[data-app=running]``; the dashboard: its engine is connected, ``body[data-app=ready]``);
- **runs listed**: the table shows the stored runs (``#runs tr`` at least ``--stored``).

Prints medians (min-max) over the profiles; ``--json`` writes every sample.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from playwright_tests.browser import launch_options
from playwright_tests.site import serve_site, staged_site
from report import median_range

# Records, in the page, when the body's data-app first reads the interactive value and when
# the runs table first holds the stored runs (ms since navigation start).
PROBE = """
(() => {
  const wanted = %(stored)d, interactive = %(interactive)s;
  new MutationObserver((_, observer) => {
    const now = performance.now();
    if (window.__interactiveAt === undefined && interactive.includes(document.body?.dataset.app)) {
      window.__interactiveAt = now;
    }
    if (window.__listedAt === undefined && document.querySelectorAll("#runs tr").length >= wanted) {
      window.__listedAt = now;
    }
    if (window.__interactiveAt !== undefined && window.__listedAt !== undefined) {
      observer.disconnect();
    }
  }).observe(document, { subtree: true, attributes: true, childList: true });
})();
"""
PAGES = {
    "demo": ("/?db=paint", ["running"]),
    "dashboard": ("/_durably/dashboard/?db=/paint.db", ["ready"]),
}


def seed(page: Any, origin: str, stored: int, interpreter: str) -> None:
    """Store ``stored`` completed imports through the demo page."""
    page.goto(f"{origin}/?db=paint{interpreter}")
    page.wait_for_selector("#status[data-status=ready]", timeout=180_000)
    page.fill("#rows", "20")
    page.fill("#delay", "0")
    for count in range(1, stored + 1):
        page.click("#import")
        page.wait_for_function(
            "n => document.querySelectorAll('#runs tr[data-status=completed]').length >= n",
            arg=count,
            timeout=60_000,
        )


def visit(page: Any, url: str | None) -> dict[str, float]:
    """Navigate (``url``) or reload (None); return the two times."""
    if url is None:
        page.reload()
    else:
        page.goto(url)
    page.wait_for_function(
        "window.__interactiveAt !== undefined && window.__listedAt !== undefined", timeout=180_000
    )
    times = page.evaluate("[window.__interactiveAt, window.__listedAt]")
    return {"interactive_ms": round(times[0]), "listed_ms": round(times[1])}


def one_profile(playwright: Any, origin: str, profile: Path, args: argparse.Namespace) -> Any:
    """Seed one fresh profile, then measure a cold visit and a warm reload."""
    interpreter = "&py=1" if args.py else ""
    path, interactive = PAGES[args.page]
    context = playwright.chromium.launch_persistent_context(str(profile), **launch_options())
    try:
        seed(context.new_page(), origin, args.stored, interpreter)
    finally:
        context.close()
    context = playwright.chromium.launch_persistent_context(str(profile), **launch_options())
    try:
        probe = PROBE % {"stored": args.stored, "interactive": json.dumps(interactive)}
        context.add_init_script(probe)
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.clearBrowserCache")
        cdp.send(
            "Storage.clearDataForOrigin",
            {"origin": origin, "storageTypes": "cache_storage,service_workers"},
        )
        cold = visit(page, origin + path + interpreter)
        warm = visit(page, None)
        return {"cold": cold, "warm": warm}
    finally:
        context.close()


def main() -> int:
    """Measure, print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stored", type=int, default=3, help="runs stored before measuring")
    parser.add_argument("--page", choices=sorted(PAGES), default="demo")
    parser.add_argument("--py", action="store_true", help="Pyodide instead of MicroPython")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    samples = []
    with (
        staged_site() as site,
        serve_site(site) as origin,
        sync_playwright() as playwright,
        tempfile.TemporaryDirectory(prefix="page-paint-") as tmp,
    ):
        for run in range(args.runs):
            profile = Path(tmp) / f"profile-{run}"
            samples.append(one_profile(playwright, origin, profile, args))
            shutil.rmtree(profile, ignore_errors=True)
            print(json.dumps(samples[-1]), flush=True)
    interpreter = "Pyodide" if args.py else "MicroPython"
    print(f"\n{args.page} ({interpreter}), {args.stored} stored runs, {args.runs} profiles:")
    for kind in ("cold", "warm"):
        for key, label in (("interactive_ms", "interactive"), ("listed_ms", "runs listed")):
            values = [sample[kind][key] for sample in samples]
            print(f"  {kind}, navigation -> {label}: {median_range(values)} ms")
    if args.json:
        args.json.write_text(json.dumps(samples, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
