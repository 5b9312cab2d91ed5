"""The event loop of long-running commands: uvloop when installed, asyncio's own otherwise."""

from __future__ import annotations

import asyncio
import inspect
import sys

import pytest

from durably_web.cli import eventloop
from durably_web.cli.common import UsageError


async def _loop_module() -> str:
    await asyncio.sleep(0.001)  # a timer and a wake-up: the loop really ran
    return type(asyncio.get_running_loop()).__module__


def test_auto_runs_on_uvloop_when_it_is_installed() -> None:
    assert eventloop.loop_name("auto") == "uvloop"  # the dev environment installs it
    assert eventloop.run(_loop_module()).startswith("uvloop")
    assert eventloop.run(_loop_module(), "uvloop").startswith("uvloop")


def test_asyncio_is_asyncios_own_loop() -> None:
    assert eventloop.loop_name("asyncio") == "asyncio"
    assert eventloop.run(_loop_module(), "asyncio").startswith("asyncio")


def test_without_uvloop_auto_falls_back_and_uvloop_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if not installed: import fails
    assert eventloop.loop_name("auto") == "asyncio"
    assert eventloop.run(_loop_module()).startswith("asyncio")
    main = _loop_module()
    with pytest.raises(UsageError, match=r"pip install 'durably-web\[uvloop\]'"):
        eventloop.run(main, "uvloop")
    assert inspect.getcoroutinestate(main) == inspect.CORO_CLOSED  # no "never awaited" warning


def test_an_unknown_loop_is_named() -> None:
    with pytest.raises(
        UsageError, match="--loop must be one of auto, asyncio, uvloop, got 'tokio'"
    ):
        eventloop.loop_name("tokio")
