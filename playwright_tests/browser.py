"""Headless Chromium for the browser tests and the benchmarks: how it is launched, what it fetched.

The one place for Debian's Chromium (``/usr/bin/chromium``), its launch arguments, and the
rule every browser test and benchmark holds a run to: every request stays on 127.0.0.1.
Used by ``playwright_tests`` and by ``bench/browser_engine.py`` and
``bench/systems/chromium.py`` (scripts that put the repository root on ``sys.path``).
Stdlib-only: Playwright's (sync or async) ``chromium`` is passed in.

    context = playwright.chromium.launch_persistent_context(str(profile), **launch_options())
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "Meter", "foreign", "is_local", "launch_options"]

#: Debian's Chromium (``apt-get install -y chromium``).
CHROMIUM = Path("/usr/bin/chromium")
#: No sandbox (containers), no GPU, no QUIC, and none of Chromium's own background traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch_options(executable: str | Path = CHROMIUM) -> dict[str, Any]:
    """Keyword arguments of ``chromium.launch_persistent_context``: headless, our arguments."""
    return {"executable_path": str(executable), "args": CHROMIUM_ARGS, "headless": True}


def is_local(url: str, origins: tuple[str, ...] | None = None) -> bool:
    """Tell whether a request stayed on this machine.

    ``data:`` and ``blob:`` URLs never leave the page. Any other URL must start with one of
    ``origins`` when they are given, else be http(s) or ws(s) to host 127.0.0.1.
    """
    if url.startswith(("data:", "blob:")):
        return True
    if origins is not None:
        return url.startswith(origins)
    parts = urlsplit(url)
    return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname == "127.0.0.1"


def foreign(urls: Iterable[str], origins: tuple[str, ...] | None = None) -> list[str]:
    """The URLs that left 127.0.0.1 (see :func:`is_local`)."""
    return [url for url in urls if not is_local(url, origins)]


class Meter:
    """Requests and bytes (headers + encoded body) of one browser context, and foreign requests.

    ``foreign`` collects every request that does not start with ``origin`` (the server's
    ``http://127.0.0.1:<port>/``); ``data:`` and ``blob:`` URLs are local.
    """

    def __init__(self, context: Any, origin: str) -> None:
        self.origin = origin
        self.requests = 0
        self.bytes = 0
        self.foreign: list[str] = []
        context.on("request", self._request)
        context.on("requestfinished", self._finished)

    def _request(self, request: Any) -> None:
        if not is_local(request.url, (self.origin,)):
            self.foreign.append(request.url)

    def _finished(self, request: Any) -> None:
        self.requests += 1
        try:
            sizes = request.sizes()
        except Exception:  # noqa: BLE001 - a request without sizes (cache, abort) counts 0
            return
        self.bytes += sizes["responseBodySize"] + sizes["responseHeadersSize"]

    def reset(self) -> None:
        """Count requests and bytes from zero again."""
        self.requests = self.bytes = 0
