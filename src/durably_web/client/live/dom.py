"""Bind live views to the page's elements: a badge, a bar, a log list, a runs table, a button.

Anything else: ``@when(view.changed)``, or :func:`bind` with a function that draws.

Each helper takes its element as a CSS selector (``"#status"``), a ``pyscript.web`` element
or a DOM element, draws it at once, redraws it after every change of the view, and returns a
function that stops that. Text is set as text (never parsed as HTML), and each helper writes
``data-*`` attributes a stylesheet (or a test) can select on:

- :func:`bind_status`: ``data-status`` (the engine's word) and the user's word as text.
- :func:`bind_progress`: ``value`` / ``max`` (no ``value`` while a running run has no total:
  an indeterminate bar) and ``data-current``.
- :func:`bind_logs`: one ``<li data-level>`` per line.
- :func:`bind_runs_table`: one ``<tr data-run-id data-status data-progress>`` per run, with
  cells ``run`` (a link with ``link=``), ``job``, ``status``, ``progress``, ``created``
  (local time) and ``actions``
  (buttons ``data-action`` enabled by the run's status, disabled while their call runs, the
  last failure in ``.error``).
- :func:`bind_action`: a button that calls an action on a run, disabled while it runs, its
  failure in ``data-error`` and ``title``.

MicroPython-safe (see :mod:`durably_web.client.values`); the page's ``js`` module is
imported only to find an element by selector and to format times.
"""

try:
    from collections.abc import Callable
    from typing import Any
except ImportError:  # MicroPython: annotations are never evaluated there
    pass

from durably_web.client.dispatch import js_callable, spawn
from durably_web.client.live.status import ACTIVE, TERMINAL, status_text

__all__ = [
    "ALLOWED",
    "BUTTON_LABELS",
    "DELETE_CONFIRM",
    "bind",
    "bind_action",
    "bind_logs",
    "bind_progress",
    "bind_runs_table",
    "bind_status",
    "bind_text",
    "element",
    "local_time",
    "progress_text",
]

BUTTON_LABELS = {
    "cancel": "Cancel",
    "retry": "Retry",
    "retrigger": "Run again",
    "delete_run": "Delete",
    "get_run": "Details",
    "get_steps": "Steps",
}
"""The text of each action's button."""

ALLOWED = {
    "cancel": ACTIVE,
    "retry": ("failed", "cancelled"),
    "retrigger": TERMINAL,
    "delete_run": TERMINAL,
}
"""The statuses in which an action's button is enabled (any status for the others)."""

DELETE_CONFIRM = {"delete_run": "Delete this run with its steps and logs?"}
"""The question a runs table asks before its Delete button deletes (by default)."""


def element(target: Any) -> Any:
    """Return the DOM element of a CSS selector, a ``pyscript.web`` element or an element."""
    if isinstance(target, str):
        import js  # noqa: TID251 - the page's document

        found = js.document.querySelector(target)
        if found is None:
            raise ValueError(f"no element matches {target!r} on this page")
        return found
    return getattr(target, "_dom_element", target)


def bind(target: Any, view: Any, render: Callable[[Any, Any], Any]) -> Callable[[], None]:
    """Call ``render(element, view)`` now and after each change of ``view``; return unbind."""
    node = element(target)

    def draw(_view: Any) -> None:
        render(node, view)

    draw(view)
    view.changed.add_listener(draw)
    return lambda: view.changed.remove_listener(draw)


def bind_text(target: Any, view: Any, text: Callable[[Any], Any]) -> Callable[[], None]:
    """Show ``str(text(view))`` as the element's text."""

    def render(node: Any, view: Any) -> None:
        node.textContent = str(text(view))

    return bind(target, view, render)


def bind_status(target: Any, view: Any) -> Callable[[], None]:
    """Show a run view's status in the user's words (``running``, ``failed: ...``)."""

    def render(node: Any, view: Any) -> None:
        node.textContent = status_text(view.status, view.error, view.waiting)
        node.dataset.status = view.status or ""

    return bind(target, view, render)


