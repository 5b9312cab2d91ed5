"""The demo page's table of imports (index.html beside it), drawn from a ``live.runs`` view.

One row per run, newest first, updated in place as the view changes (progress moves, a run
finishes, a run is deleted anywhere). Rows carry ``data-run-id``, ``data-status``,
``data-progress``, ``data-resumed`` and ``data-audit``; buttons ``.cancel``, ``.retry``,
``.delete`` (confirmed), ``.audit`` and ``.logs``. Used by demo.py (MicroPython or Pyodide).
"""

import json

import js  # noqa: TID251 - page code
from demo_form import output_text

from durably_web.client import live
from durably_web.client.dispatch import js_callable, spawn
from durably_web.client.live.dom import ALLOWED

BUTTONS = (
    ("logs", "Logs", None),
    ("cancel", "Cancel", "cancel"),
    ("retry", "Retry", "retry"),
    ("delete", "Delete", "delete_run"),
    ("audit", "Audit", None),
)
"""Each row's buttons: class, label, and the run action it calls (None: the page's own)."""

DELETE_QUESTION = "Delete this import with its steps and logs?"


class RunTable:
    """The rows of ``<tbody id=runs>`` for a ``live.runs`` view, with their buttons.

    Args:
        state: the page's state dict mirrored into ``window.__demo``.
        view: the ``live.runs`` view of the imports.
        actions: the ``live.actions`` view the buttons call.
        on_logs: called with a run id when its Logs button is clicked.
        audit: ``await audit(run_id)`` returns the ledger's audit of a finished import.
        publish: called after each redraw (mirrors ``state``).

    """

    def __init__(self, state, view, actions, on_logs, audit, publish):
        self.body = js.document.getElementById("runs")
        self.rows = {}
        self.order = []
        self.audits = {}  # run id -> the audit's sentence
        self.state = state
        self.actions = actions
        self.on_logs = on_logs
        self.audit = audit
        self.publish = publish
        live.bind(self.body, view, self.render)
        actions.changed.add_listener(lambda _actions: self.render(self.body, view))

    def __contains__(self, run_id):
        return run_id in self.rows

    def render(self, _body, view):
        """Draw the view's runs: add, update, drop and order rows."""
        ids = [run.id for run in view.runs]
        for run in view.runs:
            if run.id not in self.rows:
                self.rows[run.id] = self.add(run)
            self.update(self.rows[run.id], run)
        for run_id in list(self.rows):
            if run_id not in ids:
                self.rows.pop(run_id).remove()
                self.state["runs"].pop(run_id, None)
        if ids != self.order:
            for run_id in ids:
                self.body.append(self.rows[run_id])
            self.order = ids
        if not view.loading:
            counter = js.document.getElementById("count")
            counter.textContent = str(len(ids)) + (" import" if len(ids) == 1 else " imports")
            counter.dataset.count = str(len(ids))
        js.document.getElementById("no-runs").hidden = bool(ids) or view.loading
        self.publish()

    def add(self, run):
        """Make a run's row."""
        document = js.document
        tr = document.createElement("tr")
        tr.dataset.runId = run.id
        for name in ("what", "st", "progress", "act"):
            cell = document.createElement("td")
            cell.className = name
            tr.append(cell)
        what = tr.querySelector(".what")
        name = document.createElement("strong")
        name.textContent = (run.input or {}).get("filename") or run.job_name
        when = document.createElement("span")
        when.className = "when"
        when.textContent = live.local_time(run.get("created_at")) + " · " + run.id[-8:]
        what.append(name, when)
        cell = tr.querySelector(".progress")
        cell.append(document.createElement("progress"), document.createElement("span"))
        cell.querySelector("span").className = "pt"
        for css, label, action in BUTTONS:
            button = document.createElement("button")
            button.className = css
            button.textContent = label
            tr.querySelector(".act").append(button)
            button.addEventListener("click", js_callable(self.clicked(css, action, run.id)))
        return tr

    def update(self, tr, run):
        """Show a run's status, progress or output, and the buttons that apply."""
        status = run.status
        tr.dataset.status = status
        current = None if run.progress is None else run.progress.current
        tr.dataset.progress = "" if current is None else str(current)
        tr.querySelector(".st").textContent = live.status_text(
            status, run.error, run.get("waiting")
        )
        bar = tr.querySelector("progress")
        total = None if run.progress is None else run.progress.total
        bar.max = total or 1
        bar.value = (current or 0) if total else (1 if status == "completed" else 0)
        text = (
            output_text(run.output) if status == "completed" else live.progress_text(run.progress)
        )
        if run.id in self.audits:
            text = text + " · " + self.audits[run.id]
        tr.querySelector(".pt").textContent = text
        for css, _label, action in BUTTONS:
            button = tr.querySelector("." + css)
            allowed = ALLOWED.get(action) if action else None
            refused = allowed is not None and status not in allowed
            if css == "audit":
                refused = status != "completed"
            pending = action is not None and self.actions.action(action).is_pending(run.id)
            button.disabled = refused or pending
        self.note_resumed(tr, run)
        self.state["runs"][run.id] = {"status": status}

    def note_resumed(self, tr, run):
        """Mark a run on its second (or later) attempt: a reload, a killed worker, a retry.

        Its lease generation counts the claims; a pending run with checkpointed steps is
        waiting to resume.
        """
        generation = run.get("lease_generation") or 0  # a server's runs do not say
        resumed = run.status in ("leased", "completed") and generation > 1
        resumed = resumed or (run.status == "pending" and run.completed_step_count > 0)
        if resumed:
            tr.dataset.resumed = "1"
            if run.id not in self.state["resumed"]:
                self.state["resumed"].append(run.id)

    def clicked(self, css, action, run_id):
        """Return the click handler of a row's button."""

        def click(_event):
            if css == "logs":
                self.on_logs(run_id)
            elif css == "audit":
                spawn(self.show_audit(run_id), "auditing an import")
            elif css != "delete" or js.window.confirm(DELETE_QUESTION):
                spawn(self.act(action, run_id), "the " + css + " button")

        return click

    async def act(self, action, run_id):
        """Call a run action; a refusal is shown on the page (the action keeps it)."""
        try:
            await self.actions.action(action)(run_id)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            box = js.document.getElementById("form-error")
            box.textContent = "Could not " + action.replace("_run", "") + ": " + str(exc)
            box.hidden = False

    async def show_audit(self, run_id):
        """Audit a finished import against the ledger; show the result on its row."""
        result = await self.audit(run_id)
        tr = self.rows.get(run_id)
        if tr is None:
            return
        again = result.get("rerun_after_checkpoint")
        self.audits[run_id] = (
            "audit: "
            + str(result.get("rows_imported"))
            + " rows in the ledger, "
            + ("no batch re-run after its checkpoint" if not again else str(again) + " re-run!")
        )
        tr.dataset.audit = json.dumps(result)
        tr.querySelector(".pt").textContent += " · " + self.audits[run_id]
