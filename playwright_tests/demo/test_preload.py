"""The client's ``<link rel="modulepreload">`` tags that the build writes into a page's head.

``durably-web build`` replaces a page's ``<!-- durably-web: modulepreload -->`` with one tag
per module of the JS client's graph (``durably_web.sitebuild.preload``), so that Chromium
fetches the whole graph at once instead of level by level before it starts the engine worker.
The tags end with ``_durably/client/early.js`` (async: the first Web Locks request, made
while the modules load). Here the built pages that carry the marker still boot, every client module they load is one
of their tags (the list is complete) and each is fetched once (the import uses the preload's
copy); the ``browser`` fixture fails a test on any request leaving 127.0.0.1.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from playwright_tests.demo.helpers import BOOT_TIMEOUT_MS, Browser, Server, fresh_db

PAGES = {
    # page -> what shows that it started
    "/": "document.getElementById('status').dataset.status === 'ready'",  # the engine is ready
    "/_durably/dashboard/": "document.body.dataset.app === 'ready'",
}


@pytest.mark.parametrize("page_path", list(PAGES))
def test_a_page_with_the_preload_tags_fetches_the_client_once_and_boots(
    server: Server, browser: Browser, page_path: str
) -> None:
    context = browser.open()
    answered: list[tuple[str, int]] = []

    def record(response: Any) -> None:
        if response.request.service_worker is None:  # not the offline copy it saves after ready
            answered.append((response.url, response.status))

    context.on("response", record)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(f"{server.url}{page_path}?db={fresh_db()}")
    try:
        page.wait_for_function(PAGES[page_path], timeout=BOOT_TIMEOUT_MS)
    except Exception as exc:
        raise AssertionError(f"{page_path} never started; console: {console[-20:]}") from exc

    tags: list[str] = page.eval_on_selector_all(
        "link[rel=modulepreload]", "links => links.map((link) => link.href)"
    )
    preloaded = {urlsplit(href).path for href in tags}
    assert len(tags) == len(preloaded) > 5, tags
    assert f"{urlsplit(server.url).path}/_durably/client/index.mjs" in preloaded

    def client(url: str) -> bool:
        path = urlsplit(url).path
        return "/_durably/client/" in path and path.endswith(".mjs")

    loaded: list[Any] = [(urlsplit(url).path, status) for url, status in answered if client(url)]
    assert all(status == 200 for _, status in loaded), loaded
    paths = [path for path, _ in loaded]
    assert len(paths) == len(set(paths)), f"a client module was fetched twice: {paths}"
    # Not in the engine's graph: the page's own import (pyscript.mjs), and python.mjs, which
    # the page's Python imports once PyScript runs (off the engine's critical path).
    own = {"/_durably/client/pyscript.mjs", "/_durably/client/python.mjs"}
    assert preloaded <= set(paths) and set(paths) - preloaded <= own
    # and the early script (the first Web Locks request, made while the modules load)
    early = [status for url, status in answered if urlsplit(url).path.endswith("/early.js")]
    assert early == [200]