def bind_progress(target: Any, view: Any) -> Callable[[], None]:
    """Show a run view's progress in a ``<progress>`` (``current`` of ``total``)."""

    def render(node: Any, view: Any) -> None:
        _draw_progress(node, view.progress, view.status)

    return bind(target, view, render)


def bind_logs(
    target: Any, view: Any, text: Callable[[Any], str] | None = None
) -> Callable[[], None]:
    """Show a view's log lines (a ``live.logs`` view, or a run or job view) as ``<li>``.

    Args:
        target: a ``<ul>`` or ``<ol>``.
        view: the view.
        text: the text of a line (default: ``"level: message"``, with the step's name).

    """
    shown: list[Any] = []  # the lines drawn, in order

    def render(node: Any, view: Any) -> None:
        lines = view.lines if hasattr(view, "lines") else view.logs
        appended = len(lines) >= len(shown) and all(
            lines[index] is line for index, line in enumerate(shown)
        )
        if not appended:
            node.replaceChildren()
            shown.clear()
        for line in lines[len(shown) :]:
            item = node.ownerDocument.createElement("li")
            item.dataset.level = line.level
            item.textContent = text(line) if text else _line_text(line)
            node.append(item)
            shown.append(line)

    return bind(target, view, render)


def bind_action(
    target: Any,
    action: Any,
    run_id: str,
    confirm: str | None = None,
    view: Any = None,
) -> Callable[[], None]:
    """Make a button call ``action(run_id)`` on click (after ``confirm``, if given).

    The button is disabled while the call runs, and, with ``view`` (a run view of the same
    run), while the run's status refuses the action (:data:`ALLOWED`: no cancel of a finished
    run); a failure is kept in ``data-error`` and the button's ``title`` (and in
    ``action.error_for(run_id)``), not raised.
    """
    node = element(target)
    owner = action._owner
    allowed = ALLOWED.get(action.name)
    sources = [owner] if view is None else [owner, view]

    def render(_view: Any) -> None:
        refused = view is not None and allowed is not None and view.status not in allowed
        node.disabled = action.is_pending(run_id) or refused
        _show_error(node, action.error_for(run_id))

    proxy = _wire(node, action, run_id, confirm)
    render(owner)
    for source in sources:
        source.changed.add_listener(render)

    def unbind() -> None:
        node.removeEventListener("click", proxy)
        for source in sources:
            source.changed.remove_listener(render)

    return unbind


class _Row:
    """One run's ``<tr>`` and the elements it updates."""

    def __init__(
        self, document: Any, run: Any, actions: Any, buttons: Any, questions: Any, link: Any
    ):
        self.tr = document.createElement("tr")
        self.tr.dataset.runId = run.id
        cells = {}
        for name in ("run", "job", "status", "progress", "created", "actions"):
            cells[name] = document.createElement("td")
            cells[name].className = name
            self.tr.append(cells[name])
        name = cells["run"]
        if link is not None:
            name = document.createElement("a")
            name.href = link(run)
            cells["run"].append(name)
        name.textContent = run.id[-8:]
        cells["run"].title = run.id
        cells["job"].textContent = run.job_name
        cells["created"].textContent = local_time(run.get("created_at"))
        self.status = cells["status"]
        self.bar = document.createElement("progress")
        self.text = document.createElement("span")
        cells["progress"].append(self.bar, self.text)
        self.buttons = []
        self.note = document.createElement("span")
        self.note.className = "error"
        if actions is not None:
            for name in buttons:
                button = document.createElement("button")
                button.dataset.action = name
                button.textContent = BUTTON_LABELS.get(name, name)
                cells["actions"].append(button)
                action = actions.action(name)
                _wire(button, action, run.id, questions.get(name))
                self.buttons.append((button, action))
            cells["actions"].append(self.note)

    def update(self, run: Any) -> None:
        self.tr.dataset.status = run.status
        current = run.progress.current if run.progress is not None else None
        self.tr.dataset.progress = "" if current is None else str(current)
        self.status.textContent = status_text(run.status, run.error, run.get("waiting"))
        _draw_progress(self.bar, run.progress, run.status)
        self.text.textContent = progress_text(run.progress)
        failure = None
        for button, action in self.buttons:
            allowed = ALLOWED.get(action.name)
            refused = allowed is not None and run.status not in allowed
            button.disabled = action.is_pending(run.id) or refused
            failure = action.error_for(run.id) or failure
        if self.buttons:
            _show_error(self.note, failure)


