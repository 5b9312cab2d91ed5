"""The engine events the live views of one client need, each type listened for once.

Every view of a page watches a few event types; the hub registers one ``client.on()``
handler per type, the first time a view wants it, and removes it when the last view stops
watching it (so a worker forwards only what some view needs). In server mode all of them
share the client's one event stream. An event type the engine does not know (``run:wait``
on an engine without durable waits) is skipped: the views work without it.

MicroPython-safe (see :mod:`durably_web.client.values`).
"""

try:
    from collections.abc import Callable
    from typing import Any
except ImportError:  # MicroPython: annotations are never evaluated there
    pass

from durably_web.client.dispatch import report
from durably_web.errors import ValidationError

__all__ = ["Hub", "hub_for"]


class Hub:
    """Routes a client's events to the views that watch their type."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.unsupported: set[str] = set()
        """Event types (and ``status:<name>`` run statuses) this engine refused as unknown."""
        self._watchers: dict[str, list[Callable[[Any], None]]] = {}
        self._off: dict[str, Callable[[], None]] = {}

    def watch(self, types: Any, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for each event of these types; return the unwatch function.

        ``callback`` runs synchronously, in event order: it updates a view's state and spawns
        any read it needs.
        """
        watched = []
        for event_type in types:
            if event_type in self.unsupported:
                continue
            if event_type not in self._off:
                try:
                    self._off[event_type] = self.client.on(event_type, self._deliver)
                except ValidationError:  # an engine without this event type
                    self.unsupported.add(event_type)
                    continue
            self._watchers.setdefault(event_type, []).append(callback)
            watched.append(event_type)

        def unwatch() -> None:
            for event_type in watched:
                callbacks = self._watchers.get(event_type, [])
                if callback in callbacks:
                    callbacks.remove(callback)
                if not callbacks and event_type in self._off:
                    self._off.pop(event_type)()
                    self._watchers.pop(event_type, None)
            watched.clear()

        return unwatch

    def _deliver(self, event: Any) -> None:
        for callback in list(self._watchers.get(event.type, ())):
            try:
                callback(event)
            except Exception as exc:  # noqa: BLE001 - one view's bug must not stop the others
                report("a live view's " + str(event.type) + " handler", exc)


def hub_for(client: Any) -> Hub:
    """Return the client's hub (one per client, made on first use)."""
    hub = getattr(client, "_live_hub", None)
    if hub is None:
        hub = Hub(client)
        client._live_hub = hub
    return hub
