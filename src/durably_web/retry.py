"""``Retry``: how often a failing step is run again, and how long to wait in between.

A step that raises is run again after a backoff, up to ``attempts`` executions in all. The
backoff after attempt *n* is ``min(max, initial * factor ** (n - 1))`` seconds; with ``jitter``
each delay is drawn uniformly from its upper half (``[d/2, d]``, "equal jitter"), so the delays
still grow while workers that failed together do not all come back at once.

``Retry`` is a plain value: a job's ``retry=`` is the default of its steps, a step's own
``retry=`` wins (an ``int`` is a number of attempts with the default backoff). The engine
records each failed attempt, with the time of the next one, in the step's rows, so a crash
or a restart during a backoff neither restarts the count nor the wait.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from durably_web.errors import ValidationError
from durably_web.json_value import shown
from durably_web.options import MAX_DELAY, check_int, check_seconds

__all__ = ["MAX_ATTEMPTS", "Retry", "retry_policy"]

MAX_ATTEMPTS = 1000
"""The most executions one step may have (``Retry(attempts=...)``)."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Exponential backoff between the attempts of one step (see the module docstring).

    Args:
        attempts: executions in all, the first included (1 means no retry; at most 1000).
        initial: seconds before the second attempt (at least 0).
        factor: each backoff is this many times the one before (at least 1).
        max: no backoff is longer than this many seconds (at most 100 years).
        jitter: draw each delay from ``[d/2, d]`` instead of waiting exactly ``d``.

    Raises:
        ValidationError: a value out of range or of the wrong type, naming it.

    """

    attempts: int
    initial: float = 1.0
    factor: float = 2.0
    max: float = 300.0
    jitter: bool = True

    def __post_init__(self) -> None:
        check_int(self.attempts, "Retry attempts", maximum=MAX_ATTEMPTS)
        initial = check_seconds(self.initial, "Retry initial", maximum=MAX_DELAY, allow_zero=True)
        longest = check_seconds(self.max, "Retry max", maximum=MAX_DELAY, allow_zero=True)
        factor = self.factor
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor < 1:
            raise ValidationError(
                f"Retry factor must be a number of at least 1, got {shown(factor)}"
            )
        if factor > 1000:
            raise ValidationError(f"Retry factor must be at most 1000, got {shown(factor)}")
        if not isinstance(self.jitter, bool):
            raise ValidationError(f"Retry jitter must be True or False, got {shown(self.jitter)}")
        object.__setattr__(self, "initial", initial)
        object.__setattr__(self, "max", longest)
        object.__setattr__(self, "factor", float(factor))

    def backoff(self, attempt: int) -> float:
        """Return the backoff after failed attempt ``attempt`` (1-based), before jitter."""
        exponent = min(attempt - 1, 4096)  # 1000 ** 4096 would overflow; max caps it anyway
        try:
            delay = self.initial * self.factor**exponent
        except OverflowError:
            return self.max
        return min(self.max, delay)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Return the seconds to wait after failed attempt ``attempt``, jitter applied."""
        delay = self.backoff(attempt)
        if not self.jitter or delay == 0:
            return delay
        return (rng or _RANDOM).uniform(delay / 2, delay)


_RANDOM = random.Random()


def retry_policy(value: Any, what: str) -> Retry | None:
    """Return the :class:`Retry` a ``retry=`` argument stands for (``None``: not given).

    Args:
        value: ``None``, an ``int`` (attempts, default backoff) or a :class:`Retry`.
        what: names the argument in the error (``"retry of step 'fetch'"``).

    Raises:
        ValidationError: anything else, or an int out of range.

    """
    if value is None or isinstance(value, Retry):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_ATTEMPTS:
            raise ValidationError(
                f"{what} must be between 1 and {MAX_ATTEMPTS} attempts, got {shown(value)}"
            )
        return Retry(attempts=value)
    raise ValidationError(
        f"{what} must be None, a number of attempts or a Retry(...), got {shown(value)}"
    )
