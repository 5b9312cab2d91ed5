"""Measure the starter app (``durably-web new``) in headless Chromium: online, then offline.

    .venv/bin/python bench/offline_boot.py [--runs 5] [--stock] [--json F]

Builds the starter app in a temporary directory with this checkout's caches (run
``durably-web build`` first), serves it on 127.0.0.1 and, for each of ``--runs`` fresh
profiles:

- **cold**: the first visit: navigation → engine ready (``#status[data-status=ready]``,
  timed in the page from navigation start), then until the service worker holds the whole
  build ("offline ready"); bytes over the wire (headers + encoded bodies of every request,
  the service worker's precache included) for the page alone and for the whole visit;
- **warm**: one reload with the server running and the service worker installed (it answers
  the page's requests from its cache, as offline): the online figure the offline reloads are
  compared with;
- **offline 1, 2**: the server stopped, two reloads: navigation → engine ready with the
  service worker answering every request (checked: none reached the network).

``--stock`` serves the stdlib and the wheels as PyPI and npm ship them (``.py`` only; the
durably_web wheel too) instead of precompiled to ``.pyc``: the cost the precompiling saves.
Prints medians (min-max); ``--json`` writes every sample. No request may leave 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from playwright_tests.browser import Meter, launch_options
from playwright_tests.site import ROOT, SiteServer, seed_caches
from report import median_range

from durably_web.sitebuild import BuildResult, build, npm
from durably_web.sitebuild.build import generated_vendor_files, service_worker_script
from durably_web.sitebuild.layout import SERVICE_WORKER, VENDOR, Layout
from durably_web.sitebuild.mirror import mirror, read_manifest
from durably_web.sitebuild.starter import new_app
from durably_web.sitebuild.wheels import download

# Records, in the page, when the engine status first reads "ready" (ms since navigation start).
READY_PROBE = """
new MutationObserver((_, observer) => {
  const status = document.getElementById("status");
  if (status?.dataset.status === "ready" && window.__readyAt === undefined) {
    window.__readyAt = performance.now();
    observer.disconnect();
  }
}).observe(document, { subtree: true, attributes: true, childList: true });
"""


def stock_site(app: Path, built: BuildResult, out: Path) -> Path:
    """Write a copy of ``built`` whose stdlib and wheels are the stock, uncompiled ones."""
    layout = Layout(app, app_dir=app)
    info = npm.pyodide_info(layout)
    wheels = [*download(layout, info, log=print).values(), *(layout.state / "self").glob("*.whl")]
    manifest = read_manifest(built.site) or {}
    generated_suffixes = (".whl", ".zip", ".json", ".tar")  # stock copies or generated below
    plan = {
        rel: built.site / rel
        for rel in manifest
        if not rel.startswith(f"{VENDOR}/pyodide/") or not rel.endswith(generated_suffixes)
    }
    stdlib = npm.pyodide_dir(layout) / "python_stdlib.zip"
    plan[f"{VENDOR}/pyodide/python_stdlib.zip"] = stdlib
    plan.update({f"{VENDOR}/pyodide/{wheel.name}": wheel for wheel in wheels})
    generated = generated_vendor_files(info, wheels, stdlib)
    mirror(plan, generated, out, lambda build_id: {SERVICE_WORKER: service_worker_script(build_id)})
    return out


def visit(page: Any, meter: Meter, url: str | None) -> dict[str, Any]:
    """Navigate (``url``) or reload (None); return ms to engine ready and the bytes so far."""
    meter.reset()
    if url is None:
        page.reload()
    else:
        page.goto(url)
    ready = page.wait_for_function("window.__readyAt", timeout=180_000).json_value()
    page.wait_for_function("!document.getElementById('run').disabled", timeout=60_000)
    return {"ready_ms": round(ready), "bytes": meter.bytes, "requests": meter.requests}


def one_profile(playwright: Any, server: SiteServer, profile: Path) -> dict[str, Any]:
    """Measure one fresh profile: the cold visit, an online reload, two with the server stopped."""
    context = playwright.chromium.launch_persistent_context(str(profile), **launch_options())
    try:
        context.add_init_script(READY_PROBE)
        meter = Meter(context, server.url.rstrip("/"))
        network: list[bool] = []
        context.on("response", lambda response: network.append(not response.from_service_worker))
        page = context.new_page()
        server.start()
        cold = visit(page, meter, server.url)
        cold["page_bytes"] = cold["bytes"]
        page.wait_for_function("window.durablyOffline?.state?.offline === 'ready'", timeout=180_000)
        page.wait_for_timeout(500)
        cold["bytes"], cold["requests"] = meter.bytes, meter.requests
        warm = visit(page, meter, None)
        server.stop()
        offline = []
        for _ in range(2):
            network.clear()
            offline.append(visit(page, meter, None))
            assert not any(network), "a request reached the network with the server stopped"
        if meter.foreign:
            raise AssertionError(f"requests left 127.0.0.1: {meter.foreign[:5]}")
        return {"cold": cold, "warm": warm, "offline": offline}
    finally:
        server.stop()
        context.close()


def main() -> int:
    """Build, measure, print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stock", action="store_true", help="serve uncompiled archives")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    build(ROOT)
    with tempfile.TemporaryDirectory(prefix="offline-boot-") as tmp:
        app = Path(tmp) / "app"
        new_app(app)
        seed_caches(app)
        built = build(app, app=app)
        site = stock_site(app, built, Path(tmp) / "stock") if args.stock else built.site
        server = SiteServer(site)
        samples = []
        with sync_playwright() as playwright:
            for run in range(args.runs):
                profile = Path(tmp) / f"profile-{run}"
                samples.append(one_profile(playwright, server, profile))
                shutil.rmtree(profile, ignore_errors=True)
                print(json.dumps(samples[-1]), flush=True)
    kind = "stock (.py) archives" if args.stock else "precompiled (.pyc) archives"
    print(f"\nstarter app, {kind}, {args.runs} fresh profiles, medians (min-max):")
    cold = [s["cold"] for s in samples]
    for label, key, unit in (
        ("cold, navigation -> engine ready:      ", "ready_ms", " ms"),
        ("cold bytes, page until engine ready:   ", "page_bytes", ""),
        ("cold bytes, whole first visit (+ SW):  ", "bytes", ""),
    ):
        print(f"  {label} {median_range([c[key] for c in cold])}{unit}")
    warm = median_range([s["warm"]["ready_ms"] for s in samples])
    print(f"  online reload (SW installed) -> ready:  {warm} ms")
    for index in range(2):
        ready = [s["offline"][index]["ready_ms"] for s in samples]
        print(f"  server stopped, reload {index + 1} -> ready:  {median_range(ready)} ms")
    if args.json:
        args.json.write_text(json.dumps({"stock": args.stock, "samples": samples}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
