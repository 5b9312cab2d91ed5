"""The demo page in server mode: the same page and Python, the engine in a real server.

``durably-web serve-api SITE/jobs.py --static SITE`` runs as a process (uvicorn on 127.0.0.1),
SITE the built demo site with the test pages: it serves SITE and the demo's jobs at
``/api/durably`` on one origin. The page is opened at
``/?server=/api/durably``: demo.py then calls ``connect(url=...)`` instead of
``connect(jobs=...)`` and everything else is the code the worker-mode tests run
(test_demo_flow.py, test_recovery.py). No worker is started; every request stays on
127.0.0.1 (the ``browser`` fixture checks it).
"""

from __future__ import annotations

from typing import Any

import pytest

from playwright_tests.demo.helpers import ApiServer, Browser, Demo


def open_demo(api_server: ApiServer, browser: Browser) -> tuple[Demo, list[str]]:
    """The demo in server mode, ready; also the workers the page started (none expected)."""
    page = browser.open().new_page()
    workers: list[str] = []
    page.on("worker", lambda worker: workers.append(worker.url))
    demo = Demo(page).goto(api_server.demo())
    assert demo.wait_status("ready", "failed") == "ready", demo.state().get("error")
    return demo, workers


def api_requests(browser: Browser, api_server: ApiServer) -> list[str]:
    """The paths below the API the browser requested."""
    prefix = api_server.url + api_server.api
    return [url[len(prefix) :].split("?")[0] for url in browser.requests if url.startswith(prefix)]


def test_import_runs_on_the_server_with_progress_to_completion(
    api_server: ApiServer, browser: Browser
) -> None:
    demo, workers = open_demo(api_server, browser)
    state = demo.state()
    assert state["mode"] == "server"
    assert [name for name, _ in state["stages"]] == ["server"]  # no worker boot stages
    assert demo.page.is_hidden("#stage-list")
    assert api_server.api in str(demo.page.text_content("#db-name"))

    run_id = demo.start_import(rows=500, batch=50, delay_ms=50)
    demo.wait_run(run_id, "completed")
    seen = demo.state()["progress_seen"][run_id]
    assert seen[-1] == 500
    assert any(0 < value < 500 for value in seen), f"no intermediate progress: {seen}"
    # The stream carries no output: the page shows the stored run's.
    demo.page.wait_for_function(
        'id => document.querySelector(`#runs tr[data-run-id="${id}"]`).textContent'
        ".includes('500 rows imported')",
        arg=run_id,
    )
    # The events stream was open before the trigger went out: the page saw all of it.
    events = set(demo.state()["events"][run_id])
    assert {"run:trigger", "run:start", "run:progress", "run:complete", "log:write"} <= events

    audit = demo.audit(run_id)  # trigger_and_wait of another job, on the server's ledger
    assert audit["batches"] == 10
    assert audit["executions"] == 10
    assert audit["rows_imported"] == 500
    logs = demo.page.locator("#logs li").all_text_contents()
    assert any("batch 9 imported" in line for line in logs)

    assert workers == [], "server mode must not start an engine worker"
    paths = set(api_requests(browser, api_server))
    assert {"/jobs", "/trigger", "/run", "/runs", "/runs/subscribe"} <= paths, paths


def test_runs_triggered_elsewhere_appear_live(api_server: ApiServer, browser: Browser) -> None:
    demo, _ = open_demo(api_server, browser)
    demo.page.wait_for_selector("#count[data-count]")
    answer: dict[str, Any] = api_server.call(
        "POST", "/trigger", {"jobName": "import-csv", "input": {"rows": 200, "batch_size": 50}}
    )
    run_id = answer["runId"]
    demo.page.wait_for_selector(f'#runs tr[data-run-id="{run_id}"]', timeout=30_000)
    demo.wait_run(run_id, "completed")
    assert demo.page.get_attribute("#count", "data-count") == "1"

    api_server.call("DELETE", f"/run?runId={run_id}")
    demo.page.wait_for_selector(f'#runs tr[data-run-id="{run_id}"]', state="detached")


def test_cancel_and_retry_in_server_mode(api_server: ApiServer, browser: Browser) -> None:
    demo, _ = open_demo(api_server, browser)
    run_id = demo.cancel_running_import(rows=2000)

    demo.click(run_id, "retry")  # in place: the checkpointed batches replay
    demo.wait_run(run_id, "completed")
    assert demo.progress(run_id) == 2000
    audit = demo.audit(run_id)
    assert audit["rerun_after_checkpoint"] == 0, audit
    assert audit["rows_imported"] == 2000


def test_failed_run_shows_its_error_and_can_be_retried(
    api_server: ApiServer, browser: Browser
) -> None:
    demo, _ = open_demo(api_server, browser)
    run_id = demo.start_import(rows=300, batch=100, fail=True)
    demo.wait_run(run_id, "failed")
    demo.page.wait_for_function(
        'id => document.querySelector(`#runs tr[data-run-id="${id}"]`).textContent'
        ".includes('failed on purpose')",
        arg=run_id,
    )
    demo.click(run_id, "retry")
    demo.wait_run(run_id, "completed")
    demo.click(run_id, "delete")
    demo.page.wait_for_selector(f'#runs tr[data-run-id="{run_id}"]', state="detached")


def test_invalid_input_is_refused_by_the_server(api_server: ApiServer, browser: Browser) -> None:
    demo, _ = open_demo(api_server, browser)
    demo.page.fill("#rows", "0")
    demo.page.click("#import")
    demo.page.wait_for_selector("#form-error:not([hidden])")
    assert demo.page.get_attribute("#form-error", "data-code") == "validation_error"
    assert "rows > 0" in demo.field_error("rows")
    assert api_server.call("GET", "/runs") == []


@pytest.mark.parametrize(("query", "interpreter"), [("", "micropython"), ("&py=1", "cpython")])
def test_client_self_check_in_server_mode(
    api_server: ApiServer, browser: Browser, query: str, interpreter: str
) -> None:
    """The page client's every method against the server: the same check page as worker mode."""
    page = browser.open().new_page()
    page.goto(f"{api_server.url}/check/client.html?server={api_server.api}{query}")
    page.wait_for_function("window.__check && window.__check.done", timeout=180_000)
    report = page.evaluate("window.__check")
    assert (report["interpreter"], report["mode"]) == (interpreter, "server")
    failed = [row for row in report["results"] if not row[1]]
    assert not failed, failed
    assert len(report["results"]) >= 13
