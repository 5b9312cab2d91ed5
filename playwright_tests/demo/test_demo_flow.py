"""The demo page's main flows: boot, import with progress, invalid input, states."""

from __future__ import annotations

from playwright_tests.demo.helpers import BOOT_TIMEOUT_MS, Browser, Demo, Server, fresh_db


def test_import_runs_with_progress_to_completion(server: Server, browser: Browser) -> None:
    demo = Demo(browser.open().new_page()).goto(server.demo(fresh_db()))
    assert demo.wait_status("ready") == "ready"
    stages = [name for name, _ in demo.state()["stages"]]
    assert stages == ["worker", "sqlite", "vfs", "pyodide", "engine"]

    run_id = demo.start_import(rows=500, batch=50, delay_ms=50)
    demo.wait_run(run_id, "completed")

    seen = demo.state()["progress_seen"][run_id]
    assert seen[-1] == 500
    assert any(0 < value < 500 for value in seen), f"no intermediate progress: {seen}"
    assert "500 rows imported in 10 batches" in str(demo.row(run_id).text_content())
    assert demo.row(run_id).get_attribute("data-resumed") is None  # one attempt only
    audit = demo.audit(run_id)
    assert audit["batches"] == 10
    assert audit["executions"] == 10
    assert audit["rows_imported"] == 500
    logs = demo.page.locator("#logs li").all_text_contents()
    assert any("batch 9 imported" in line for line in logs)


def test_invalid_input_shows_an_error_and_stores_nothing(server: Server, browser: Browser) -> None:
    db = fresh_db()
    demo = Demo(browser.open().new_page()).goto(server.demo(db))
    demo.wait_status("ready")
    demo.page.fill("#rows", "0")
    demo.page.click("#import")
    demo.page.wait_for_selector("#form-error:not([hidden])")
    assert demo.page.get_attribute("#form-error", "data-code") == "validation_error"
    # The message sits next to the field at fault, in plain words (no code, no pydantic).
    assert "rows > 0" in demo.field_error("rows")
    assert demo.page.get_attribute("#rows", "aria-invalid") == "true"
    assert demo.form_error() == "Nothing was imported: check the fields marked."

    demo.page.fill("#rows", "10")
    demo.page.fill("#batch", "0")  # batch_size must be >= 1
    demo.page.click("#import")
    demo.page.wait_for_function("document.getElementById('batch-error').textContent !== ''")
    assert demo.field_error("batch") == "must be at least 1"
    assert (
        demo.field_error("rows") == "" and demo.page.get_attribute("#rows", "aria-invalid") is None
    )

    # A CSV without one valid row is refused, next to the file field.
    demo.page.fill("#batch", "100")
    demo.page.set_input_files(
        "#file",
        files=[{"name": "junk.csv", "mimeType": "text/csv", "buffer": b"name,amount\nfoo\nbar\n"}],
    )
    demo.page.click("#import")
    demo.page.wait_for_function("document.getElementById('file-error').textContent !== ''")
    assert demo.field_error("file").startswith("the CSV has no valid rows")
    assert "(row 2 is 'foo')" in demo.field_error("file")
    demo.page.reload()
    demo.page.wait_for_function("document.body.dataset.app === 'running'")
    demo.wait_status("ready")
    demo.page.wait_for_selector("#count[data-count]")
    assert demo.page.get_attribute("#count", "data-count") == "0"
    assert demo.run_ids() == []


def test_failed_run_can_be_retried_and_deleted(server: Server, browser: Browser) -> None:
    demo = Demo(browser.open().new_page()).goto(server.demo(fresh_db()))
    demo.wait_status("ready")
    run_id = demo.start_import(rows=300, batch=100, fail=True)
    demo.wait_run(run_id, "failed")
    assert "failed on purpose" in str(demo.row(run_id).text_content())
    assert demo.row(run_id).get_attribute("data-resumed") is None
    demo.click(run_id, "retry")
    demo.wait_run(run_id, "completed")
    assert demo.row(run_id).get_attribute("data-resumed") == "1"  # replayed batch 0
    audit = demo.audit(run_id)
    assert audit["batches"] == 3
    assert audit["rerun_after_checkpoint"] == 0
    demo.click(run_id, "delete")
    demo.page.wait_for_selector(f'#runs tr[data-run-id="{run_id}"]', state="detached")


def test_cancel_stops_a_running_import(server: Server, browser: Browser) -> None:
    demo = Demo(browser.open().new_page()).goto(server.demo(fresh_db()))
    demo.wait_status("ready")
    demo.cancel_running_import(rows=2000)


