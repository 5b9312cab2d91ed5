"""A full storage quota while the engine writes: a clear message, and nothing stored is lost.

Chromium lets a test lower an origin's quota (DevTools ``Storage.overrideQuotaForOrigin``).
Cut to what the origin already uses while the demo's import runs (it writes thousands of
ledger rows per batch), the database cannot grow: SQLite's write fails in the OPFS VFS and
the batch's step fails. The run must say "storage quota exceeded" (not only "disk I/O
error"), and once there is room again every run stored before is intact and a retry of the
import resumes from its checkpoints without re-running a finished batch. (When the engine's
own write is the one refused, it stops its worker instead: ``worker:error`` with context
``worker-stopped``, which the demo and the starter show with the same words.)
"""

from __future__ import annotations

import pytest

from playwright_tests.demo.helpers import Browser, Demo, Server, fresh_db

pytestmark = pytest.mark.browser

QUOTA_MESSAGE = "storage quota exceeded"


def test_a_full_quota_is_a_clear_message_and_nothing_stored_is_lost(
    server: Server, browser: Browser
) -> None:
    context = browser.open()
    tab = context.new_page()
    demo = Demo(tab).goto(server.demo(fresh_db()))
    demo.wait_status("ready")
    kept = demo.start_import(rows=1000, batch=100)
    demo.wait_run(kept, "completed")

    big = demo.start_import(rows=200_000, batch=5000, delay_ms=100)
    demo.wait_progress(big, 10_000)  # two batches are checkpointed; now the quota runs out
    session = context.new_cdp_session(tab)
    origin = server.url
    usage = tab.evaluate("navigator.storage.estimate().then(e => e.usage)")
    session.send("Storage.overrideQuotaForOrigin", {"origin": origin, "quotaSize": usage})
    demo.wait_run(big, "failed")  # the batch's ledger write is the one that cannot grow
    shown = str(demo.row(big).text_content())
    assert QUOTA_MESSAGE in shown and "No space available" in shown, shown
    assert "disk I/O error" in shown  # SQLite's words come after the cause, not instead
    stopped_at = demo.progress(big)
    assert 10_000 <= stopped_at < 200_000

    session.send("Storage.overrideQuotaForOrigin", {"origin": origin})  # room again
    tab.reload()
    demo.wait_status("ready")
    tab.wait_for_selector(f'#runs tr[data-run-id="{big}"]')
    assert demo.run_status(kept) == "completed"
    assert demo.audit(kept)["rows_imported"] == 1000
    assert demo.run_status(big) == "failed" and demo.progress(big) == stopped_at
    demo.click(big, "retry")  # resumes from its checkpoints
    demo.wait_run(big, "completed", timeout=240_000)
    audit = demo.audit(big)
    assert (audit["rows_imported"], audit["rerun_after_checkpoint"]) == (200_000, 0)
    assert audit["batches"] == 40
