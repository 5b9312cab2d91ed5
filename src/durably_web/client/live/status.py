"""Run statuses as the live views group them, and in the words a page shows a user.

The engine's statuses are ``pending``, ``leased``, ``completed``, ``failed`` and
``cancelled``, plus ``waiting`` (a run sleeping, waiting for a signal or for its next retry,
with ``run.waiting = {kind, name, until}``) on engines that have durable waits. A status this
module does not know is shown as it is and counts as active, so a newer engine's statuses do
not break a page.

MicroPython-safe (see :mod:`durably_web.client.values`).
"""

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any
except ImportError:  # MicroPython: annotations are never evaluated there
    pass

__all__ = ["ACTIVE", "TERMINAL", "WORDS", "is_active", "is_terminal", "status_text"]

TERMINAL = ("completed", "failed", "cancelled")
"""Statuses a run leaves only through ``retry``."""

ACTIVE = ("pending", "leased", "waiting")
"""Statuses of a run that is queued, running or waiting: it can be cancelled."""

WORDS = {
    "pending": "queued",
    "leased": "running",
    "waiting": "waiting",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}
"""A user's word for each status (``leased`` is an engine word: the user sees ``running``)."""

_WAIT_WORDS = {"signal": "waiting for signal", "sleep": "sleeping in", "retry": "retrying"}


def is_terminal(status: str | None) -> bool:
    """Tell whether ``status`` is final (completed, failed or cancelled)."""
    return status in TERMINAL


def is_active(status: str | None) -> bool:
    """Tell whether a run with ``status`` is queued, running or waiting (any unknown status)."""
    return status is not None and status not in TERMINAL


def status_text(status: str | None, error: str | None = None, waiting: Any = None) -> str:
    """Return what a page shows for a run: ``running``, ``failed: <first line of error>``, ...

    Args:
        status: the run's status (None: no run, an empty text).
        error: a failed run's error message.
        waiting: a waiting run's ``{kind, name, until}`` (a Record or a dict).

    """
    if status is None:
        return ""
    word = WORDS.get(status, status)
    if status == "failed" and error:
        return word + ": " + str(error).strip().split("\n")[0]
    if status == "waiting" and waiting is not None:
        kind = waiting.get("kind")
        name = waiting.get("name")
        text = _WAIT_WORDS.get(kind, "waiting") + (" " + repr(str(name)) if name else "")
        return text
    return word
