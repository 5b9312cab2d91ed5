"""Systems in headless Chromium: durably_web on Pyodide + OPFS, upstream Durably on SQLocal.

    chromium.py --system NAME --workload W --synchronous FULL|NORMAL --dir DIR --params '{...}'
                [--profile-dir DIR [--cprofile]]

``NAME`` is one of

- ``durably_web_chromium``: bench/browser/ (page, worker, bench_jobs.py) at ``/bench/`` of the
  demo's built site (``.build/site``: the vendored runtime, the product worker below
  ``/_durably/``): the engine runs in a module worker on Pyodide, its
  database on OPFS (opfs-sahpool VFS) with the engine's own pragmas (WAL, and synchronous
  NORMAL, or FULL through boot's ``WAL_FULL``);
- ``raw_wasm``: the same worker and bridge, a plain JS loop of autocommit INSERTs (the floor);
- ``upstream_chromium``: bench/upstream_browser/ (page.mjs bundled into dist/): upstream
  Durably 0.15 on the page, SQLocal's worker with sqlite-wasm on OPFS ("opfs" VFS);
- ``raw_sqlocal``: the same page, one INSERT per transaction through SQLocal (its floor).

Each run is one fresh headless Chromium (Debian's ``/usr/bin/chromium`` driven by Playwright)
with a fresh profile in ``--dir``, against a server on 127.0.0.1 that sends COOP/COEP (SQLocal
needs cross-origin isolation; both systems get it, so both have 5 us timers). Every request
must stay on 127.0.0.1: one that does not fails the run. The page runs the workload inside
the engine and reports on the console; this script prints the harness's one JSON line.

Memory (throughput and the floors): while the workload runs, the page's and its workers' JS
heaps are sampled every 250 ms through CDP (``Runtime.getHeapUsage`` on each worker target,
attached with ``Target.setAutoAttach``, non-flattened); at the end each worker's WebAssembly
memory is read through the ``__benchWasmBytes()`` global the benchmark workers define, and
the renderer process's peak RSS (``VmHWM`` in /proc) is read.

Profiling (by hand, not through the harness): ``--profile-dir DIR`` runs Chromium's sampling
profiler (CDP ``Profiler``) on the page and the engine worker during the throughput workload
and writes ``.cpuprofile`` files (open them in DevTools) plus a summary of self time by kind
of code; ``--cprofile`` adds cProfile inside Pyodide (durably_web only).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import benchlib
from benchlib import Args
from playwright_tests.browser import Meter, launch_options

from durably_web.sitebuild import Layout, StaticServer, make_server
from durably_web.sitebuild.preload import CLIENT_ENTRY, module_graph, render_page

BENCH = Path(__file__).resolve().parents[1]
ROOT = BENCH.parent

DURABLY_PAGE = BENCH / "browser"
UPSTREAM_PAGE = BENCH / "upstream_browser"
MB = 2**20
SAMPLE_S = 0.25


@dataclass(frozen=True)
class BrowserSystem:
    """Where a browser system's page is and what it can run."""

    name: str
    upstream: bool
    workloads: tuple[str, ...]


SYSTEMS = {
    s.name: s
    for s in (
        BrowserSystem(
            "durably_web_chromium",
            False,
            ("throughput", "latency", "resume", "queries", "start"),
        ),
        BrowserSystem("durably_web_chromium_batched", False, ("throughput",)),
        BrowserSystem("raw_wasm", False, ("throughput",)),
        BrowserSystem(
            "upstream_chromium", True, ("throughput", "latency", "resume", "queries", "start")
        ),
        BrowserSystem("raw_sqlocal", True, ("throughput",)),
    )
}
FLOORS = {"raw_wasm", "raw_sqlocal"}


# -- the server ---------------------------------------------------------------------------


