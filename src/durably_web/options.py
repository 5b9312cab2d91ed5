"""Options of :func:`~durably_web.create_durably`, validated once with clear errors.

Every duration has a bound as well as a floor: a value the engine cannot turn into a stored
timestamp (``lease_duration=1e12`` would be the year 33715, which no reader parses) or an
event-loop timer is refused here, before anything is written. :func:`check_seconds` is the
one check every duration option, argument and command-line flag goes through.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from durably_web.errors import ValidationError
from durably_web.json_value import shown

if TYPE_CHECKING:
    import pydantic

__all__ = [
    "DEFAULT_UNKNOWN_JOB_GRACE",
    "MAX_BUSY_TIMEOUT",
    "MAX_DELAY",
    "MAX_INTERVAL",
    "MAX_LEASE_DURATION",
    "MAX_RETENTION",
    "MAX_WAIT",
    "CheckpointMode",
    "CheckpointPolicy",
    "Options",
    "check_int",
    "check_seconds",
    "parse_duration",
]

_DAY = 86400.0
MAX_INTERVAL = _DAY
"""Longest ``polling_interval`` and ``lease_renew_interval``: one day."""
MAX_LEASE_DURATION = 7 * _DAY
"""Longest ``lease_duration``: a week, far beyond any step that should block a worker."""
MAX_WAIT = 365 * _DAY
"""Longest timeout (``wait_for_run``, ``stop``) and ``unknown_job_grace``: a year."""
MAX_RETENTION = 36500 * _DAY
"""Longest ``retain_runs`` / ``purge_runs(older_than=...)``: a hundred years."""
MAX_DELAY = 36500 * _DAY
"""Longest wait a run can be given: a sleep, a signal timeout, a retry backoff, a trigger's
``delay`` (a hundred years; a stored time must stay before the year 9999)."""
MAX_BUSY_TIMEOUT = 3600.0
"""Longest SQLite ``busy_timeout``: an hour (a lock wait blocks the connection's thread)."""
DEFAULT_UNKNOWN_JOB_GRACE = 300.0
"""Seconds a run of a job no worker registers waits before it fails with ``Unknown job``."""

CheckpointMode = Literal["each", "batched"]
"""``"each"``: every step is committed before ``step.run`` returns (the default).
``"batched"``: checkpoints are grouped into one transaction (see :class:`CheckpointPolicy`)."""
MAX_CHECKPOINT_DELAY = 60.0
"""Longest ``checkpoint_max_delay``: a minute of completed steps at risk is already a lot."""
MAX_CHECKPOINT_STEPS = 100_000
"""Most ``checkpoint_max_steps``."""


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """When completed steps are committed.

    Attributes:
        mode: ``"each"`` commits every checkpoint before ``step.run`` returns; ``"batched"``
            keeps completed steps and commits them in one transaction, at the latest when
            ``max_steps`` are kept or the oldest kept one is ``max_delay`` seconds old, and
            always before the run's outcome, a lease renewal or progress reaching the
            database. A crash loses at most the kept group: those steps run again.
        max_delay: seconds a completed step may stay uncommitted in the batched mode.
        max_steps: most completed steps kept uncommitted in the batched mode.

    """

    mode: CheckpointMode = "each"
    max_delay: float = 0.01
    max_steps: int = 100

    @classmethod
    def build(
        cls, mode: Any = "each", max_delay: Any = 0.01, max_steps: Any = 100
    ) -> CheckpointPolicy:
        """Validate the three ``checkpoint`` options.

        Raises:
            ValidationError: naming the first invalid option and its value.

        """
        if mode not in ("each", "batched") or not isinstance(mode, str):
            raise ValidationError(f"checkpoint must be 'each' or 'batched', got {shown(mode)}")
        delay = check_seconds(max_delay, "checkpoint_max_delay", maximum=MAX_CHECKPOINT_DELAY)
        steps = check_int(max_steps, "checkpoint_max_steps", maximum=MAX_CHECKPOINT_STEPS)
        return cls("batched" if mode == "batched" else "each", delay, steps)

    @property
    def batched(self) -> bool:
        """True in the batched mode."""
        return self.mode == "batched"


_DURATION = re.compile(r"([0-9]+)(d|h|m)")  # fullmatch: `$` would allow a final "\n"
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60}


