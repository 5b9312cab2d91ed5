"""Fixtures every browser test shares: one Playwright driver per module, Chromium profiles.

- ``playwright_instance``: the sync Playwright driver (module scope).
- ``browser``: opens persistent Chromium contexts (Debian's ``/usr/bin/chromium``), one fresh
  profile per test unless a test reopens the same one; records every request of every
  context (service workers' included) and fails the test if one left 127.0.0.1. Request
  routing is not used: it would disable the HTTP cache and bypass service workers.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from playwright_tests.browser import CHROMIUM
from playwright_tests.demo.helpers import Browser


@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Any]:
    """One Playwright driver per module (one process cannot run two sync drivers at once,
    so it must be gone before other modules' tests start theirs).
    """
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(
            f"the browser tests need Debian's Chromium at {CHROMIUM}: apt-get install chromium"
        )
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture
def browser(playwright_instance: Any, tmp_path: Path) -> Iterator[Browser]:
    """Chromium profiles for one test; fails the test if any request left 127.0.0.1."""
    opened = Browser(playwright_instance, CHROMIUM, tmp_path)
    try:
        yield opened
    finally:
        opened.close_all()
        shutil.rmtree(tmp_path, ignore_errors=True)
    foreign = [url for url in opened.requests if not opened.is_local(url)]
    assert not foreign, f"requests left 127.0.0.1: {foreign[:10]}"
    assert opened.requests, "no request was recorded"
