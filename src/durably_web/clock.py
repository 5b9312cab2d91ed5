"""Time for the engine: wall-clock timestamps and sleeps, behind a protocol.

All time in the engine flows through a :class:`Clock`, so tests swap in
:class:`durably_web.testing.FakeClock` and advance time instead of sleeping. Timestamps are
stored as fixed-width ISO-8601 UTC text with milliseconds (``2026-01-02T03:04:05.678Z``, the
form JavaScript's ``toISOString`` gives), so they compare correctly as strings in SQL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from durably_web.errors import ValidationError

__all__ = ["Clock", "SystemClock", "format_timestamp", "now_of", "parse_timestamp"]

_EARLIEST = -30_610_224_000.0
"""1000-01-01T00:00:00Z: from here on years have the four digits the fixed width needs."""
_LATEST = 253_402_300_799.999
"""9999-12-31T23:59:59.999Z: the last time ``datetime`` (and every reader) can parse."""


class Clock(Protocol):
    """A source of time the engine can be driven by."""

    def now(self) -> float:
        """Return the current time as seconds since the Unix epoch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds``."""
        ...


class SystemClock:
    """The real clock: ``time.time()`` and ``asyncio.sleep``."""

    def now(self) -> float:
        """Return ``time.time()``."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep with ``asyncio.sleep``."""
        await asyncio.sleep(seconds)


def now_of(clock: Clock) -> Callable[[], float]:
    """Return ``clock.now``, or ``time.time`` itself for the system clock (a call less per read).

    For the per-step path, which reads the clock twice per step.
    """
    return time.time if type(clock) is SystemClock else clock.now


_last_second = -1
_last_prefix = ""
_last_millis = -1
_last_text = ""


def format_timestamp(epoch_seconds: float) -> str:
    """Format epoch seconds as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC, millisecond precision).

    Raises:
        ValidationError: the time is not between the years 1000 and 9999 (or not finite):
            it would not sort or parse back. Options are bounded so the engine never gets here.

    """
    global _last_second, _last_prefix, _last_millis, _last_text
    if not _EARLIEST <= epoch_seconds <= _LATEST:  # also refuses NaN
        raise ValidationError(
            f"time {epoch_seconds!r} (epoch seconds) is outside the years 1000-9999"
        )
    millis = round(epoch_seconds * 1000)
    if millis == _last_millis:  # a checkpoint formats the same millisecond several times
        return _last_text
    seconds, ms = divmod(millis, 1000)
    if seconds != _last_second:
        _last_prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds))
        _last_second = seconds
    _last_millis = millis
    _last_text = f"{_last_prefix}{ms:03d}Z"
    return _last_text


def parse_timestamp(text: str) -> float:
    """Parse a timestamp written by :func:`format_timestamp` (or any ISO-8601 UTC text)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()
