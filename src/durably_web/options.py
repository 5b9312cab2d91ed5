"""Options of :func:`~durably_web.create_durably`, validated once with clear errors."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import pydantic

from durably_web.errors import ValidationError

__all__ = ["Options", "parse_duration"]

_DURATION = re.compile(r"([0-9]+)(d|h|m)")  # fullmatch: `$` would allow a final "\n"
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60}


def parse_duration(text: str, what: str = "retain_runs") -> float:
    """Parse ``"7d"``, ``"12h"`` or ``"30m"`` (upstream's format) into seconds.

    Raises:
        ValidationError: the text is not ``<digits><d|h|m>`` or is zero.

    """
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValidationError(f"{what} must be a duration like '30d', '24h' or '60m', got {text!r}")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValidationError(f"{what} must be longer than zero, got {text!r}")
    return float(seconds)


def _seconds(value: Any, name: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"{name} must be a finite number of seconds, got {value!r}")
    if value <= minimum:
        raise ValidationError(f"{name} must be greater than {minimum:g} seconds, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Options:
    """The engine's settings, in seconds.

    Attributes:
        polling_interval: how often an idle worker looks for work written by another process.
        lease_renew_interval: how often a running run's lease is extended.
        lease_duration: how long a lease lasts without renewal before others may reclaim it.
        max_concurrent_runs: runs this instance executes at once (1-1000).
        preserve_steps: keep step and log rows after a run completes.
        persist_logs: write ``step.log`` lines to the database (they are always emitted).
        retain_runs: seconds terminal runs are kept before the worker purges them, or None.
        labels: a pydantic adapter validating trigger labels, or None.

    """

    polling_interval: float = 1.0
    lease_renew_interval: float = 5.0
    lease_duration: float = 30.0
    max_concurrent_runs: int = 1
    preserve_steps: bool = False
    persist_logs: bool = True
    retain_runs: float | None = None
    labels: pydantic.TypeAdapter[Any] | None = None

    @classmethod
    def build(
        cls,
        *,
        polling_interval: float = 1.0,
        lease_renew_interval: float | None = None,
        lease_duration: float | None = None,
        heartbeat_interval: float | None = None,
        stale_threshold: float | None = None,
        max_concurrent_runs: int = 1,
        preserve_steps: bool = False,
        persist_logs: bool = True,
        retain_runs: str | None = None,
        labels: Any = None,
    ) -> Options:
        """Validate every option and resolve the seed's aliases.

        Raises:
            ValidationError: naming the first invalid option and its value.

        """
        if lease_renew_interval is not None and heartbeat_interval is not None:
            raise ValidationError(
                "give lease_renew_interval or its alias heartbeat_interval, not both"
            )
        if lease_duration is not None and stale_threshold is not None:
            raise ValidationError("give lease_duration or its alias stale_threshold, not both")
        renew = lease_renew_interval if lease_renew_interval is not None else heartbeat_interval
        duration = lease_duration if lease_duration is not None else stale_threshold
        duration = 30.0 if duration is None else _seconds(duration, "lease_duration")
        # Unset, the renewal interval follows a short lease: three renewals per lease.
        renew = min(5.0, duration / 3) if renew is None else _seconds(renew, "lease_renew_interval")
        if renew >= duration:
            raise ValidationError(
                f"lease_renew_interval ({renew:g}s) must be shorter than lease_duration "
                f"({duration:g}s), or leases expire between renewals"
            )
        if (
            isinstance(max_concurrent_runs, bool)
            or not isinstance(max_concurrent_runs, int)
            or not 1 <= max_concurrent_runs <= 1000
        ):
            raise ValidationError(
                f"max_concurrent_runs must be an integer between 1 and 1000, "
                f"got {max_concurrent_runs!r}"
            )
        for name, flag in (("preserve_steps", preserve_steps), ("persist_logs", persist_logs)):
            if not isinstance(flag, bool):
                raise ValidationError(f"{name} must be True or False, got {flag!r}")
        adapter = None
        if labels is not None:
            try:
                adapter = pydantic.TypeAdapter(labels)
            except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError) as exc:
                raise ValidationError(f"labels must be a pydantic model or type: {exc}") from None
        return cls(
            polling_interval=_seconds(polling_interval, "polling_interval"),
            lease_renew_interval=renew,
            lease_duration=duration,
            max_concurrent_runs=max_concurrent_runs,
            preserve_steps=preserve_steps,
            persist_logs=persist_logs,
            retain_runs=None if retain_runs is None else parse_duration(retain_runs),
            labels=adapter,
        )
