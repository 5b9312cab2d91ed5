"""The engine worker's boot from a Pyodide memory snapshot, on the check page boot.html.

A first boot takes a snapshot (``_durably/runtime/snapshot.mjs``) and stores it after
``ready``; the next boot of the same build restores it (and the engine works: a job runs); a
damaged snapshot, or one made by another build, is never restored: the worker boots
normally and the stored snapshot is replaced. The worker's stdlib is the core zip; the rest
is fetched only when a job imports from it (``durably_web.browser.stdlib``), also after a
restore. Pyodide's wasm and the stdlib, fetched early (``_durably/runtime/prefetch.mjs``),
are fetched again by Pyodide when that failed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from durably_web.sitebuild.server import StaticServer
from durably_web.sitebuild.static import Response, StaticSite
from durably_web.sitebuild.versions import BOOT_FILES
from playwright_tests.demo.helpers import Browser, Server, fresh_db
from playwright_tests.site import serve_site

BOOT_TIMEOUT_MS = 120_000
SNAPSHOT_BYTES = 20 * 2**20  # a real snapshot is the interpreter's memory: 30+ MiB


def boot(page: Any, url: str | None = None) -> dict[str, Any]:
    """Load ``url`` (reload the page without one); return ``window.__boot`` once its job ran."""
    if url is None:
        page.reload()
    else:
        page.goto(url)
    page.wait_for_function("window.__boot", timeout=BOOT_TIMEOUT_MS)
    report: dict[str, Any] = page.evaluate("window.__boot")
    assert "error" not in report, report["error"]
    assert report["status"] == "completed", report
    return report


def outcome(report: dict[str, Any]) -> str:
    """What the boot did with the snapshot: restored, made, replaced, off or failed."""
    names = [str(name) for name in report["marks"] if str(name).startswith("snapshot-")]
    assert len(names) == 1, report["marks"]
    return names[0].removeprefix("snapshot-")


def stored(page: Any, not_in_url: str = "\0") -> list[dict[str, Any]]:
    """Wait until the worker stored its snapshot (after ``ready``); return the cache entries.

    The snapshot is the only entry, whole, and its URL does not contain ``not_in_url``.
    ``wait_for_function`` does not wait for a promise (one is truthy): each poll starts a
    look at the cache and answers with the last one's result.
    """
    page.evaluate("window.__stored = false")
    page.wait_for_function(
        "([bytes, not]) => { window.__snapshots().then((s) => (window.__stored = s.length === 1"
        " && s[0].bytes > bytes && !s[0].url.includes(not))); return window.__stored; }",
        arg=[SNAPSHOT_BYTES, not_in_url],
        polling=250,
        timeout=60_000,
    )
    entries: list[dict[str, Any]] = page.evaluate("window.__snapshots()")
    return entries


def check_page(server: Server) -> str:
    """The URL of the check page on a database no other test uses."""
    return f"{server.url}/check/boot.html?db={fresh_db()}"


def test_the_second_boot_restores_the_snapshot_the_first_took(
    server: Server, browser: Browser
) -> None:
    page = browser.open().new_page()
    first = boot(page, check_page(server))
    assert first["output"]["rows"] == 20
    assert outcome(first) == "made"
    [entry] = stored(page)
    second = boot(page)
    assert outcome(second) == "restored"
    assert second["runId"] != first["runId"]
    third = boot(page)  # restoring does not replace the snapshot
    assert outcome(third) == "restored"
    assert stored(page) == [entry]


def test_a_worker_of_its_own_makes_the_snapshot_after_ready(
    server: Server, browser: Browser
) -> None:
    # A normal boot takes no snapshot on the way to ready: after it, a short-lived worker
    # (runtime/snapshot_worker.mjs) boots the same files, takes it, hands it back to be stored
    # and is ended; the engine worker's later boot restores it.
    page = browser.open().new_page()
    workers: list[str] = []
    closed: list[str] = []

    def started(worker: Any) -> None:
        workers.append(worker.url)
        worker.on("close", lambda gone: closed.append(gone.url))

    page.on("worker", started)
    first = boot(page, check_page(server))
    assert outcome(first) == "made"
    assert "snapshotTaken" not in first["marks"], first["marks"]
    stored(page)
    made = [url for url in workers if url.endswith("/_durably/runtime/snapshot_worker.mjs")]
    assert len(made) == 1, workers
    for _ in range(50):  # the engine worker ends it once it handed the snapshot back
        if made[0] in closed:
            break
        page.wait_for_timeout(100)
    assert made[0] in closed, closed
    assert outcome(boot(page)) == "restored"
    assert [url for url in workers if "snapshot_worker" in url] == made  # none after a restore


def test_a_failed_snapshot_worker_leaves_the_engine_running_and_the_next_boot_normal(
    server: Server, browser: Browser
) -> None:
    # A job module that imports from `js` at its top level cannot be snapshotted: the snapshot
    # worker fails after ready; the engine it was made for goes on, nothing is stored, and the
    # next boot is a normal one again (which tries again).
    page = browser.open().new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    first = boot(page, f"{check_page(server)}&jobs=./js_jobs.py")
    assert outcome(first) == "made" and first["output"] == {"max": 7}
    failed = "cannot make or store the boot snapshot"
    for _ in range(600):  # the snapshot worker boots Pyodide: a few seconds
        if any(failed in text for text in console):
            break
        page.wait_for_timeout(100)
    assert any(failed in text and "serialize" in text for text in console), console
    assert page.evaluate("window.__snapshots()") == []
    # The engine that booted is still serving: the same page runs the job once more.
    status = page.evaluate(
        "() => Object.values(window.__client.jobs)[0]"
        ".triggerAndWait({}, { timeout: 60000 }).then((run) => run.status)"
    )
    assert status == "completed"
    second = boot(page)
    assert outcome(second) == "made" and second["output"] == {"max": 7}


def test_a_normal_boot_loads_pydantic_core_when_python_first_imports_it(
    server: Server, browser: Browser
) -> None:
    # A normal boot's memory is never copied, so its extension modules need no fixed address:
    # pydantic_core's is loaded at Python's first import of it (mark `extensions`), not before
    # the C runtime starts. A restore loads it there, where the snapshot worker's boot had it.
    page = browser.open().new_page()
    plain = boot(page, f"{check_page(server)}&jobs=./plain_jobs.py")
    assert outcome(plain) == "made" and plain["output"] == {"parsed": 42}
    assert "extensions" not in plain["marks"], plain["marks"]  # ready without it; the job had it
    stored(page)
    restored = boot(page)
    assert outcome(restored) == "restored" and restored["output"] == {"parsed": 42}
    marks = restored["marks"]
    assert marks["instantiated"] <= marks["extensions"] <= marks["installed"], marks
    # The demo's job module imports pydantic at its top: loaded during the imports.
    demo = boot(page, check_page(server))
    assert outcome(demo) == "made" and demo["output"]["rows"] == 20
    marks = demo["marks"]
    assert marks["booted"] <= marks["extensions"] <= marks["imported"], marks


@pytest.mark.parametrize("damage", ["header", "memory"])
def test_a_damaged_snapshot_is_replaced_by_a_normal_boot(
    server: Server, browser: Browser, damage: str
) -> None:
    page = browser.open().new_page()
    assert outcome(boot(page, check_page(server))) == "made"
    stored(page)
    page.evaluate(f"window.__damageSnapshots({damage!r})")
    assert outcome(boot(page)) == "replaced"
    stored(page)  # a whole snapshot again
    assert outcome(boot(page)) == "restored"


def test_a_snapshot_of_another_build_is_ignored_and_dropped(
    server: Server, browser: Browser
) -> None:
    page = browser.open().new_page()
    assert outcome(boot(page, check_page(server))) == "made"
    stored(page)
    page.evaluate("window.__rekeySnapshots()")  # as if the build or the job module changed
    assert outcome(boot(page)) == "made"
    stored(page, not_in_url="other")  # saving dropped the other one


def test_the_demo_never_fetches_the_rest_of_the_stdlib(server: Server, browser: Browser) -> None:
    page = browser.open().new_page()
    assert outcome(boot(page, check_page(server))) == "made"
    stored(page)
    assert outcome(boot(page)) == "restored"
    fetched = [url for url in browser.requests if "python_stdlib" in url]
    assert fetched and all("python_stdlib_core.zip" in url for url in fetched), fetched
    # Fetched early (runtime/prefetch.mjs) and handed to Pyodide: once per engine worker
    # start, not twice. Two boots start two workers, or one more each for a boot whose stuck
    # OPFS install the page recovered from by starting another (runtime/timeouts.mjs).
    starts = [
        url for url in browser.requests if url.partition("?")[0].endswith("/runtime/worker.mjs")
    ]
    assert len(starts) >= 2, starts
    assert len(fetched) == len(starts), (fetched, starts)
    wasm = [url for url in browser.requests if url.partition("?")[0].endswith("/pyodide.asm.wasm")]
    assert len(wasm) == len(starts), (wasm, starts)


@pytest.fixture(scope="module")
def isolated_server(site: Path) -> Iterator[Server]:
    """The demo's files with the cross-origin isolation headers (SharedArrayBuffer exists)."""
    with serve_site(site, isolated=True) as url:
        yield Server(url)