def test_a_second_tab_works_through_the_first_and_takes_over_when_it_closes(
    server: Server, browser: Browser
) -> None:
    context = browser.open()
    db = fresh_db()
    first = Demo(context.new_page()).goto(server.demo(db))
    first.wait_status("ready")
    second_page = context.new_page()
    workers: list[str] = []
    second_page.on("worker", lambda worker: workers.append(worker.url))
    second = Demo(second_page).goto(server.demo(db))
    assert second.wait_status("ready", "failed") == "ready", second.state()["error"]
    assert second.state()["role"] == "follower"
    assert "in another tab" in str(second.page.text_content("#status"))
    assert workers == [], "a follower tab must not start an engine worker"
    # The follower triggers; both tabs see the run's progress.
    run_id = second.start_import(rows=300, batch=50, delay_ms=20)
    second.wait_run(run_id, "completed")
    first.wait_run(run_id, "completed")
    assert second.state()["progress_seen"][run_id][-1] == 300
    assert first.state()["progress_seen"][run_id][-1] == 300
    # The leader closes: the follower leads, without a reload or a click.
    first.page.close()
    second.page.wait_for_function(
        "document.getElementById('status').dataset.role === 'leader'", timeout=BOOT_TIMEOUT_MS
    )
    assert second.wait_status("ready", "failed") == "ready"
    assert len(workers) == 1
    again = second.start_import(rows=100, batch=50)
    second.wait_run(again, "completed")


def test_a_job_module_that_fails_to_import_shows_a_clear_error(
    broken_server: Server, browser: Browser
) -> None:
    demo = Demo(browser.open().new_page()).goto(broken_server.demo(fresh_db()))
    assert demo.wait_status("failed", "ready") == "failed"
    error = demo.state()["error"]
    assert error["code"] == "job_module_failed"
    assert "broken on purpose" in error["message"]
    text = str(demo.page.text_content("#engine-error"))
    assert "broken on purpose" in text and not text.startswith("job_module_failed")  # plain words
    assert demo.page.get_attribute("#engine-error", "data-code") == "job_module_failed"
    assert demo.page.is_visible("#try-again")
    # Nothing can be queued for a later start: Import stays disabled until connected.
    assert demo.page.is_disabled("#import")


def test_several_databases_in_one_profile(server: Server, browser: Browser) -> None:
    # The OPFS pool does not grow by itself; each WAL database (and the demo's ledger) holds
    # two of its slots: without spare capacity the third database failed SQLITE_CANTOPEN.
    page = browser.open().new_page()
    for _ in range(4):
        demo = Demo(page).goto(server.demo(fresh_db()))
        assert demo.wait_status("ready", "failed") == "ready", demo.state()["error"]
    run_id = demo.start_import(rows=20, batch=10)
    demo.wait_run(run_id, "completed")


def test_the_log_panel_shows_stored_lines_after_a_reload(server: Server, browser: Browser) -> None:
    demo = Demo(browser.open().new_page()).goto(server.demo(fresh_db()))
    demo.wait_status("ready")
    done = demo.start_import(rows=300, batch=100)
    demo.wait_run(done, "completed")
    running = demo.start_import(rows=5000, batch=100, delay_ms=300)
    demo.wait_progress(running, 300)

    demo.page.reload()
    demo.page.wait_for_function("document.body.dataset.app === 'running'")
    demo.wait_status("ready")
    # The current import (auto-resumed) with its stored progress, and its stored log lines.
    demo.page.wait_for_function("document.querySelectorAll('#logs li').length >= 3")
    assert demo.page.text_content("#logs-of") == running[-8:]
    assert demo.page.get_attribute("#current-status", "data-status") in ("leased", "pending")
    assert int(str(demo.page.get_attribute("#current-progress", "data-current"))) >= 300
    lines = demo.page.locator("#logs li").all_text_contents()
    assert lines[:3] == [f"info [batch-{i}]: batch {i} imported" for i in range(3)]

    # A finished import's lines are kept too (the demo's engine preserves steps and logs).
    demo.click(done, "logs")
    demo.page.wait_for_function(
        "id => document.getElementById('logs-of').textContent === id", arg=done[-8:]
    )
    demo.page.wait_for_function("document.querySelectorAll('#logs li').length === 3")
    assert demo.page.locator("#logs li").all_text_contents() == [
        f"info [batch-{i}]: batch {i} imported" for i in range(3)
    ]
    demo.click(running, "cancel")
    demo.wait_run(running, "cancelled")