def check_seconds(
    value: Any,
    name: str,
    *,
    maximum: float,
    allow_zero: bool = False,
) -> float:
    """Return ``value`` as float seconds, or raise naming ``name`` and the allowed range.

    Args:
        value: the number to check (``bool`` and non-numbers are refused).
        name: the option or argument, for the message.
        maximum: the largest value allowed (inclusive).
        allow_zero: accept 0 (otherwise the value must be greater than 0).

    Raises:
        ValidationError: not a finite number, negative (or zero), or above ``maximum``.

    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"{name} must be a finite number of seconds, got {shown(value)}")
    low = "at least 0" if allow_zero else "greater than 0"
    if value < 0 or (value == 0 and not allow_zero) or value > maximum:
        raise ValidationError(
            f"{name} must be {low} and at most {_number(maximum)} seconds "
            f"({_human(maximum)}), got {shown(value)}"
        )
    return float(value)


def check_int(value: Any, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """Return ``value``, an integer from ``minimum`` to ``maximum``, or raise naming ``name``.

    Raises:
        ValidationError: not an integer (``bool`` is refused), below ``minimum`` or above
            ``maximum`` (no upper bound when ``maximum`` is ``None``).

    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f" and at most {maximum}" if maximum is not None else ""
        raise ValidationError(
            f"{name} must be an integer of at least {minimum}{bound}, got {shown(value)}"
        )
    return value


def parse_duration(
    text: str, what: str = "retain_runs", *, maximum: float = MAX_RETENTION
) -> float:
    """Parse ``"7d"``, ``"12h"`` or ``"30m"`` (upstream's format) into seconds.

    Raises:
        ValidationError: the text is not ``<digits><d|h|m>``, is zero, or is longer than
            ``maximum`` seconds (a hundred years by default).

    """
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValidationError(
            f"{what} must be a duration like '30d', '24h' or '60m', got {shown(text)}"
        )
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValidationError(f"{what} must be longer than zero, got {shown(text)}")
    if seconds > maximum:
        raise ValidationError(f"{what} must be at most {_human(maximum)}, got {shown(text)}")
    return float(seconds)


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def _human(seconds: float) -> str:
    """``604800`` → ``"7 days"``: the bounds in the messages, readable."""
    for unit, size in (("day", _DAY), ("hour", 3600.0), ("minute", 60.0)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds:g} seconds"


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
        unknown_job_grace: seconds a run of a job this worker does not register may wait
            before the worker fails it with ``Unknown job: <name>``; None: this worker leaves
            runs of other jobs alone (it serves only some jobs of a shared database).
        labels: a pydantic adapter validating trigger labels, or None.
        checkpoint: when completed steps are committed, for jobs that do not choose.

    """

    polling_interval: float = 1.0
    lease_renew_interval: float = 5.0
    lease_duration: float = 30.0
    max_concurrent_runs: int = 1
    preserve_steps: bool = False
    persist_logs: bool = True
    retain_runs: float | None = None
    unknown_job_grace: float | None = DEFAULT_UNKNOWN_JOB_GRACE
    labels: pydantic.TypeAdapter[Any] | None = None
    checkpoint: CheckpointPolicy = CheckpointPolicy()

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
        unknown_job_grace: float | None = DEFAULT_UNKNOWN_JOB_GRACE,
        labels: Any = None,
        checkpoint: Any = "each",
        checkpoint_max_delay: Any = 0.01,
        checkpoint_max_steps: Any = 100,
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
        duration = (
            30.0
            if duration is None
            else check_seconds(duration, "lease_duration", maximum=MAX_LEASE_DURATION)
        )
        # Unset, the renewal interval follows a short lease: three renewals per lease.
        renew = (
            min(5.0, duration / 3)
            if renew is None
            else check_seconds(renew, "lease_renew_interval", maximum=MAX_INTERVAL)
        )
        if renew >= duration:
            raise ValidationError(
                f"lease_renew_interval ({renew:g}s) must be shorter than lease_duration "
                f"({duration:g}s), or leases expire between renewals"
            )
        check_int(max_concurrent_runs, "max_concurrent_runs", maximum=1000)
        for name, flag in (("preserve_steps", preserve_steps), ("persist_logs", persist_logs)):
            if not isinstance(flag, bool):
                raise ValidationError(f"{name} must be True or False, got {shown(flag)}")
        adapter = None
        if labels is not None:
            import pydantic  # only for labels: a browser engine starts without it

            try:
                adapter = pydantic.TypeAdapter(labels)
            except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError) as exc:
                raise ValidationError(f"labels must be a pydantic model or type: {exc}") from None
        return cls(
            polling_interval=check_seconds(
                polling_interval, "polling_interval", maximum=MAX_INTERVAL
            ),
            lease_renew_interval=renew,
            lease_duration=duration,
            max_concurrent_runs=max_concurrent_runs,
            preserve_steps=preserve_steps,
            persist_logs=persist_logs,
            retain_runs=None if retain_runs is None else parse_duration(retain_runs),
            unknown_job_grace=(
                None
                if unknown_job_grace is None
                else check_seconds(
                    unknown_job_grace, "unknown_job_grace", maximum=MAX_WAIT, allow_zero=True
                )
            ),
            labels=adapter,
            checkpoint=CheckpointPolicy.build(
                checkpoint, checkpoint_max_delay, checkpoint_max_steps
            ),
        )