def bind_runs_table(
    target: Any,
    view: Any,
    actions: Any = None,
    buttons: Any = ("cancel", "retry", "retrigger", "delete_run"),
    confirm: dict[str, str] | None = None,
    link: Callable[[Any], str] | None = None,
) -> Callable[[], None]:
    """Show a ``live.runs`` view as rows of a ``<tbody>``, with action buttons.

    Args:
        target: the ``<tbody>`` (its rows are the helper's).
        view: the runs view.
        actions: a ``live.actions`` view; without one, no buttons.
        buttons: the actions that get a button in each row.
        confirm: a question per action asked before it runs (default: before a delete).
        link: the URL a run's id links to (``lambda run: "#run=" + run.id``); None: no link.

    """
    body = element(target)
    questions = DELETE_CONFIRM if confirm is None else confirm
    rows: dict[str, _Row] = {}
    order: list[str] = []

    def render(_node: Any, _view: Any) -> None:
        ids = [run.id for run in view.runs]
        for run in view.runs:
            if run.id not in rows:
                rows[run.id] = _Row(body.ownerDocument, run, actions, buttons, questions, link)
            rows[run.id].update(run)
        for run_id in list(rows):
            if run_id not in ids:
                rows.pop(run_id).tr.remove()
        if ids != order:
            for run_id in ids:
                body.append(rows[run_id].tr)  # moves it to the end: the rows end up in order
            order.clear()
            order.extend(ids)

    unbind = bind(body, view, render)
    if actions is None:
        return unbind

    def redraw(_actions: Any) -> None:
        render(body, view)

    actions.changed.add_listener(redraw)

    def unbind_both() -> None:
        unbind()
        actions.changed.remove_listener(redraw)

    return unbind_both


def local_time(value: Any) -> str:
    """Return an ISO time as the user's local date and time (as it is, outside a page)."""
    if not value:
        return ""
    try:
        import js  # noqa: TID251 - the browser knows the user's time zone and locale
    except ImportError:
        return str(value)
    return str(js.Date.new(str(value)).toLocaleString())


def _wire(button: Any, action: Any, run_id: str, confirm: str | None) -> Any:
    """Call ``action(run_id)`` on a click (after ``confirm``); return the JS listener."""

    def click(_event: Any) -> None:
        if confirm and not _confirmed(confirm):
            return
        spawn(_quietly(action, run_id), "the " + action.name + " button")

    proxy = js_callable(click)
    button.addEventListener("click", proxy)
    return proxy


async def _quietly(action: Any, run_id: str) -> None:
    try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
        await action(run_id)
    except Exception:  # noqa: BLE001 - shown by the button (the action keeps it)
        pass


def _confirmed(question: str) -> bool:
    import js  # noqa: TID251 - the page's dialog

    return bool(js.window.confirm(question))


def _show_error(node: Any, error: Any) -> None:
    text = "" if error is None else str(error)
    node.dataset.error = text
    node.title = text
    if node.tagName != "BUTTON":
        node.textContent = text


def _draw_progress(node: Any, progress: Any, status: Any) -> None:
    current = 0 if progress is None else progress.current
    total = None if progress is None else progress.total
    node.dataset.current = str(current)
    if total:
        node.max = total
        node.value = min(current, total)
    elif status in TERMINAL:
        node.max = 1
        node.value = 1 if status == "completed" else 0
    elif status is None:
        node.max = 1
        node.value = 0
    else:
        node.removeAttribute("value")  # running with no total: an indeterminate bar


def progress_text(progress: Any) -> str:
    """Return a progress as a user reads it: its message, else ``current / total``."""
    if progress is None:
        return ""
    if progress.message:
        return str(progress.message)
    if progress.total:
        return str(progress.current) + " / " + str(progress.total)
    return str(progress.current)


def _line_text(line: Any) -> str:
    step = " [" + str(line.step_name) + "]" if line.step_name else ""
    return str(line.level) + step + ": " + str(line.message)
