"""A live page in 30 lines: start a job, watch it run, list its runs (docs/bindings.md)."""

import js
from pyscript import web, when

from durably_web.client import connect, live

CLIENT = "../_durably/client/index.mjs"  # this page is one folder down in the site
query = js.URLSearchParams.new(js.location.search)
if query.has("server"):  # ?server=/api/durably: the engine runs in that server
    durably = await connect(url=str(query.get("server")), client=CLIENT)
else:  # the engine runs in this page's Web Worker, on OPFS
    durably = await connect(jobs="./jobs.py", database="/example.db", client=CLIENT)

job = live.job(durably, "count")  # the current run of "count": a reload picks it up again
runs = live.runs(durably, job_name="count", page_size=5)
live.bind_status("#status", job)
live.bind_progress("#progress", job)
live.bind_logs("#logs", job)
live.bind_runs_table("#runs", runs, live.actions(durably))
live.bind_text("#page", runs, lambda view: f"page {view.page + 1}")
live.bind("#newer", runs, lambda button, view: setattr(button, "disabled", view.page == 0))
live.bind("#older", runs, lambda button, view: setattr(button, "disabled", not view.has_more))


@when("click", "#start")
async def start(event):
    await job.trigger({"steps": int(web.page["steps"].value)})


@when(job.changed)
def show_output(view):
    web.page["output"].innerText = f"counted {view.output.counted}" if view.is_completed else ""


@when("click", "#older")
def older(event):
    runs.next_page()


@when("click", "#newer")
def newer(event):
    runs.prev_page()
