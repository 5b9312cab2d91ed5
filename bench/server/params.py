"""The sizes of one run of the server load benchmark (``bench/server_load.py``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Params:
    """The sizes of one run of the benchmark."""

    concurrency: int
    duration_s: float
    warmup_s: float
    steps: int
    run_subscribers: int
    all_subscribers: int