def test_sqlite_wasm_starts_no_vfs_of_its_own_beside_the_pool(
    isolated_server: Server, browser: Browser
) -> None:
    # On a cross-origin-isolated page sqlite-wasm's init installs its "opfs" and "opfs-wl"
    # VFSes unless told not to: each starts a worker of its own (fetching the async proxy)
    # while the boot waits for the init. The engine uses the opfs-sahpool pool only
    # (runtime/opfs.mjs configureSqlite).
    page = browser.open().new_page()
    report = boot(page, check_page(isolated_server))
    assert outcome(report) == "made"
    assert page.evaluate("crossOriginIsolated") is True  # else the VFSes would stay off anyway
    proxies = [url for url in browser.requests if "opfs-async-proxy" in url]
    assert proxies == [], proxies


def test_a_job_imports_from_the_rest_of_the_stdlib(server: Server, browser: Browser) -> None:
    page = browser.open().new_page()
    url = f"{check_page(server)}&jobs=./stdlib_jobs.py"
    expected = {"ratio": 12 / 14, "xml": "1", "mime": 'text/plain; charset="us-ascii"', "v1": 3}
    first = boot(page, url)
    assert outcome(first) == "made" and first["output"] == expected
    stored(page)  # taken after the job module's import fetched the rest
    again = boot(page)
    assert outcome(again) == "restored" and again["output"] == expected
    rest = [url for url in browser.requests if "python_stdlib_rest.zip" in url]
    # Once per boot (the file system is not in a snapshot), and once by the snapshot worker
    # (runtime/snapshot_worker.mjs), which imports the job module again.
    assert len(rest) == 3, rest


