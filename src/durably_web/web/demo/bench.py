"""The benchmark page (bench.html beside it): 1000 checkpointed steps, steps per second.

Query as on the demo: ``?db=NAME`` (the demo's database by default; with the demo open in
another tab this page works through that tab's engine), ``?server=/api/durably``.
"""

import json

import js  # noqa: TID251 - page code

from durably_web.client import connect
from durably_web.client.dispatch import js_callable, spawn
from durably_web.client.values import plain

PARAMS = js.URLSearchParams.new(js.location.search)
NAME = str(PARAMS.get("db")) if PARAMS.has("db") else "demo"
SERVER = str(PARAMS.get("server")) if PARAMS.has("server") else None


def el(element_id):
    """Return the element with that id."""
    return js.document.getElementById(element_id)


def on_status(info):
    """Show the engine's status."""
    el("status").dataset.status = info.status
    el("status").textContent = "Ready" if info.status == "ready" else str(info.status) + "…"


async def benchmark():
    """Run 1000 trivial checkpointed steps; show steps per second."""
    el("bench").disabled = True
    el("bench-error").hidden = True
    el("bench-result").textContent = "running 1000 steps…"
    try:
        result = await durably.jobs.bench_steps.trigger_and_wait({"steps": 1000}, timeout=300)
    except Exception as exc:  # noqa: BLE001 - shown to the user
        el("bench-error").textContent = str(exc)
        el("bench-error").hidden = False
        el("bench-result").textContent = ""
    else:
        out = plain(result.output)
        rate = js.Intl.NumberFormat.new("en-US").format(int(out["steps_per_s"]))  # 3,619
        el("bench-result").textContent = rate + " steps/s"
        el("bench-result").dataset.result = json.dumps(out)
    el("bench").disabled = False


js.document.body.dataset.app = "running"
if SERVER:
    durably = await connect(url=SERVER, on_status=on_status)  # noqa: F704 - top-level await
else:
    database = NAME if NAME.startswith("/") else "/" + NAME + ".db"
    durably = await connect(jobs="./jobs.py", database=database, on_status=on_status)  # noqa: F704
el("bench").addEventListener("click", js_callable(lambda _e: spawn(benchmark(), "benchmark")))
el("bench").disabled = False
