"""Monotonic ULIDs for run, step and log ids (the same scheme upstream Durably uses).

A ULID is 26 Crockford base32 characters: a 48-bit millisecond timestamp, then 80 random bits.
Within one millisecond the random part is incremented, so ids made by one process sort in the
order they were made: ``ORDER BY id`` is creation order, which breaks ``created_at`` ties.
"""

from __future__ import annotations

import base64
import os
import time

__all__ = ["new_ulid"]

_CROCKFORD = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)
_RANDOM_MAX = (1 << 80) - 1
_last_ms = -1
_last_random = 0
_last_time_part = b""


def new_ulid(now: float | None = None) -> str:
    """Return a new ULID; ``now`` (epoch seconds) sets its timestamp part (default: now)."""
    global _last_ms, _last_random, _last_time_part
    ms = int((time.time() if now is None else now) * 1000)
    if ms <= _last_ms and _last_random < _RANDOM_MAX:
        _last_random += 1
    else:
        _last_ms = ms
        _last_random = int.from_bytes(os.urandom(10), "big")
        # 48 bits of time as 10 base32 characters: pad to 50 bits, encode 7 bytes (56 bits)
        # and keep the first 10 characters (the last one holds only padding).
        _last_time_part = base64.b32encode((ms << 6).to_bytes(7, "big"))[:10]
    random_part = base64.b32encode(_last_random.to_bytes(10, "big"))
    return (_last_time_part + random_part).translate(_CROCKFORD).decode("ascii")