@pytest.mark.parametrize("file", ["pyodide.asm.wasm", "python_stdlib_core.zip"])
def test_pyodide_fetches_a_file_itself_when_the_early_fetch_fails(
    server: Server, browser: Browser, file: str
) -> None:
    # runtime/prefetch.mjs fetches (and compiles) these two while the VFS installs; when that
    # fails (here: the first answer is a 503), loadPyodide fetches the file as it would alone.
    context = browser.open()
    answered: list[str] = []

    def flaky(route: Any) -> None:
        answered.append("broken" if not answered else "real")
        if answered[-1] == "broken":
            route.fulfill(status=503, content_type="text/plain", body="try again")
        else:
            route.continue_()

    context.route(re.compile(rf"/{re.escape(file)}(\?|$)"), flaky)  # versioned URLs too
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    report = boot(page, check_page(server))
    assert outcome(report) == "made" and report["output"]["rows"] == 20
    assert answered == ["broken", "real"]
    if file.endswith(".wasm"):
        assert any("cannot compile pyodide.asm.wasm early" in text for text in console), console


class RecordingSite(StaticSite):
    """A static site that records every request it answers: (target, status)."""

    def __init__(self, root: Path, *, isolated: bool) -> None:
        super().__init__(root, isolated=isolated)
        self.answered: list[tuple[str, int]] = []

    def respond(self, method: str, target: str, headers: Mapping[str, str]) -> Response:
        """Answer as :class:`StaticSite` does, and record the request."""
        response = super().respond(method, target, headers)
        self.answered.append((target, response.status))
        return response


def test_a_warm_reload_asks_the_server_nothing_about_the_versioned_boot_files(
    site: Path, browser: Browser
) -> None:
    # The build writes content-versioned URLs of Pyodide's files, the engine tar and the
    # stdlib zips into runtime/boot_files.mjs (sitebuild.versions) and the server answers
    # them immutable: a warm load reads them from the HTTP cache with no revalidation (304)
    # round trip. Cross-origin isolated, as bench/run.py's page is.
    recording = RecordingSite(site, isolated=True)
    server = StaticServer(("127.0.0.1", 0), recording)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = browser.open().new_page()
        assert outcome(boot(page, check_page(Server(server.url.rstrip("/"))))) == "made"
        stored(page)
        first = list(recording.answered)
        recording.answered.clear()
        assert outcome(boot(page)) == "restored"
        warm = list(recording.answered)
    finally:
        server.shutdown()
        server.server_close()

    def boot_file(target: str) -> str | None:
        path = target.partition("?")[0]
        name = path.rpartition("/")[2]
        return name if "/vendor/pyodide/" in path and name in BOOT_FILES else None

    versioned = {boot_file(t) for t, status in first if "?v=" in t and status == 200}
    # Every boot file this load reads (not the stdlib's rest: the check page's jobs do not
    # import from it), each by its versioned URL.
    assert versioned >= set(BOOT_FILES) - {"python_stdlib_rest.zip"}, first
    assert [t for t, _ in first if boot_file(t) and "?v=" not in t] == []
    assert [t for t, _ in warm if boot_file(t)] == [], warm  # no request at all, so no 304
    # The unversioned files are still revalidated (the page and the worker's modules).
    assert any(status == 304 for _, status in warm), warm