def start_server(system: BrowserSystem, workdir: Path) -> tuple[StaticServer, str]:
    """Start the system's server on 127.0.0.1; return it and the page's URL.

    ``durably-web serve``'s server (gzip, ETags, MIME types) with COOP/COEP: upstream's page
    directory, or the demo's built site with the files of bench/browser/ mounted at
    ``/bench/<name>``, its page with the client's modulepreload tags (:func:`bench_page`,
    written into ``workdir``).
    """
    if system.upstream:
        server = make_server(UPSTREAM_PAGE, port=0, isolated=True)
        page = "index.html"
    else:
        files = {
            f"/bench/{name}": DURABLY_PAGE / name
            for name in ("bench.mjs", "worker.mjs", "bench_jobs.py")
        }
        files["/bench/index.html"] = bench_page(workdir)
        # bench_jobs.py's workloads import it (the measuring code durably_cpython.py shares)
        files["/bench/bench_workloads.py"] = BENCH / "systems" / "bench_workloads.py"
        server = make_server(Layout(ROOT).site, port=0, mounts=files, isolated=True)
        page = "bench/index.html"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"{server.url}{page}"


def bench_page(workdir: Path) -> Path:
    """Write bench/browser/index.html into ``workdir`` as a build writes a page; return it.

    Its ``<!-- durably-web: modulepreload -->`` becomes the tags of the built site's client
    (:mod:`durably_web.sitebuild.preload`, as in the demo's page), served at
    ``/bench/index.html``.
    """
    site = Layout(ROOT).site
    modules = module_graph(CLIENT_ENTRY, lambda rel: (site / rel).read_text(encoding="utf-8"))
    html = (DURABLY_PAGE / "index.html").read_bytes()
    page = workdir / "bench-index.html"
    page.write_bytes(render_page(html, "bench/index.html", modules) or html)
    return page


# -- the browser --------------------------------------------------------------------------


@dataclass
class Cdp:
    """A CDP session on the page, attached (non-flattened) to its dedicated workers."""

    page: Any
    session: Any
    workers: dict[str, str] = field(default_factory=dict)  # session id -> worker URL
    replies: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_id: int = 0

    @classmethod
    def attach(cls, context: Any, page: Any) -> Cdp:
        """Attach to ``page`` and every worker it starts from now on."""
        cdp = cls(page, context.new_cdp_session(page))
        cdp.session.on("Target.attachedToTarget", cdp._attached)
        cdp.session.on("Target.detachedFromTarget", cdp._detached)
        cdp.session.on("Target.receivedMessageFromTarget", cdp._message)
        cdp.session.send(
            "Target.setAutoAttach",
            {"autoAttach": True, "waitForDebuggerOnStart": False, "flatten": False},
        )
        return cdp

    def _attached(self, event: dict[str, Any]) -> None:
        info = event["targetInfo"]
        if info["type"] == "worker":
            self.workers[event["sessionId"]] = info["url"]

    def _detached(self, event: dict[str, Any]) -> None:
        self.workers.pop(event["sessionId"], None)

    def _message(self, event: dict[str, Any]) -> None:
        message = json.loads(event["message"])
        if "id" in message:
            self.replies[message["id"]] = message

    def call(
        self, session_id: str | None, method: str, params: dict[str, Any] | None = None
    ) -> Any:
        """Send one command to the page (``session_id`` None) or a worker; return its result."""
        if session_id is None:
            return self.session.send(method, params or {})
        self.next_id += 1
        ident = self.next_id
        message = {"id": ident, "method": method, "params": params or {}}
        self.session.send(
            "Target.sendMessageToTarget", {"sessionId": session_id, "message": json.dumps(message)}
        )
        deadline = time.monotonic() + 30
        while ident not in self.replies:
            if time.monotonic() > deadline or session_id not in self.workers:
                raise RuntimeError(f"no answer to {method} from worker {session_id}")
            self.page.wait_for_timeout(2)
        reply = self.replies.pop(ident)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def heaps(self) -> dict[str, float]:
        """Return the used JS heap (bytes) of the page ("page") and of each worker (its URL)."""
        used = {"page": float(self.call(None, "Runtime.getHeapUsage")["usedSize"])}
        for session_id, url in list(self.workers.items()):
            try:
                used[url] = float(self.call(session_id, "Runtime.getHeapUsage")["usedSize"])
            except RuntimeError:
                continue  # the worker ended meanwhile
        return used

    def wasm_bytes(self) -> float:
        """Total WebAssembly memory the workers report through ``__benchWasmBytes()``.

        (Each benchmark worker defines that global; ``Runtime.queryObjects`` would find every
        ``WebAssembly.Memory`` without it, but crashes the renderer on Pyodide's worker.)
        """
        total = 0.0
        for session_id in list(self.workers):
            try:
                found = self.call(
                    session_id,
                    "Runtime.evaluate",
                    {
                        "expression": "globalThis.__benchWasmBytes?.() ?? 0",
                        "returnByValue": True,
                    },
                )
            except RuntimeError:
                continue
            total += float(found["result"].get("value") or 0)
        return total


