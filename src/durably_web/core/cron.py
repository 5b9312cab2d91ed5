"""Cron arithmetic for schedules, on `cronsim <https://pypi.org/project/cronsim/>`_.

cronsim is pure Python with no dependencies (one small wheel, so it installs in Pyodide as it
does on CPython), maintained by the Healthchecks.io author who runs it on millions of checks,
and evaluates expressions as Debian's cron does, time zones and daylight saving time
included: a tick in the hour skipped in spring runs at the end of the gap (``30 2 * * *`` on
the spring-forward day in Berlin fires at 03:00), a fixed-time tick in the hour repeated in
autumn fires once (the first 02:30), while ``*`` in the hour field fires in both repeats.
croniter, the other common choice, needs python-dateutil and had a period without a
maintainer; cronsim's DST rules are also the ones users of cron already know.

Times are epoch seconds in and out; ``timezone`` is an IANA name (``Europe/Berlin``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from durably_web.errors import ValidationError
from durably_web.json_value import shown

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

# zoneinfo and cronsim are imported by the functions that use them: an engine without
# schedules never needs them, and in the browser they cost ~25 ms of every cold start
# (bench/BOOT-NOTES.md).

__all__ = ["check_cron", "check_timezone", "ticks_after"]


def check_timezone(name: object) -> ZoneInfo:
    """Return the IANA time zone ``name``.

    Raises:
        ValidationError: not a string, or no such zone (names the value).

    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(name, str) or not name:
        raise ValidationError(f"timezone must be an IANA time zone name, got {shown(name)}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"unknown timezone {name!r}: use an IANA name such as 'UTC' or 'Europe/Berlin'"
        ) from None


def check_cron(expression: object, timezone: str) -> str:
    """Return a cron expression once it parses and has a next tick.

    Raises:
        ValidationError: not a string, not 5 fields, a value out of range or a date that
            never exists (``0 0 30 2 *``), with cronsim's message.

    """
    from cronsim import CronSim, CronSimError

    if not isinstance(expression, str):
        raise ValidationError(f"cron must be a string like '0 3 * * *', got {shown(expression)}")
    zone = check_timezone(timezone)
    try:
        CronSim(expression, datetime(2000, 1, 1, tzinfo=zone))
    except CronSimError as exc:
        raise ValidationError(f"cron {expression!r} is not valid: {exc}") from None
    return expression


def ticks_after(expression: str, timezone: str, after: float) -> Iterator[float]:
    """Yield the ticks of ``expression`` in ``timezone`` strictly after ``after``, in order."""
    from zoneinfo import ZoneInfo

    from cronsim import CronSim

    zone = ZoneInfo(timezone)
    start = datetime.fromtimestamp(after, zone)
    for when in CronSim(expression, start):
        yield when.timestamp()
