"""A boot stage that never finishes costs seconds, not the 30 s watchdog (bench/BOOT-NOTES.md).

Chromium sometimes leaves an OPFS ``createSyncAccessHandle()`` request pending for good while
the engine worker installs its pool; the worker gives the attempt up after
``TIMEOUTS.vfsStep`` (``runtime/timeouts.mjs``) and reports ``boot_stuck``, and the page
restarts it at once. The snapshot worker started after ``ready`` is ended after
``TIMEOUTS.snapshotWorker``. ``check/stuck-worker.mjs`` is the product's engine worker with
one stage stuck for real (a handle request that never settles, holding the handles got
before it; a snapshot worker that never answers); ``check/hang.html`` records the boot.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from playwright_tests.demo.helpers import BOOT_TIMEOUT_MS, Browser, Server, fresh_db

VFS_STEP_MS = 5_000  # TIMEOUTS.vfsStep
RESTARTED_WITHIN_MS = 20_000  # the stuck attempt's 5 s, then a warm boot: far under 30 s
SNAPSHOT_LOCK = "durably-test-snapshot-worker"  # held by check/stuck-snapshot-worker.mjs


def hang_page(server: Server, db: str, worker: str | None = None) -> str:
    """check/hang.html on database ``db``, with the engine worker script ``worker``."""
    url = f"{server.url}/check/hang.html?db={db}"
    return url + (f"&worker={quote(worker, safe='')}" if worker else "")


def boot(page: Any, url: str) -> dict[str, Any]:
    """Open ``url`` and return its ``window.__hang`` once the engine is ready."""
    page.goto(url)
    page.wait_for_function("window.__hang", timeout=BOOT_TIMEOUT_MS)
    result = dict(page.evaluate("window.__hang"))
    assert "error" not in result, result
    return result


def warnings(page: Any) -> list[str]:
    """Collect the page's (and its workers') console warnings from now on."""
    seen: list[str] = []
    page.on(
        "console", lambda message: seen.append(message.text) if message.type == "warning" else None
    )
    return seen


def wait_until(page: Any, script: str, arg: Any = None, timeout_ms: int = 60_000) -> None:
    """Evaluate ``script`` (which may return a promise: ``page.wait_for_function`` does not
    await one) every 100 ms until it is truthy."""
    for _ in range(timeout_ms // 100):
        if page.evaluate(script, arg):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"not true within {timeout_ms} ms: {script}")


def wait_for_warning(page: Any, seen: list[str], text: str, timeout_ms: int = 10_000) -> None:
    """Wait until a collected warning contains ``text`` (console events come asynchronously)."""
    for _ in range(timeout_ms // 100):
        if any(text in message for message in seen):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"no warning with {text!r} in {seen}")


def test_a_stuck_pool_install_restarts_the_worker_at_once(server: Server, browser: Browser) -> None:
    page = browser.open().new_page()
    seen = warnings(page)
    # The first access-handle request (sqlite-wasm's check of the OPFS API: the request seen
    # stuck in the wild) never settles in the first worker of this profile.
    result = boot(page, hang_page(server, fresh_db(), "stuck-worker.mjs?vfs=1"))

    assert VFS_STEP_MS < result["readyAt"] < RESTARTED_WITHIN_MS, result
    restarts = [s for s in result["statuses"] if s["status"] == "restarting"]
    assert restarts and restarts[0]["attempt"] == 2, result["statuses"]
    # The stuck worker got no further than sqlite-wasm's load; the next one booted at once.
    first = [s["stage"] for s in result["statuses"] if s["attempt"] == 1]
    assert first == ["worker", "sqlite"], result["statuses"]
    wait_for_warning(page, seen, f"did not finish within {VFS_STEP_MS} ms")


def test_a_pool_left_half_held_by_a_stuck_worker_loses_no_run(
    server: Server, browser: Browser
) -> None:
    db = fresh_db()
    page = browser.open().new_page()
    boot(page, hang_page(server, db))
    run_id = page.evaluate(
        """async () => (await window.__client.jobs.import_csv.trigger(
             { rows: 1000, batch_size: 100, delay_ms: 150 })).id"""
    )
    wait_until(
        page,
        "async (id) => ((await window.__client.getRun(id)).progress?.current ?? 0) >= 200",
        run_id,
    )
    seen = warnings(page)
    # Reload mid-run into a worker whose third handle request (the pool's second file) never
    # settles: the install holds the pool's other files when it is given up.
    result = boot(page, hang_page(server, db, "stuck-worker.mjs?vfs=3"))

    assert result["readyAt"] < RESTARTED_WITHIN_MS, result
    assert [s["attempt"] for s in result["statuses"] if s["status"] == "restarting"][:1] == [2]
    wait_for_warning(page, seen, f"did not finish within {VFS_STEP_MS} ms")
    done = page.evaluate(
        "async (id) => await window.__client.waitForRun(id, { timeout: 90000 })", run_id
    )
    assert done["status"] == "completed", done
    assert done["output"]["rows"] == 1000, done
    audit = page.evaluate(
        """async (id) => (await window.__client.jobs.audit_ledger.triggerAndWait(
             { run_id: id }, { timeout: 60000 })).output""",
        run_id,
    )
    assert audit["rows_imported"] == 1000 and audit["rerun_after_checkpoint"] == 0, audit


def test_a_stuck_snapshot_worker_is_ended_and_the_next_boot_is_normal(
    server: Server, browser: Browser
) -> None:
    db = fresh_db()
    page = browser.open().new_page()
    seen = warnings(page)
    worker = "stuck-worker.mjs?snapshot=stuck&snapshotTimeout=3000"
    result = boot(page, hang_page(server, db, worker))
    assert "snapshot-made" in result["marks"], result["marks"]

    held = "async (name) => (await navigator.locks.query()).held.some((lock) => lock.name === name)"
    wait_until(page, held, SNAPSHOT_LOCK, timeout_ms=30_000)  # the stuck snapshot worker runs
    wait_until(page, f"async (name) => !await ({held})(name)", SNAPSHOT_LOCK, timeout_ms=20_000)
    wait_for_warning(page, seen, "the snapshot worker did not finish within 3000 ms")
    stored = "async () => (await caches.open('durably-snapshots').then((c) => c.keys())).length"
    assert page.evaluate(stored) == 0
    done = page.evaluate(
        """async () => (await window.__client.jobs.import_csv.triggerAndWait(
             { rows: 20, batch_size: 10 }, { timeout: 60000 })).status"""
    )
    assert done == "completed"

    # No snapshot was stored: the next boot is a normal one, and its snapshot worker stores one.
    result = boot(page, hang_page(server, db))
    assert "snapshot-made" in result["marks"], result["marks"]
    wait_until(page, f"async () => (await ({stored})()) === 1", timeout_ms=90_000)
