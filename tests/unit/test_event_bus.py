"""``EventBus.wants`` (and ``listened``, its call-free form the step path reads) follow
subscriptions as they come and go, ``"*"`` included, and unheard events still count."""

from __future__ import annotations

from typing import Any

from durably_web.clock import SystemClock
from durably_web.events import EVENT_TYPES, EventBus, StepComplete, StepStart


def test_wants_follows_subscriptions_and_the_wildcard() -> None:
    bus = EventBus(SystemClock())
    assert bus.listened == frozenset() and not bus.wants("step:start")
    off_start = bus.on("step:start", lambda _e: None)
    assert bus.wants("step:start") and not bus.wants("step:complete")
    assert bus.listened == {"step:start"}
    off_all = bus.on("*", lambda _e: None)
    assert bus.listened == EVENT_TYPES and bus.wants("step:complete")
    off_all()
    assert bus.listened == {"step:start"}
    off_start()
    assert bus.listened == frozenset() and not bus.wants("step:start")


def test_unheard_events_advance_the_sequence() -> None:
    bus = EventBus(SystemClock())
    bus.skip()
    assert bus.emit(StepStart, **_step()) is None  # nobody listens: not built
    seen: list[Any] = []
    bus.on("step:complete", seen.append)
    bus.emit(StepComplete, **_step(), output=None, duration=0)
    assert [event.sequence for event in seen] == [3]


def _step() -> dict[str, Any]:
    return {"run_id": "r", "job_name": "j", "labels": {}, "step_name": "s", "step_index": 0}
