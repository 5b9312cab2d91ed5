"""Monotonic ULIDs for run, step and log ids (the same scheme upstream Durably uses).

A ULID is 26 Crockford base32 characters: a 48-bit millisecond timestamp, then 80 random bits.
Within one millisecond the random part is incremented, so ids made by one process sort in the
order they were made: ``ORDER BY id`` is creation order, which breaks ``created_at`` ties.
"""

from __future__ import annotations

import os
import time

__all__ = ["new_ulid", "ulid_time"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two characters per 10 bits: a ULID encodes in 13 lookups (this runs once per step, and in
# Pyodide generic base32 encoding was a visible share of a checkpoint's cost).
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_RANDOM_MAX = (1 << 80) - 1
_last_ms = -1
_last_random = 0
_last_prefix = ""
"""The id's first 24 characters: the time, then the random part but its last 10 bits."""


def _encode(value: int, pairs: int) -> str:
    table = _PAIRS
    return "".join(table[(value >> (10 * i)) & 1023] for i in range(pairs - 1, -1, -1))


def new_ulid(now: float | None = None) -> str:
    """Return a new ULID; ``now`` (epoch seconds) sets its timestamp part (default: now)."""
    global _last_ms, _last_random, _last_prefix
    ms = int((time.time() if now is None else now) * 1000)
    if ms <= _last_ms and _last_random < _RANDOM_MAX:
        _last_random += 1
        if _last_random & 1023:  # only the last two characters changed
            return _last_prefix + _PAIRS[_last_random & 1023]
    else:
        _last_ms = ms
        _last_random = int.from_bytes(os.urandom(10), "big")
    # 48 bits of time in 10 characters (2 bits spare), then 70 of the 80 random bits.
    _last_prefix = _encode(_last_ms, 5) + _encode(_last_random >> 10, 7)
    return _last_prefix + _PAIRS[_last_random & 1023]


_VALUES = {char: value for value, char in enumerate(_ALPHABET)}


def ulid_time(text: str) -> float | None:
    """Return the epoch seconds a ULID was made at, or None if ``text`` is not a ULID."""
    if not isinstance(text, str) or len(text) != 26:
        return None
    ms = 0
    for char in text[:10].upper():
        value = _VALUES.get(char)
        if value is None:
            return None
        ms = ms * 32 + value
    return ms / 1000
