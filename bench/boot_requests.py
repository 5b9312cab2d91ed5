"""List every request of one cold start of the benchmark page: file, size, encoding, timing.

    .venv/bin/python bench/boot_requests.py [--system durably_web_chromium] [--reload]

The network log of ``bench/run.py --workloads start``'s cold load (same server, same page,
a fresh Chromium profile): for each request its path, status, ``Content-Encoding``, the
bytes on the wire (headers + encoded body, what the start workload counts), its
``Content-Length`` (the encoded body), and when it started and ended (ms since navigation).
``--reload`` lists a warm reload's requests after the cold ones. Prints a Markdown table
per load and its totals.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent / "systems"))

from chromium import SNAPSHOT_STORED, SYSTEMS, Run, start_server

MIB = 2**20


def entry(response: Any, navigation_ms: float) -> dict[str, Any]:
    """One request's row: path, status, encoding, wire and body bytes, start and end (ms)."""
    request = response.request
    sizes = request.sizes()
    timing = request.timing
    start = timing["startTime"] - navigation_ms
    return {
        "path": urlsplit(request.url).path,
        "status": response.status,
        "encoding": response.headers.get("content-encoding", "-"),
        "wire": sizes["responseBodySize"] + sizes["responseHeadersSize"],
        "body": int(response.headers.get("content-length", "0") or 0),  # encoded
        "start_ms": start,
        "end_ms": start + timing["responseEnd"],
    }


def load(run: Run, url: str | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Navigate (``url``) or reload (None) until the page reports; return rows and its report."""
    responses: list[Any] = []

    def listener(response: Any) -> None:
        responses.append(response)

    run.context.on("response", listener)
    if url is None:
        run.page.reload()
    else:
        run.page.goto(url)
    done = run.wait_for({"done"}, 180)
    run.page.wait_for_timeout(300)
    run.context.remove_listener("response", listener)
    navigation = run.page.evaluate("performance.timeOrigin")
    rows = []
    for response in responses:
        try:
            response.finished()
            rows.append(entry(response, float(navigation)))
        except Exception as error:  # noqa: BLE001 - a request that never finished
            rows.append({"path": urlsplit(response.url).path, "status": f"? {error}"})
    return sorted(rows, key=lambda row: row.get("start_ms", 0.0)), done


def table(rows: list[dict[str, Any]], done: dict[str, Any]) -> str:
    """Return the rows as Markdown, then the totals and the page's ready time."""
    lines = [
        "| # | path | status | encoding | wire bytes | Content-Length | start ms | end ms |",
        "|---:|---|---:|---|---:|---:|---:|---:|",
    ]
    for i, row in enumerate(rows, 1):
        if "wire" not in row:
            lines.append(f"| {i} | {row['path']} | {row['status']} | | | | | |")
            continue
        lines.append(
            f"| {i} | {row['path']} | {row['status']} | {row['encoding']} | {row['wire']:,} "
            f"| {row['body']:,} | {row['start_ms']:,.0f} | {row['end_ms']:,.0f} |"
        )
    wire = sum(row.get("wire", 0) for row in rows)
    ready = done["metrics"]["ready_ms"]
    lines.append(
        f"\n{len(rows)} requests, {wire:,} B = {wire / MIB:.2f} MiB on the wire; "
        f"ready at {ready:,.0f} ms; marks {done.get('info', {}).get('marks')}"
    )
    return "\n".join(lines)


def main() -> int:
    """Load the page cold (and warm with ``--reload``) and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", default="durably_web_chromium", choices=sorted(SYSTEMS))
    parser.add_argument("--reload", action="store_true", help="also list a warm reload")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    system = SYSTEMS[args.system]
    config = {"workload": "start", "synchronous": "NORMAL", "params": {}}
    with tempfile.TemporaryDirectory(prefix="boot-requests-") as tmp:
        server, url = start_server(system, Path(tmp))
        try:
            with sync_playwright() as pw:
                run = Run(pw, Path(tmp) / "profile", server.url, config)
                try:
                    rows, done = load(run, url)
                    print("## cold\n\n" + table(rows, done))
                    if args.reload:
                        if not system.upstream:
                            run.page.wait_for_function(SNAPSHOT_STORED, polling=100, timeout=20_000)
                        rows, done = load(run, None)
                        print("\n## warm reload\n\n" + table(rows, done))
                    run.check_local()
                finally:
                    run.close()
        finally:
            server.shutdown()
            server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
