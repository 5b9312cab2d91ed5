"""The event loop a long-running command runs on: asyncio's own, or uvloop when installed.

uvloop (``pip install 'durably-web[uvloop]'``) is optional. It is libuv under asyncio's API:
the engine and psycopg run on it unchanged, and each database call costs the process less
CPU (on PostgreSQL, where every checkpoint is a round trip through the loop, 5-15% of the
worker's CPU per step; ``bench/RESULTS.md``). ``--loop auto``, the default, takes it when
it can be imported and asyncio's loop otherwise; ``--loop asyncio`` never uses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from durably_web.cli.common import UsageError

__all__ = ["LOOP_HELP", "LOOPS", "loop_name", "run"]

T = TypeVar("T")

LOOPS = ("auto", "asyncio", "uvloop")
"""The choices of ``--loop``."""

LOOP_HELP = (
    "the event loop: uvloop (the optional package, pip install 'durably-web[uvloop]'), "
    "asyncio, or auto (default: uvloop when it is installed)"
)
"""The help of every ``--loop`` option."""


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """Return uvloop's loop constructor, or None when uvloop cannot be imported."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """Return the loop constructor for ``choice`` (None: asyncio's default loop).

    Raises:
        UsageError: ``choice`` is not one of :data:`LOOPS`, or is ``uvloop`` without the package.

    """
    if choice not in LOOPS:
        raise UsageError(f"--loop must be one of {', '.join(LOOPS)}, got {choice!r}")
    if choice == "asyncio":
        return None
    factory = _uvloop_factory()
    if factory is None and choice == "uvloop":
        raise UsageError(
            "--loop uvloop needs the uvloop package: pip install 'durably-web[uvloop]' "
            "(or use --loop asyncio)"
        )
    return factory


def loop_name(choice: str) -> str:
    """Return the loop ``choice`` runs on: ``"uvloop"`` or ``"asyncio"`` (``auto`` resolved).

    Raises:
        UsageError: as :func:`run`.

    """
    return "asyncio" if _factory(choice) is None else "uvloop"


def run(main: Coroutine[Any, Any, T], choice: str = "auto") -> T:
    """Run ``main`` to completion on a new loop of kind ``choice``, as ``asyncio.run`` does.

    Raises:
        UsageError: ``choice`` is unknown, or ``uvloop`` when the package is not installed
            (``main`` is then closed without running).

    """
    try:
        factory = _factory(choice)
    except UsageError:
        main.close()
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
