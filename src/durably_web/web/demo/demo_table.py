"""The demo page's table of runs (index.html beside it): one row per run, live.

Used by demo.py (MicroPython or Pyodide). Rows carry ``data-run-id``, ``data-status``,
``data-progress``, ``data-resumed`` and ``data-audit`` for the tests.
"""

import json

import js  # noqa: TID251 - page code


class RunTable:
    """Rows of runs in ``<tbody id=runs>``, with cancel / retry / delete / audit buttons.

    Args:
        state: the page's state dict mirrored into ``window.__demo``.
        on_click: ``on_click(element, coroutine_function)`` wires a button.

    """

    def __init__(self, state, on_click):
        self.body = js.document.getElementById("runs")
        self.rows = {}
        self.state = state
        self.on_click = on_click
        self.durably = None  # set once the engine is ready

    def __contains__(self, run_id):
        return run_id in self.rows

    def __len__(self):
        return len(self.rows)

    def count(self):
        """Show how many runs are listed."""
        counter = js.document.getElementById("count")
        counter.textContent = str(len(self.rows)) + " run(s) stored"
        counter.dataset.count = str(len(self.rows))

    def render(self, run):
        """Add or update the run's row."""
        if run.id not in self.rows:
            tr = js.document.createElement("tr")
            tr.dataset.runId = run.id
            tr.innerHTML = (
                "<td class=id></td><td class=job></td><td class=st></td>"
                "<td><progress max=1 value=0></progress> <span class=pt></span></td>"
                "<td class=act></td>"
            )
            self.body.prepend(tr)
            self.rows[run.id] = tr
            tr.querySelector(".id").textContent = run.id[-8:]
            label = run.job_name
            if run.input and run.input.get("filename"):
                label += " (" + str(run.input.get("filename")) + ")"
            tr.querySelector(".job").textContent = label
            for action in ("cancel", "retry", "delete", "audit"):
                button = js.document.createElement("button")
                button.textContent = action
                button.className = action
                tr.querySelector(".act").append(button)
                self.on_click(button, self.action(action, run.id))
            self.count()
        waiting = run.waiting if run.status == "waiting" else None
        self.set_status(run.id, run.status, run.progress, run.output, run.error, waiting)

    def set_status(self, run_id, status, progress=None, output=None, error=None, waiting=None):
        """Show a run's status (and enable the buttons that apply).

        A waiting run says for what: ``waiting: sleep nap until 2026-01-01T10:00:00.000Z``,
        ``waiting: signal approval``, ``waiting: retry fetch until ...``.
        """
        tr = self.rows.get(run_id)
        if tr is None:
            return
        tr.dataset.status = status
        text = status + (": " + str(error) if error else "")
        if waiting is not None:
            until = waiting.get("until")
            text = status + ": " + str(waiting.get("kind")) + " " + str(waiting.get("name"))
            text += (" until " + str(until)) if until else ""
        tr.querySelector(".st").textContent = text
        tr.querySelector(".cancel").disabled = status not in ("pending", "leased", "waiting")
        tr.querySelector(".retry").disabled = status not in ("failed", "cancelled")
        tr.querySelector(".delete").disabled = status in ("pending", "leased", "waiting")
        tr.querySelector(".audit").disabled = status != "completed"
        if progress is not None:
            self.set_progress(run_id, progress)
        if output is not None:
            tr.querySelector(".pt").textContent = json.dumps(output.to_dict())
        self.state["runs"][run_id] = {"status": status}

    def set_progress(self, run_id, progress):
        """Move a run's progress bar."""
        tr = self.rows.get(run_id)
        if tr is None:
            return
        total = progress.total or 0
        tr.querySelector("progress").value = progress.current / total if total else 0
        tr.querySelector(".pt").textContent = progress.message or str(progress.current)
        tr.dataset.progress = str(progress.current)
        self.state["progress_seen"].setdefault(run_id, []).append(progress.current)

    def note_resumed(self, run):
        """Mark a run on its second (or later) attempt: a reload, a killed worker, a retry.

        Its lease generation counts the claims; a pending run with checkpointed steps is
        waiting to resume.
        """
        generation = run.get("lease_generation") or 0  # a server's runs do not say
        resumed = run.status in ("leased", "completed") and generation > 1
        resumed = resumed or (run.status == "pending" and run.completed_step_count > 0)
        if resumed and run.id in self:
            self.rows[run.id].dataset.resumed = "1"
            if run.id not in self.state["resumed"]:
                self.state["resumed"].append(run.id)

    def remove(self, run_id):
        """Drop a deleted run's row."""
        tr = self.rows.pop(run_id, None)
        if tr is not None:
            tr.remove()
        self.state["runs"].pop(run_id, None)
        self.count()

    def action(self, action, run_id):
        """Return the coroutine function behind a row's button."""

        async def act():
            if action == "cancel":
                await self.durably.cancel(run_id)
            elif action == "retry":
                await self.durably.retry(run_id)
            elif action == "delete":
                await self.durably.delete_run(run_id)
            else:
                result = await self.durably.jobs.audit_ledger.trigger_and_wait(
                    {"run_id": run_id}, timeout=60
                )
                audit = json.dumps(result.output.to_dict())
                self.rows[run_id].dataset.audit = audit
                self.rows[run_id].querySelector(".pt").textContent = "audit: " + audit

        return act
