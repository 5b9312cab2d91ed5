"""Count slow engine boots over many page loads in headless Chromium (the 30 s boot hang).

    .venv/bin/python bench/boot_hang.py [--profiles 8] [--reloads 4] [--load 0] [--slow 5000]

Serves the demo site with the test pages (``playwright_tests.site``) and, for each of
``--profiles`` fresh Chromium profiles, loads ``check/hang.html`` cold, then reloads it
``--reloads`` times: every other reload **at once** when the engine is ready (the previous
page's engine worker, and after a normal boot its snapshot worker, still run), the others
after a pause of ``--pause`` ms. Each load records navigation → engine ready
(``readyAt``), the worker's boot marks and every status; a load is *slow* past ``--slow``
ms, and *restarted* if the page saw the worker restart. ``--load N`` runs N busy processes
meanwhile (the machine's other users, made reproducible). Prints one line per slow or
restarted load, then the counts and the median of the normal ones; ``--json`` writes every
load. Findings: bench/BOOT-NOTES.md, "The 30 s boot hang".
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright_tests.browser import launch_options
from playwright_tests.site import serve_site, staged_site
from report import median_range

BUSY = "while True: pass"


def is_bad(result: dict[str, Any], slow: int) -> bool:
    """Tell whether a load failed, restarted its worker or took longer than ``slow`` ms."""
    return bool(result.get("error") or result["restarted"] or result.get("readyAt", 0) > slow)


def load_page(page: Any, url: str | None, timeout_ms: int) -> dict[str, Any]:
    """Navigate (``url``) or reload (None); wait for ``window.__hang``; return it."""
    started = time.monotonic()
    if url is None:
        page.reload()
    else:
        page.goto(url)
    try:
        page.wait_for_function("window.__hang", timeout=timeout_ms)
        result = dict(page.evaluate("window.__hang"))
    except Exception as error:  # noqa: BLE001 - a load that never got ready is a finding
        result = {"error": f"not ready within {timeout_ms} ms: {error}".splitlines()[0]}
    result["wall_ms"] = round((time.monotonic() - started) * 1000)
    result["restarted"] = any(s["status"] == "restarting" for s in result.get("statuses", []))
    return result


def one_profile(
    playwright: Any, url: str, profile: Path, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Load one fresh profile cold, then reload it; return every load's record."""
    context = playwright.chromium.launch_persistent_context(str(profile), **launch_options())
    logs: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda message: logs.append(f"{message.type}: {message.text}"[:300]))
        loads = []
        for index in range(args.reloads + 1):
            logs.clear()
            kind = "cold" if index == 0 else ("at-once" if index % 2 else "paused")
            if kind == "paused":
                page.wait_for_timeout(args.pause)
            result = load_page(page, url if index == 0 else None, args.timeout)
            result["kind"] = kind
            if is_bad(result, args.slow):
                result["logs"] = logs[-40:]
            loads.append(result)
        return loads
    finally:
        context.close()


def main() -> int:
    """Load, reload, count, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=8)
    parser.add_argument("--reloads", type=int, default=4)
    parser.add_argument("--pause", type=int, default=1500, help="ms before a paused reload")
    parser.add_argument("--load", type=int, default=0, help="busy processes meanwhile")
    parser.add_argument("--slow", type=int, default=5000, help="ms: a slower load is counted")
    parser.add_argument("--timeout", type=int, default=90_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.load)]
    loads: list[dict[str, Any]] = []
    try:
        with staged_site() as site, serve_site(site) as base, sync_playwright() as playwright:
            url = f"{base}/check/hang.html"
            with tempfile.TemporaryDirectory(prefix="boot-hang-") as tmp:
                for run in range(args.profiles):
                    profile = Path(tmp) / f"profile-{run}"
                    for result in one_profile(playwright, url, profile, args):
                        result["profile"] = run
                        loads.append(result)
                        if is_bad(result, args.slow):
                            print(json.dumps(result), flush=True)
                    shutil.rmtree(profile, ignore_errors=True)
                    print(f"profile {run}: {len(loads)} loads so far", flush=True)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    bad = [r for r in loads if is_bad(r, args.slow)]
    restarted = [r for r in loads if r["restarted"]]
    shape = f"{args.profiles} profiles x (cold + {args.reloads} reloads)"
    print(f"\n{len(loads)} loads ({shape}, {args.load} busy processes):")
    print(
        f"  slow (> {args.slow} ms), restarted or failed: {len(bad)} ({len(restarted)} restarted)"
    )
    for kind in ("cold", "at-once", "paused"):
        ready = [r["readyAt"] for r in loads if r["kind"] == kind and r not in bad]
        if ready:
            print(f"  {kind:8} ready (the others): {median_range(ready)} ms over {len(ready)}")
    installs = [
        r["marks"]["vfs"] - r["marks"]["sqlite"] for r in loads if "vfs" in r.get("marks", {})
    ]
    if installs:
        print(
            f"  VFS install (sqlite -> vfs marks, the ready worker's): {median_range(installs)} ms"
        )
    if args.json:
        args.json.write_text(json.dumps(loads, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
