"""The dashboard's run page: one run's input, progress, output or error, steps and logs.

Built only on the live views: a ``live.run`` view (status, progress, output, error, from the
stored state on), a ``live.logs`` view (stored lines, then live ones), and the dashboard's
``live.actions`` for the buttons and the steps (``get_steps``, read again whenever the run's
progress or status changes). :meth:`RunPage.show` switches to another run.

An engine made with ``preserve_steps=False`` (the default) deletes a completed run's steps and
logs: the page then keeps the steps it read while the run ran, and says so.
"""

import json

import js  # noqa: TID251 - page code
import timeline

from durably_web.client import live
from durably_web.client.dispatch import spawn
from durably_web.client.live.dom import DELETE_CONFIRM
from durably_web.client.values import plain

BUTTONS = ("cancel", "retry", "retrigger", "delete_run")
QUESTIONS = dict(DELETE_CONFIRM)  # the destructive actions ask first
QUESTIONS["cancel"] = "Cancel this run? Its current step is interrupted."


def el(element_id):
    """Return the page's element with this id."""
    return js.document.getElementById(element_id)


def pretty(value):
    """Return a JSON value as indented text (None: an empty string)."""
    if value is None:
        return ""
    return str(
        js.JSON.stringify(js.JSON.parse(json.dumps(plain(value))), None, 2)
    )  # mpy: no indent


def millis(text):
    """Return an ISO time as milliseconds since the epoch (None stays None)."""
    return None if not text else float(js.Date.parse(str(text)))


class RunPage:
    """The run page's views and bindings, for one run at a time."""

    def __init__(self, durably, actions, on_deleted):
        self.durably = durably
        self.actions = actions
        self.on_deleted = on_deleted
        self.view = live.run(durably, None, on_change=self.changed)
        self.logs = live.logs(durably, None, max_logs=1000)
        self.steps = []
        self.seen = None  # (status, progress) the steps were last read for
        self.status_seen = None  # the status the run's record was last read for
        self.reading = False
        self.unbind = []
        live.bind_status("#run-status", self.view)
        live.bind_progress("#run-progress", self.view)
        live.bind_logs("#run-logs", self.logs)

    def show(self, run_id):
        """Follow ``run_id`` (the page shows it from its stored state on)."""
        for unbind in self.unbind:
            unbind()
        self.unbind = []
        self.steps = []
        self.seen = None
        self.status_seen = None
        el("steps-dropped").hidden = True
        el("run-id").textContent = run_id
        for name in BUTTONS:
            button = el("run-" + name)
            self.unbind.append(
                live.bind_action(
                    button, self.actions.action(name), run_id, QUESTIONS.get(name), self.view
                )
            )
        self.draw_steps()
        self.view.follow(run_id)
        self.logs.follow(run_id)

    def hide(self):
        """Stop following the run."""
        self.view.follow(None)
        self.logs.follow(None)

    def changed(self, view):
        """Redraw the run's fields; read its steps again when it moved on."""
        run_id = view.run_id
        if run_id is None:
            return
        if view.deleted:
            self.on_deleted(run_id)  # gone (deleted here or elsewhere)
            return
        run = view.run
        el("run-job").textContent = "" if run is None else run.job_name
        for field in ("created_at", "started_at", "completed_at"):
            text = "" if run is None else live.local_time(run.get(field))
            el("run-" + field.replace("_", "-")).textContent = text
        el("run-input").textContent = "" if run is None else pretty(run.get("input"))
        el("run-output").textContent = pretty(view.output)
        el("run-output-box").hidden = view.output is None
        el("run-error").textContent = view.error or ""
        el("run-error-box").hidden = not view.error
        progress = view.progress
        el("run-progress-text").textContent = live.progress_text(progress)
        mark = (view.status, None if progress is None else progress.current)
        if view.status != self.status_seen:
            if self.status_seen is not None:
                view.refresh()  # a new status: its times (started, completed) are in the record
            self.status_seen = view.status
        if mark != self.seen and not self.reading:
            self.seen = mark
            spawn(self.read_steps(run_id), "reading the run's steps")

    async def read_steps(self, run_id):
        """Read the run's steps (once at a time) and draw them."""
        self.reading = True
        try:
            steps = await self.actions.get_steps(run_id)
        except Exception:  # noqa: BLE001 - the button states show action errors
            steps = None
        finally:
            self.reading = False
        if run_id != self.view.run_id:
            return
        el("steps-dropped").hidden = bool(steps) or self.view.status != "completed"
        if steps is not None and (steps or not self.steps):  # steps only go at completion:
            self.steps = steps  # then the page keeps those it read before
            self.draw_steps()
        status = self.view.status
        now = (status, None if self.view.progress is None else self.view.progress.current)
        if now != self.seen:  # it moved on while we read
            self.seen = now
            spawn(self.read_steps(run_id), "reading the run's steps")

    def draw_steps(self):
        """Draw the steps as a table and as the timeline chart."""
        body = el("steps")
        body.replaceChildren()
        spans = []
        for step in self.steps:
            started, ended = millis(step.started_at), millis(step.get("completed_at"))
            spans.append((step.name, step.status, started, ended))
            row = js.document.createElement("tr")
            row.dataset.status = step.status
            took = "" if ended is None else timeline.duration_text(ended - started)
            result = step.error if step.status != "completed" else pretty(step.output)
            for text in (str(step.index), step.name, step.status, took, result or ""):
                cell = js.document.createElement("td")
                cell.textContent = text
                row.append(cell)
            body.append(row)
        el("steps-empty").hidden = bool(self.steps)
        timeline.draw(el("timeline"), spans, float(js.Date.now()))