def _proc_children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def renderer_peak_rss_mb(profile: Path) -> float | None:
    """Peak RSS (VmHWM) of the largest renderer process of the Chromium using ``profile``."""
    marker = f"--user-data-dir={profile}".encode()
    browsers = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline and b"--type=" not in cmdline:
                browsers.append(int(entry))
    children = _proc_children()
    peaks = []
    todo = list(browsers)
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if b"--type=renderer" in cmdline:
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
    return max(peaks) if peaks else None


class Run:
    """One fresh Chromium on a fresh profile, a page, its console reports and the meters."""

    def __init__(self, playwright: Any, profile: Path, origin: str, config: dict[str, Any]):
        self.profile = profile
        self.context = playwright.chromium.launch_persistent_context(
            str(profile), **launch_options()
        )
        self.meter = Meter(self.context, origin)
        self.context.add_init_script(f"window.__benchConfig = {json.dumps(config)};")
        self.page = self.context.pages[0] if self.context.pages else self.context.new_page()
        self.reports: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.stage = ""
        self.cdp: Cdp | None = None

    def _console(self, message: Any) -> None:
        text = message.text
        if text.startswith("__bench__ "):
            report = json.loads(text.removeprefix("__bench__ "))
            if report["type"] == "stage":
                self.stage = report["name"]
            self.reports.append(report)

    def wait_for(
        self, kinds: set[str], timeout_s: float, tick: Callable[[], None] | None = None
    ) -> dict[str, Any]:
        """Wait for a report of one of ``kinds`` (an ``error`` report raises)."""
        deadline = time.monotonic() + timeout_s
        while True:
            for report in self.reports:
                if report["type"] == "error":
                    raise RuntimeError(f"the page failed: {report['message']}")
                if report["type"] in kinds:
                    self.reports.remove(report)
                    return report
            if self.errors:
                raise RuntimeError("; ".join(self.errors))
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {kinds} after {timeout_s:.0f} s (stage {self.stage!r})")
            if tick is not None:
                tick()
            self.page.wait_for_timeout(SAMPLE_S * 1000 if tick else 20)

    def check_local(self) -> None:
        """Fail the run if any request left 127.0.0.1."""
        if self.meter.foreign:
            raise RuntimeError(f"requests left 127.0.0.1: {self.meter.foreign[:5]}")

    def close(self) -> None:
        """Close the browser."""
        self.context.close()


# -- workloads ----------------------------------------------------------------------------


def workload_config(args: Args, system: BrowserSystem) -> dict[str, Any]:
    """Return the page's ``window.__benchConfig``."""
    params = dict(args.params)
    if system.name == "durably_web_chromium_batched":
        params["checkpoint"] = "batched"
    workload = "floor" if system.name in FLOORS else args.workload
    if workload == "queries":
        params["dataset_sql"] = benchlib.dataset_sql(int(params["runs"]))
        params["summary_sql"] = benchlib.DATASET_SUMMARY_SQL
    return {"workload": workload, "synchronous": args.synchronous, "params": params}


