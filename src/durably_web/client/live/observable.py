"""What every live view shares: a ``changed`` event a page reacts to, and its loading state.

``view.changed`` is a :class:`Changed`: a ``pyscript.Event`` on a PyScript page (so
``@when(view.changed)`` works), with the same interface elsewhere (CPython, MicroPython
under Node). It is triggered with the view after every change of the view's state.
Listeners are called in order; one that raises is reported and does not stop the others.

MicroPython-safe (see :mod:`durably_web.client.values`).
"""

import asyncio

try:
    from collections.abc import Callable
    from typing import Any
except ImportError:  # MicroPython: annotations are never evaluated there
    pass

from durably_web.client.dispatch import call_handler

try:
    from pyscript import Event as _PyScriptEvent
except ImportError:  # not on a PyScript page: a plain base class
    _PyScriptEvent = object

__all__ = ["Changed", "Observable"]


class Changed(_PyScriptEvent):  # type: ignore[misc]  # pyscript: only on pages
    """An event with listeners: ``add_listener(fn)``, ``remove_listener(fn)``, ``trigger(v)``.

    A subclass of ``pyscript.Event`` on PyScript pages, so ``@when(view.changed)`` works.
    """

    def __init__(self) -> None:
        self._listeners: list[Callable[[Any], Any]] = []

    def add_listener(self, listener: Callable[[Any], Any]) -> None:
        """Call ``listener(value)`` (sync or async) at each :meth:`trigger`."""
        if not callable(listener):
            raise ValueError("Listener must be callable.")
        if listener not in self._listeners:
            self._listeners.append(listener)

    def remove_listener(self, *listeners: Callable[[Any], Any]) -> None:
        """Remove these listeners (all of them when none is given)."""
        if not listeners:
            self._listeners = []
        for listener in listeners:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def trigger(self, result: Any) -> None:
        """Call every listener with ``result``; a failing one is reported, the rest still run."""
        for listener in list(self._listeners):
            call_handler(listener, result, "a change listener")


class Observable:
    """Base of the live views: ``changed``, ``loading``, :meth:`loaded` and :meth:`close`."""

    def __init__(self, on_change: Callable[[Any], Any] | None) -> None:
        self.changed = Changed()
        if on_change is not None:
            self.changed.add_listener(on_change)
        self.closed = False
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._unwatch: list[Callable[[], None]] = []

    @property
    def loading(self) -> bool:
        """True while the view reads the stored state it shows."""
        return self._busy > 0

    async def loaded(self) -> None:
        """Return once the view holds the stored state (no read in flight)."""
        while self._busy:
            await self._idle.wait()

    def close(self) -> None:
        """Stop following events; the view keeps its last state."""
        self.closed = True
        for unwatch in self._unwatch:
            unwatch()
        self._unwatch = []

    def _notify(self) -> None:
        if not self.closed:
            self.changed.trigger(self)

    def _begin(self) -> None:
        self._busy += 1
        self._idle.clear()

    def _end(self) -> None:
        self._busy -= 1
        if not self._busy:
            self._idle.set()
