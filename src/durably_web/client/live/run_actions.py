"""``live.actions(durably)``: run actions with a pending and error state a button binds to.

Upstream's ``useRunActions``: ``retry``, ``retrigger``, ``cancel``, ``delete_run``,
``get_run``, ``get_steps``. Each is an :class:`Action`: await it with a run id
(``await actions.cancel(run_id)``); it returns what the client's method returns and raises
what it raises, and while it runs and after it failed, ``actions.cancel.is_pending(run_id)``
and ``actions.cancel.error_for(run_id)`` say so (for that run; without a run id, for the
last call), so a button can be disabled meanwhile and show why it failed.
``actions.changed`` is triggered at each start and end of a call.

MicroPython-safe (see :mod:`durably_web.client.values`).
"""

try:
    from collections.abc import Callable
    from typing import Any
except ImportError:  # MicroPython: annotations are never evaluated there
    pass

from durably_web.client.live.observable import Observable

__all__ = ["ACTION_NAMES", "Action", "RunActions"]

ACTION_NAMES = ("retry", "retrigger", "cancel", "delete_run", "get_run", "get_steps")
"""The actions, named as the client's methods they call."""


class Action:
    """One run action: ``await action(run_id)``, with its per-run pending and error state.

    Attributes:
        name: the client method it calls (``"cancel"``, ...).
        error: the error of the last call, or None once a call succeeded.

    """

    def __init__(self, owner: "RunActions", name: str) -> None:
        self.name = name
        self.error: Exception | None = None
        self._owner = owner
        self._pending: dict[str, int] = {}
        self._errors: dict[str, Exception] = {}

    async def __call__(self, run_id: str) -> Any:
        """Call the client's method on the run; return its result, or raise its error."""
        self._pending[run_id] = self._pending.get(run_id, 0) + 1
        self._errors.pop(run_id, None)
        self._owner._notify()
        try:
            result = await getattr(self._owner.client, self.name)(run_id)
        except Exception as exc:
            self._errors[run_id] = exc
            self.error = exc
            raise
        else:
            self.error = None
            return result
        finally:
            self._pending[run_id] -= 1
            if not self._pending[run_id]:
                del self._pending[run_id]
            self._owner._notify()

    @property
    def pending(self) -> bool:
        """True while a call (for any run) is in flight."""
        return bool(self._pending)

    def is_pending(self, run_id: str) -> bool:
        """Tell whether a call for ``run_id`` is in flight."""
        return run_id in self._pending

    def error_for(self, run_id: str) -> Exception | None:
        """Return the error of the last call for ``run_id`` (None: it did not fail)."""
        return self._errors.get(run_id)

    def __repr__(self) -> str:
        return f"Action({self.name!r}, pending={sorted(self._pending)})"


class RunActions(Observable):
    """The run actions of a client: ``retry``, ``retrigger``, ``cancel``, ``delete_run``,
    ``get_run``, ``get_steps``, each an :class:`Action`.

    Args:
        client: the page's client (``await connect(...)``).
        on_change: called with the view at each start and end of a call (also: ``changed``).

    """  # noqa: D205 - the summary needs both lines

    def __init__(self, client: Any, on_change: Callable[[Any], Any] | None = None) -> None:
        super().__init__(on_change)
        self.client = client
        self.retry = Action(self, "retry")
        self.retrigger = Action(self, "retrigger")
        self.cancel = Action(self, "cancel")
        self.delete_run = Action(self, "delete_run")
        self.get_run = Action(self, "get_run")
        self.get_steps = Action(self, "get_steps")

    @property
    def pending(self) -> bool:
        """True while any action is in flight."""
        return any(self.action(name).pending for name in ACTION_NAMES)

    def action(self, name: str) -> Action:
        """Return the action called ``name`` (one of :data:`ACTION_NAMES`)."""
        if name not in ACTION_NAMES:
            raise ValueError(f"no run action {name!r}; known: {', '.join(ACTION_NAMES)}")
        found: Action = getattr(self, name)
        return found
