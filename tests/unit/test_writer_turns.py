"""One write in flight per run: ``RunWriter``'s turns (``durably_web.core.writer._Turns``).

A free turn is taken without a coroutine; a write that finds it taken waits, and the turn is
handed to waiters first come, first served. A waiter cancelled before its turn leaves the
queue; one cancelled just after being handed the turn passes it on.
"""

from __future__ import annotations

import asyncio

from durably_web.core.writer import _Turns


async def _write(turns: _Turns, name: str, log: list[str], hold: asyncio.Event) -> None:
    if not turns.take_now():
        await turns.take()
    try:
        log.append(f"{name} in")
        await hold.wait()
        log.append(f"{name} out")
    finally:
        turns.give()


async def test_writes_take_turns_in_arrival_order() -> None:
    turns, hold = _Turns(), asyncio.Event()
    log: list[str] = []
    tasks = [asyncio.create_task(_write(turns, n, log, hold)) for n in "abc"]
    await asyncio.sleep(0)
    assert log == ["a in"] and turns.locked()
    assert not turns.take_now()  # taken: nobody jumps the queue
    hold.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert log == ["a in", "a out", "b in", "b out", "c in", "c out"]
    assert not turns.locked()
    assert turns.take_now()


async def test_a_cancelled_waiter_leaves_the_queue_and_the_turn_goes_on() -> None:
    turns, hold = _Turns(), asyncio.Event()
    log: list[str] = []
    first = asyncio.create_task(_write(turns, "a", log, hold))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(_write(turns, "b", log, hold))
    last = asyncio.create_task(_write(turns, "c", log, hold))
    await asyncio.sleep(0)
    waiting.cancel()  # before its turn
    hold.set()
    await asyncio.wait_for(asyncio.gather(first, last), 5)
    assert waiting.cancelled()
    assert log == ["a in", "a out", "c in", "c out"]
    assert not turns.locked()


async def test_a_waiter_cancelled_once_handed_the_turn_passes_it_on() -> None:
    turns, hold = _Turns(), asyncio.Event()
    log: list[str] = []
    assert turns.take_now()
    handed = asyncio.create_task(_write(turns, "b", log, hold))
    last = asyncio.create_task(_write(turns, "c", log, hold))
    await asyncio.sleep(0)
    turns.give()  # hands the turn to b, which has not run yet
    handed.cancel()  # ... and is cancelled before it does
    hold.set()
    await asyncio.wait_for(last, 5)
    assert handed.cancelled()
    assert log == ["c in", "c out"]
    assert not turns.locked()
