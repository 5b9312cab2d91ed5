"""What each event stream sends: one run's events, or the trimmed events of matching runs.

``GET /subscribe`` forwards what upstream forwards for one run (plus ``run:retry``), full
events with timestamp and sequence. ``GET /runs/subscribe`` sends every run's events that
its filter matches, trimmed as upstream trims them: ``type``, ``runId``, ``jobName``,
``labels`` and a few fields per type, no timestamp, sequence or output.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from durably_web.events import Event, RunCoalesced
from durably_web.server.auth import SubscribeFilter

__all__ = ["RUN_STREAM", "TRIMMED", "run_events", "trimmed_listener"]

RUN_STREAM = frozenset(
    {
        "run:start",
        "run:complete",
        "run:fail",
        "run:cancel",
        "run:delete",
        "run:retry",
        "run:progress",
        "step:start",
        "step:complete",
        "step:fail",
        "log:write",
    }
)
"""What ``GET /subscribe`` forwards of a run's events (upstream's set, plus ``run:retry``)."""

TRIMMED: dict[str, tuple[str, ...]] = {
    "run:trigger": (),
    "run:coalesced": ("skippedInput", "skippedLabels"),
    "run:leased": (),
    "run:complete": (),
    "run:fail": (),
    "run:cancel": (),
    "run:delete": (),
    "run:retry": (),
    "run:progress": ("progress",),
    "step:start": ("stepName", "stepIndex"),
    "step:complete": ("stepName", "stepIndex"),
    "step:fail": ("stepName", "stepIndex", "error"),
    "step:cancel": ("stepName", "stepIndex"),
    "log:write": ("stepName", "level", "message", "data"),
}
"""The fields ``GET /runs/subscribe`` sends of each event type, beyond the common four."""


async def run_events(events: AsyncGenerator[Event, None]) -> AsyncIterator[dict[str, Any]]:
    """Turn ``durably.subscribe(run_id)`` into the wire events ``GET /subscribe`` sends."""
    try:
        async for event in events:
            if event.type in RUN_STREAM:
                yield event.to_wire()
    finally:
        await events.aclose()


def trimmed_listener(
    query: SubscribeFilter, push: Callable[[dict[str, Any]], None], *, guarded: bool
) -> Callable[[Event], None]:
    """Return an event-bus listener that pushes the trimmed events ``query`` matches.

    Args:
        query: the (scoped) job-name and label filter.
        push: where the trimmed wire events go (an :class:`~.sse.EventStream`'s ``push``).
        guarded: under auth, a ``run:coalesced`` event whose skipped trigger carried labels
            outside the filter is not sent: its ``skippedInput`` and ``skippedLabels`` belong
            to whoever sent that trigger, not to the owner of the run it landed on.

    """
    jobs = set(query.job_name)
    labels = dict(query.labels)

    def matches(candidate: dict[str, str]) -> bool:
        return all(candidate.get(key) == value for key, value in labels.items())

    def listen(event: Event) -> None:
        if event.run_id is None or (jobs and event.job_name not in jobs):
            return
        if not matches(event.labels):
            return
        if guarded and isinstance(event, RunCoalesced) and not matches(event.skipped_labels):
            return
        wire = event.to_wire()
        fields = TRIMMED.get(wire["type"])
        if fields is None:
            return
        out = {"type": wire["type"], "runId": wire["runId"], "jobName": wire["jobName"]}
        out.update({name: wire[name] for name in fields if name in wire})
        out["labels"] = wire["labels"]
        push(out)

    return listen
