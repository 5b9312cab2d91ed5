"""Crash recovery on the page: reload mid-run, a killed worker, a closed browser."""

from __future__ import annotations

from playwright_tests.demo.helpers import Browser, Demo, Server, fresh_db


def test_reload_mid_run_resumes_without_redoing_finished_batches(
    server: Server, browser: Browser
) -> None:
    db = fresh_db()
    demo = Demo(browser.open().new_page()).goto(server.demo(db))
    demo.wait_status("ready")
    run_id = demo.start_import(rows=3000, batch=100, delay_ms=150)
    demo.wait_progress(run_id, 800)

    demo.page.reload()
    demo.page.wait_for_function("document.body.dataset.app === 'running'")
    demo.wait_status("ready")
    demo.page.wait_for_selector(f'#runs tr[data-run-id="{run_id}"]')
    demo.wait_run(run_id, "completed")
    assert demo.row(run_id).get_attribute("data-resumed") == "1"
    assert run_id in demo.state()["resumed"]
    # The new engine reclaimed the run at boot, before the page's Python had attached its
    # handlers: the page still got the run's events from the first one on (the init config's
    # `listen`, and the client keeping them for the handlers), not only a get_runs snapshot.
    events = demo.state()["events"][run_id]
    assert events[0] == "run:start", events[:5]
    assert "run:progress" in events and events[-1] == "run:complete", events[-5:]

    audit = demo.audit(run_id)
    assert audit["batches"] == 30
    assert audit["rerun_after_checkpoint"] == 0, audit
    assert audit["executions"] - audit["batches"] == audit["rerun_before_checkpoint"] <= 1
    assert audit["rows_imported"] == 3000


def test_killed_worker_is_restarted_and_the_run_finishes(server: Server, browser: Browser) -> None:
    demo = Demo(browser.open().new_page()).goto(server.demo(fresh_db()))
    demo.wait_status("ready")
    run_id = demo.start_import(rows=2000, batch=100, delay_ms=150)
    demo.wait_progress(run_id, 300)

    demo.page.evaluate("window.durablyKillWorker()")
    demo.wait_status("restarting", timeout=20_000)
    demo.wait_status("ready")
    demo.wait_run(run_id, "completed")
    statuses = demo.state()["statuses"]
    assert "restarting" in statuses
    assert statuses[-1] == "ready"
    # The restarted engine reclaims the run at boot: its run:start reaches the page too.
    events = demo.state()["events"][run_id]
    assert events.count("run:start") == 2, [e for e in events if e != "run:progress"]
    audit = demo.audit(run_id)
    assert audit["rerun_after_checkpoint"] == 0, audit
    assert audit["rows_imported"] == 2000


def test_runs_survive_closing_and_reopening_the_browser(server: Server, browser: Browser) -> None:
    db = fresh_db()
    context = browser.open("profile")
    demo = Demo(context.new_page()).goto(server.demo(db))
    demo.wait_status("ready")
    run_id = demo.start_import(rows=250, batch=50)
    demo.wait_run(run_id, "completed")
    browser.close(context)

    reopened = Demo(browser.open("profile").new_page()).goto(server.demo(db))
    reopened.wait_status("ready")
    reopened.wait_run(run_id, "completed", timeout=30_000)
    assert "250 rows imported" in str(reopened.row(run_id).text_content())
    assert reopened.audit(run_id)["rows_imported"] == 250