def measured(
    run: Run, url: str, timeout_s: float, profile_dir: Path | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load the page, sample memory while the workload runs, return (metrics, info).

    With ``profile_dir``, profile instead of sampling memory: Chromium's sampling profiler
    (CDP ``Profiler``, 100 us) on the engine's thread from the workload's start to its end,
    written there as ``.cpuprofile`` (DevTools' format) with a self-time summary.
    """
    heap_peak = worker_peak = 0.0
    run.cdp = cdp = Cdp.attach(run.context, run.page)
    profiled: list[str | None] = []

    def sample() -> None:
        nonlocal heap_peak, worker_peak
        if run.stage != "workload":
            return
        if profile_dir is not None:
            if not profiled:
                profiled.extend(_start_profiling(cdp))
            return
        heaps = cdp.heaps()
        heap_peak = max(heap_peak, sum(heaps.values()))
        engine = [v for k, v in heaps.items() if k != "page" and "async-proxy" not in k]
        worker_peak = max(worker_peak, max(engine, default=0.0))

    run.page.goto(url)
    done = run.wait_for({"done"}, timeout_s, tick=sample)
    metrics = dict(done["metrics"])
    if profile_dir is not None:
        _stop_profiling(cdp, profiled, profile_dir)
    metrics["js_heap_peak_mb"] = heap_peak / MB
    metrics["worker_heap_peak_mb"] = worker_peak / MB
    metrics["wasm_mb"] = cdp.wasm_bytes() / MB
    rss = renderer_peak_rss_mb(run.profile)
    if rss is not None:
        metrics["renderer_rss_peak_mb"] = rss
    info = dict(done.get("info", {}))
    for key in ("pyodide_wasm_mb", "sqlite_wasm_mb"):
        if key in info:
            metrics[key] = info.pop(key)
    return metrics, info


def _start_profiling(cdp: Cdp) -> list[str | None]:
    """Start the sampling profiler on the page and on the engine worker(s)."""
    targets: list[str | None] = [None]
    targets += [sid for sid, url in cdp.workers.items() if "async-proxy" not in url]
    for target in targets:
        cdp.call(target, "Profiler.enable")
        cdp.call(target, "Profiler.setSamplingInterval", {"interval": 100})
        cdp.call(target, "Profiler.start")
    return targets


def _stop_profiling(cdp: Cdp, targets: list[str | None], profile_dir: Path) -> None:
    """Stop the profilers; write each profile and a summary of self time by function."""
    profile_dir.mkdir(parents=True, exist_ok=True)
    for target in targets:
        name = "page" if target is None else Path(urlsplit(cdp.workers[target]).path).stem
        profile = cdp.call(target, "Profiler.stop")["profile"]
        (profile_dir / f"{name}.cpuprofile").write_text(json.dumps(profile))
        (profile_dir / f"{name}.txt").write_text(summarize_profile(profile))


def summarize_profile(profile: dict[str, Any], top: int = 45) -> str:
    """Self time per function (sample counts) of a CDP profile, most first, as text."""
    nodes = {node["id"]: node for node in profile["nodes"]}
    counts: dict[int, int] = {}
    for sample in profile.get("samples", []):
        counts[sample] = counts.get(sample, 0) + 1
    total = sum(counts.values()) or 1
    by_function: dict[str, int] = {}
    for node_id, count in counts.items():
        frame = nodes[node_id]["callFrame"]
        where = Path(urlsplit(frame["url"]).path).name if frame["url"] else ""
        key = f"{frame['functionName'] or '(anonymous)'}  [{where}]"
        by_function[key] = by_function.get(key, 0) + count
    by_kind: dict[str, int] = {}
    for node_id, count in counts.items():
        kind = _kind(nodes[node_id]["callFrame"])
        by_kind[kind] = by_kind.get(kind, 0) + count
    lines = [f"{total} samples; self time by kind of code:"]
    for key, count in sorted(by_kind.items(), key=lambda item: -item[1]):
        lines.append(f"{100 * count / total:6.2f}%  {key}")
    lines += ["", "self time by function:"]
    for key, count in sorted(by_function.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"{100 * count / total:6.2f}%  {key}")
    return "\n".join(lines) + "\n"


_OPFS_CALLS = {"write", "flush", "read", "getSize", "truncate", "close"}


def _kind(frame: dict[str, Any]) -> str:
    """Classify a profile frame: which module's code, or which browser built-in."""
    name, url = str(frame["functionName"]), str(frame["url"])
    file = Path(urlsplit(url).path).name if url else ""
    if file.endswith(".wasm"):
        return f"WebAssembly: {file}"
    if file:
        return f"JavaScript: {file}"
    if name in _OPFS_CALLS:
        return "OPFS: FileSystemSyncAccessHandle calls"
    if name.startswith(("wasm-to-js", "js-to-wasm")) or name.startswith("wasm-function"):
        return "WebAssembly <-> JS transitions"
    if name.startswith("("):
        return name
    return f"built-in: {name}"


def plain(run: Run, url: str, timeout_s: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load the page, wait for its result."""
    run.page.goto(url)
    done = run.wait_for({"done"}, timeout_s)
    return dict(done["metrics"]), dict(done.get("info", {}))


def resume(run: Run, url: str, timeout_s: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """First load runs until the step to die in (the page dies); the second load resumes."""
    run.page.goto(url)
    run.wait_for({"crashed", "crashing"}, timeout_s)
    # durably_web's page has terminated its worker already; upstream's engine runs on the
    # page itself and hangs inside the step: leaving the page kills it and SQLocal's worker.
    run.page.goto(f"{url}?phase=resume")
    done = run.wait_for({"done"}, timeout_s)
    return dict(done["metrics"]), dict(done.get("info", {}))


SNAPSHOT_STORED = (
    """() => { caches.open("durably-snapshots").then((c) => c.keys())"""
    """.then((keys) => (window.__durablySnapshotStored = keys.length > 0));"""
    """ return window.__durablySnapshotStored === true; }"""
)
"""Whether the engine worker stored its Pyodide memory snapshot (runtime/snapshot.mjs).

A function for ``wait_for_function(..., polling=...)``, which does not wait for a promise (an
``async`` one was always truthy): each poll starts a look at the cache and answers with the
last one's result."""


def start(
    run: Run, url: str, timeout_s: float, reloads: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Cold load on the fresh profile, then ``reloads`` warm reloads: ready time and bytes.

    durably_web's worker stores a memory snapshot after ``ready`` (~36 MB into Cache Storage):
    before a reload the driver waits until it is stored (up to 20 s), as a page reloaded a
    moment later would find it; each load records what its boot did (``snapshot``).
    """
    loads = []
    for i in range(reloads + 1):
        run.meter.reset()
        if i == 0:
            run.page.goto(url)
        else:
            run.page.reload()
        done = run.wait_for({"done"}, timeout_s)
        run.page.wait_for_timeout(300)  # let late requests finish before counting bytes
        marks = done.get("info", {}).get("marks") or {}
        if marks and i < reloads:
            run.page.wait_for_function(SNAPSHOT_STORED, polling=100, timeout=20_000)
        loads.append(
            {
                "ready_ms": done["metrics"]["ready_ms"],
                "bytes": run.meter.bytes,
                "requests": run.meter.requests,
                "stages": done.get("info", {}).get("stages"),
                "marks": marks,
                # durably_web: what the boot did with a memory snapshot (made, restored, ...)
                "snapshot": next(
                    (str(k).removeprefix("snapshot-") for k in marks if k.startswith("snapshot-")),
                    None,
                ),
            }
        )
    cold, warm = loads[0], loads[1:]
    metrics = {
        "cold_ready_ms": cold["ready_ms"],
        "warm_ready_ms": statistics.median(w["ready_ms"] for w in warm),
        "cold_mb": cold["bytes"] / MB,
        "warm_mb": statistics.median(w["bytes"] for w in warm) / MB,
        "cold_requests": cold["requests"],
    }
    return metrics, {"loads": loads}


def run_workload(
    args: Args, system: BrowserSystem, profile_dir: Path | None = None, cprofile: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one workload once in a fresh Chromium; return (metrics, info).

    ``profile_dir`` (throughput and floors only): profile the run with Chromium's sampling
    profiler and write the profiles there; with ``cprofile`` (durably_web only) cProfile runs
    inside Pyodide as well (it slows Python down about 3x: profile one or the other).
    """
    from playwright.sync_api import sync_playwright

    if args.workload not in system.workloads:
        raise SystemExit(f"{system.name} does not run {args.workload}")
    config = workload_config(args, system)
    if profile_dir is not None and cprofile:
        config["params"]["cprofile"] = not system.upstream and system.name not in FLOORS
    timeout_s = float(args.params.get("timeout_s", 1500))
    server, url = start_server(system, Path(args.dir))
    profile = Path(tempfile.mkdtemp(prefix="profile-", dir=args.dir))
    try:
        with sync_playwright() as playwright:
            run = Run(playwright, profile, server.url, config)
            try:
                if config["workload"] in ("throughput", "floor"):
                    metrics, info = measured(run, url, timeout_s, profile_dir)
                elif args.workload == "resume":
                    metrics, info = resume(run, url, timeout_s)
                elif args.workload == "start":
                    metrics, info = start(run, url, timeout_s, int(args.params.get("reloads", 2)))
                else:
                    metrics, info = plain(run, url, timeout_s)
                run.check_local()
                info["chromium"] = _chromium_version(run)
            finally:
                run.close()
    finally:
        server.shutdown()
        server.server_close()
    if "cprofile" in metrics and profile_dir is not None:
        (profile_dir / "cprofile.txt").write_text(metrics.pop("cprofile"))
    if args.workload == "queries":
        expected = benchlib.dataset_summary(int(args.params["runs"]))
        if metrics.pop("summary") != expected:
            raise RuntimeError("the bulk-inserted data set differs from benchlib.dataset_rows")
    info["playwright"] = version("playwright")
    if system.upstream:
        info.update(_upstream_versions())
    return metrics, info


def _chromium_version(run: Run) -> str:
    session = run.context.new_cdp_session(run.page)
    return str(session.send("Browser.getVersion")["product"]).split("/")[-1]


def _upstream_versions() -> dict[str, str]:
    modules = UPSTREAM_PAGE / "node_modules"
    names = ("@coji/durably", "sqlocal", "kysely", "zod", "@sqlite.org/sqlite-wasm", "esbuild")
    found = {}
    for name in names:
        package = json.loads((modules / name / "package.json").read_text())
        found[name.removeprefix("@coji/").replace("durably", "version")] = package["version"]
    return found


def main() -> None:
    """Run one workload of one browser system once and print its result line."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--system", required=True, choices=list(SYSTEMS))
    pre.add_argument("--profile-dir", type=Path, help="profile the throughput run, write here")
    pre.add_argument("--cprofile", action="store_true", help="also cProfile inside Pyodide")
    known, rest = pre.parse_known_args()
    system = SYSTEMS[known.system]
    args = benchlib.parse_args(__doc__.splitlines()[0], system.workloads, rest)
    metrics, info = run_workload(args, system, known.profile_dir, known.cprofile)
    benchlib.emit(args, system.name, metrics, info)


if __name__ == "__main__":
    main()
