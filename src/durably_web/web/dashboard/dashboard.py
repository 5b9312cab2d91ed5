"""The runs dashboard: every run of an app's Durably, live, and one run's page.

Served at ``/_durably/dashboard/`` of every site ``durably-web build`` makes (and by
``durably-web serve-api --static``). Built only on ``durably_web.client.live``. Query:

- ``?server=/api/durably``: the engine runs in that server (server mode);
- else worker mode: ``?jobs=`` the app's job module (default ``../../jobs.py``, the site's
  root) and ``?db=`` its database (default ``/durably.db``; the demo's is ``/demo.db``);
- ``?py=1``: Pyodide instead of MicroPython.

The fragment says what is shown: ``#run=ID`` a run's page, else the runs list. While the
page runs, ``window.__dashboard`` says what it shows (for tests).
"""

import json

import js  # noqa: TID251 - page code
from run_page import QUESTIONS, RunPage

from durably_web.client import connect, live
from durably_web.client.dispatch import js_callable

PARAMS = js.URLSearchParams.new(js.location.search)
CLIENT = "../client/index.mjs"
PAGE_SIZE = 20
STATUSES = ("pending", "leased", "waiting", "completed", "failed", "cancelled")


def param(name, default=None):
    """Return a query parameter, or ``default``."""
    return str(PARAMS.get(name)) if PARAMS.has(name) else default


def el(element_id):
    """Return the page's element with this id."""
    return js.document.getElementById(element_id)


def option(select, value, text):
    """Add an ``<option>`` to a ``<select>``."""
    item = js.document.createElement("option")
    item.value = value
    item.textContent = text
    select.append(item)


def parse_labels(text):
    """Return ``"key=value, key2=value2"`` as a dict; raise ValueError naming a bad pair."""
    labels = {}
    for pair in text.split(","):
        pair = pair.strip()
        if not pair:
            continue
        if "=" not in pair or not pair.split("=", 1)[0].strip():
            raise ValueError("label filter " + repr(pair) + " is not key=value")
        key, value = pair.split("=", 1)
        labels[key.strip()] = value.strip()
    return labels or None


ROLES = {"leader": "this tab's worker", "follower": "another tab's worker", "server": "server"}


def on_status(info):
    """Show where the engine runs once it is ready (a follower tab may take over), else why not."""
    status = str(info.status)
    if status == "ready":
        role = "server" if param("server") else str(info.get("role") or "leader")
        el("engine").textContent = ROLES.get(role, role)
    else:
        stage = info.get("stage")
        el("engine").textContent = status + (" (" + str(stage) + ")" if stage else "")
    el("engine").dataset.status = status


async def open_client():
    """Connect in the mode the query asks for; show why, if the engine cannot start."""
    server = param("server")
    try:
        if server:
            return await connect(url=server, client=CLIENT, on_status=on_status)
        database = param("db", "/durably.db")
        return await connect(
            jobs=param("jobs", "../../jobs.py"),
            database=database if database.startswith("/") else "/" + database + ".db",
            client=CLIENT,
            on_status=on_status,
        )
    except Exception as exc:  # noqa: BLE001 - every boot failure is shown
        el("engine").textContent = "not connected"
        el("engine").dataset.status = "failed"
        el("engine-error").textContent = str(exc)
        el("engine-error").hidden = False
        return None


def route(_event=None):
    """Show what the fragment names: a run's page or the runs list."""
    fragment = str(js.location.hash)
    run_id = fragment[len("#run=") :] if fragment.startswith("#run=") else None
    el("list-view").hidden = run_id is not None
    el("run-view").hidden = run_id is None
    if run_id is None:
        run_page.hide()
    else:
        run_page.show(run_id)
    publish()


def deleted(run_id):
    """Go back to the list: the run shown was deleted."""
    if str(js.location.hash) == "#run=" + run_id:
        js.location.hash = ""


def apply_filters(_event=None):
    """Show the first page of the runs the filters select."""
    try:
        labels = parse_labels(str(el("filter-labels").value))
    except ValueError as exc:
        el("filter-error").textContent = str(exc)
        return
    el("filter-error").textContent = ""
    runs.set_filter(
        job_name=str(el("filter-job").value) or None,
        status=str(el("filter-status").value) or None,
        labels=labels,
    )


def publish(_view=None):
    """Mirror what the page shows into ``window.__dashboard`` (for tests)."""
    if runs is None:
        return  # the runs view is still being made
    state = {"page": runs.page, "loading": runs.loading, "count": len(runs.runs)}
    state["run"] = run_page.view.run_id
    js.window.__dashboard = js.JSON.parse(json.dumps(state))


def show_list_state(node, view):
    """Paging buttons, the empty note and the read error of the runs list."""
    el("older").disabled = not view.has_more
    el("newer").disabled = view.page == 0
    el("runs-empty").hidden = bool(view.runs) or view.loading
    node.textContent = "" if view.error is None else str(view.error)


run_page = runs = None
durably = await open_client()  # noqa: F704 - PyScript's top-level await
if durably is not None:
    for key in durably.jobs:
        option(el("filter-job"), durably.jobs[key].name, durably.jobs[key].name)
    for status in STATUSES:
        option(el("filter-status"), status, live.status_text(status))
    actions = live.actions(durably)
    run_page = RunPage(durably, actions, deleted)
    runs = live.runs(durably, page_size=PAGE_SIZE, on_change=publish)
    live.bind_runs_table(
        "#runs", runs, actions, confirm=QUESTIONS, link=lambda run: "#run=" + run.id
    )
    live.bind_text("#page", runs, lambda view: "page " + str(view.page + 1))
    live.bind("#runs-error", runs, show_list_state)
    el("older").addEventListener("click", js_callable(lambda _e: runs.next_page()))
    el("newer").addEventListener("click", js_callable(lambda _e: runs.prev_page()))
    el("refresh").addEventListener("click", js_callable(lambda _e: runs.refresh()))
    for name in ("filter-job", "filter-status", "filter-labels"):
        el(name).addEventListener("change", js_callable(apply_filters))
    js.window.addEventListener("hashchange", js_callable(route))
    route()
    js.document.body.dataset.app = "ready"
