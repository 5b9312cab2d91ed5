"""The starter app's page (``durably-web new``): what it shows, in one tab and in several.

Each run is shown as the engine has it, in whatever order the engine's answers and events
reach the page. The engine's events come as they happen; the answer to a read (``get_run``, the run that
``trigger`` returns) may be handled after events that are newer than it (PyScript resumes a
coroutine later than it runs an event callback). Here the page's ``Worker`` (wrapped by an
init script) holds every answer back and delivers them newest first, so events always
overtake them: a page that showed such an answer over the events would show a finished run
as pending or running forever.

In a second tab the page works through the first tab's engine, and says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from durably_web.sitebuild import build
from durably_web.sitebuild.starter import new_app
from playwright_tests.app.helpers import StarterPage
from playwright_tests.demo.helpers import Browser
from playwright_tests.site import ROOT, SiteServer, seed_caches

pytestmark = pytest.mark.browser

HOLD_MS = 1500

# Hold the worker's answers ({"type": "response", ...}) until none came for HOLD_MS, then
# deliver them newest first; everything else (boot stages, events) at once.
NEWEST_ANSWERS_FIRST = f"""
(() => {{
  const Native = window.Worker;
  window.__heldAnswers = 0;
  window.Worker = class extends Native {{
    set onmessage(handler) {{
      let held = [];
      let timer = 0;
      super.onmessage = (event) => {{
        const data = event.data;
        if (typeof data !== "string" || JSON.parse(data).type !== "response") return handler(event);
        window.__heldAnswers += 1;
        held.push(event);
        clearTimeout(timer);
        timer = setTimeout(() => {{
          const answers = held.reverse();
          held = [];
          answers.forEach(handler);
        }}, {HOLD_MS});
      }};
    }}
  }};
}})();
"""


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    """A new starter app, built and served; its URL."""
    build(ROOT)
    app = tmp_path / "app"
    new_app(app)
    seed_caches(app)
    server = SiteServer(build(app, app=app).site).start()
    try:
        yield server.url
    finally:
        server.stop()


def test_answers_overtaken_by_events_never_set_a_run_back(url: str, browser: Browser) -> None:
    context = browser.open()
    context.add_init_script(NEWEST_ANSWERS_FIRST)
    page = StarterPage(context.new_page()).goto(url)
    expected = {
        100: "25 primes · the largest is 97",
        20_000: "2,262 primes · the largest is 19,997",
        300_000: "25,997 primes · the largest is 299,993",
    }
    runs = {limit: page.count_primes(limit) for limit in expected}
    for limit, text in expected.items():
        shown = page.wait_completed(runs[limit], timeout_ms=60_000)
        assert (shown["text"], shown["value"], shown["max"]) == (text, 20, 20)
    assert page.page.evaluate("window.__heldAnswers") > 3  # the answers were held back
    page.page.wait_for_timeout(2 * HOLD_MS)  # the last answers are in: still completed
    assert {page.run(run_id)["status"] for run_id in runs.values()} == {"completed"}


def test_a_second_tab_works_through_the_first_and_says_so(url: str, browser: Browser) -> None:
    context = browser.open()
    first = StarterPage(context.new_page()).goto(url)
    second = StarterPage(context.new_page()).goto(url)
    badge = "document.getElementById('status')"
    assert first.page.evaluate(f"{badge}.dataset.role") == "leader"
    assert first.page.text_content("#status") == "Ready"
    assert second.page.evaluate(f"{badge}.dataset.role") == "follower"
    assert second.page.text_content("#status") == "Ready · via another tab"

    run_id = second.count_primes(20_000)
    for page in (second, first):  # triggered in the follower, run by the leader's engine
        shown = page.wait_completed(run_id, timeout_ms=60_000)
        assert shown["text"] == "2,262 primes · the largest is 19,997"
