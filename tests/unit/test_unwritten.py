"""What a running run has not written yet (``durably_web.core.unwritten``).

The Store takes plain values; the execution forgets what a write carried only once that write
committed, and keeps whatever changed meanwhile.
"""

from __future__ import annotations

from durably_web.core.unwritten import Unwritten
from durably_web.storage.records import RunDelta


def line(n: int) -> tuple[str, str, None, str, str, None, str]:
    return (f"L{n}", "run", None, "info", f"line {n}", None, "2026-01-01T00:00:00.000Z")


def test_a_delta_is_a_snapshot_and_forgetting_needs_a_committed_write() -> None:
    unwritten = Unwritten()
    unwritten.set_progress('{"current":1}')
    unwritten.set_counters(2, 2)
    unwritten.add_log(line(1))
    delta = unwritten.delta()
    assert delta == RunDelta('{"current":1}', 2, 2, (line(1),))
    # A write that failed: nothing is forgotten, the next delta carries the same and more.
    unwritten.add_log(line(2))
    assert unwritten.delta() == RunDelta('{"current":1}', 2, 2, (line(1), line(2)))
    # The write of the first delta committed: only what it carried is forgotten.
    unwritten.written(delta)
    assert unwritten.delta() == RunDelta(logs=(line(2),))
    unwritten.written(unwritten.delta())
    assert not unwritten


def test_what_changed_after_the_delta_stays() -> None:
    unwritten = Unwritten()
    unwritten.set_progress('{"current":1}')
    unwritten.set_counters(1, 1)
    delta = unwritten.delta()
    unwritten.set_progress('{"current":2}')
    unwritten.set_counters(2, 2)
    unwritten.written(delta)
    assert unwritten.delta() == RunDelta('{"current":2}', 2, 2)


def test_a_logs_only_write_leaves_progress_and_counters() -> None:
    unwritten = Unwritten()
    unwritten.set_progress('{"current":1}')
    unwritten.set_counters(3, 3)
    unwritten.add_log(line(1))
    checkpoint = unwritten.delta(logs_only=True)
    assert checkpoint == RunDelta(logs=(line(1),))
    unwritten.written(checkpoint)
    assert unwritten.delta() == RunDelta('{"current":1}', 3, 3)
