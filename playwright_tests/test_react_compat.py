"""Upstream's own React client, @coji/durably-react 0.15.0, against durably_web's server.

A real uvicorn server on 127.0.0.1 runs a Starlette app: the Durably app mounted at
``/api/durably`` and the esbuild bundle of ``react_compat/app.jsx`` at ``/``. The engine
runs in the same process and event loop as the server and Playwright's async API; that loop
runs in a thread of its own (see :class:`LoopThread`). Chromium (Debian's, through
Playwright) loads the page and uses the unmodified hooks: ``useJob`` (trigger, progress,
output, logs, followLatest, autoResume), ``useRuns`` (filtered by job keys, realtime),
``useRunActions`` (cancel, retrigger, delete, getRun, getSteps) and ``useRun``/``useLogs``.

Every request the browser makes is recorded; one to any host but 127.0.0.1 fails the test.

    .venv/bin/pytest playwright_tests/test_react_compat.py
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
import uvicorn
from playwright.async_api import BrowserContext, Page, async_playwright
from playwright.async_api import Request as BrowserRequest
from playwright.async_api import Response as BrowserResponse
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from durably_web import Durably, StepContext, create_durably, define_job
from durably_web.server import create_app
from playwright_tests import browser
from playwright_tests.react_compat.build import ensure_bundle

CHROMIUM = os.environ.get("DURABLY_CHROMIUM", str(browser.CHROMIUM))
API = "/api/durably"
WAIT_MS = 20_000
T = TypeVar("T")


# -- the jobs: registered under the keys the React client sends as jobName ----------------


class ImportInput(BaseModel):
    rows: int = 5
    delay: float = 0.15


class ImportOutput(BaseModel):
    imported: int
    checksum: int


async def _import(step: StepContext, payload: ImportInput) -> ImportOutput:
    """One step per row (sleeping ``delay``), progress after each, a log line at the end."""
    checksum = 0
    for i in range(payload.rows):

        async def row(i: int = i) -> int:
            await asyncio.sleep(payload.delay)
            return i * i

        checksum += await step.run(f"row-{i}", row)
        step.progress(i + 1, payload.rows, f"row {i + 1}")
    step.log.info("imported", {"rows": payload.rows})
    return ImportOutput(imported=payload.rows, checksum=checksum)


@define_job(name="import-csv", input=ImportInput, output=ImportOutput)
async def import_csv_job(step: StepContext, payload: ImportInput) -> ImportOutput:
    """A short import."""
    return await _import(step, payload)


@define_job(name="slow-import", input=ImportInput, output=ImportOutput)
async def slow_import_job(step: StepContext, payload: ImportInput) -> ImportOutput:
    """The same, triggered with many slow rows: the one the page cancels."""
    return await _import(step, payload)


# -- fixtures ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def bundle() -> Path:
    """``npm ci`` and esbuild, when ``dist/`` is missing or older than its sources."""
    if shutil.which("npm") is None:
        pytest.fail("npm (Node.js 20+) is needed to build the React page: install Node.js")
    return ensure_bundle()


class StreamCounter:
    """ASGI middleware counting the open SSE responses per path.

    Lets a test wait until the page's EventSources are being served before it triggers
    something that only a realtime event would reveal.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.open: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope["path"])
        streaming = False

        async def counting_send(message: Message) -> None:
            nonlocal streaming
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                if headers.get(b"content-type") == b"text/event-stream":
                    streaming = True
                    self.open[path] += 1
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            if streaming:
                self.open[path] -= 1


@dataclass
class Server:
    url: str
    durably: Durably
    streams: StreamCounter

    async def wait_streams(self, path: str, count: int) -> None:
        """Wait until ``count`` SSE responses on ``API + path`` are open and listening."""
        for _ in range(400):
            if self.streams.open[API + path] >= count:
                await asyncio.sleep(0.1)  # their producers subscribe on the next loop turns
                return
            await asyncio.sleep(0.025)
        raise AssertionError(f"only {self.streams.open[API + path]} streams on {path}")


@contextlib.asynccontextmanager
async def serve(bundle: Path, database: Path) -> AsyncIterator[Server]:
    """Uvicorn on a free loopback port serving Starlette: the API mounted, the page at ``/``."""
    durably = create_durably(
        f"sqlite:///{database}",
        jobs={"importCsv": import_csv_job, "slowImport": slow_import_job},
        max_concurrent_runs=4,
        preserve_steps=True,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Starlette does not pass lifespan events to mounted apps: the engine starts here.
        await durably.init()
        try:
            yield
        finally:
            await durably.stop(timeout=10)

    starlette = Starlette(
        routes=[
            Mount(API, app=create_app(durably, sse_throttle=0.1, manage_engine=False)),
            Mount("/", app=StaticFiles(directory=bundle, html=True)),
        ],
        lifespan=lifespan,
    )
    app = StreamCounter(starlette)
    port = _free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    uvicorn_server = uvicorn.Server(config)
    task = asyncio.ensure_future(uvicorn_server.serve())
    while not uvicorn_server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield Server(f"http://127.0.0.1:{port}", durably, app)
    finally:
        uvicorn_server.should_exit = True
        await asyncio.wait_for(task, 15)
        await durably.close()


@dataclass
class Traffic:
    """Everything the browser asked for, and what went wrong on the page."""

    requests: list[tuple[str, str]] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    client_errors: list[tuple[int, str, str]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def on_request(self, request: BrowserRequest) -> None:
        self.requests.append((request.method, request.url))

    def on_response(self, response: BrowserResponse) -> None:
        if response.status >= 500:
            self.server_errors.append(f"{response.status} {response.request.method} {response.url}")
        elif response.status >= 400:
            path = urlsplit(response.url).path
            self.client_errors.append((response.status, response.request.method, path))

    def foreign(self) -> list[str]:
        """Requests that left 127.0.0.1 (or used a scheme that could)."""
        return browser.foreign(url for _, url in self.requests)

    def check(self) -> None:
        assert self.requests, "no request was recorded at all"
        assert self.foreign() == [], f"requests left 127.0.0.1: {self.foreign()}"
        assert self.server_errors == [], self.server_errors
        assert self.page_errors == [], self.page_errors


@dataclass
class Browsing:
    context: BrowserContext
    traffic: Traffic


@contextlib.asynccontextmanager
async def open_browser(profile: Path) -> AsyncIterator[Browsing]:
    """Debian's Chromium with a fresh profile; every request of every page recorded."""
    traffic = Traffic()
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile), **browser.launch_options(CHROMIUM)
        )
        context.on("request", traffic.on_request)
        context.on("response", traffic.on_response)
        context.set_default_timeout(WAIT_MS)
        try:
            yield Browsing(context, traffic)
        finally:
            await context.close()  # closes the never-ending SSE streams before the server stops


class LoopThread:
    """An asyncio loop running in a thread of its own: the server, the engine and Playwright.

    Not pytest-asyncio's loop: a sync Playwright session elsewhere in the same pytest run
    (``playwright_tests/demo`` keeps one open for the whole session) leaves the main
    thread's loop marked as running between its calls, and no asyncio test can start there.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="react-compat-loop", daemon=True
        )
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        """Run ``coroutine`` on the loop and return its result (raising what it raises)."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        """Cancel what is left on the loop, stop it and close it."""

        async def finish() -> None:
            current = asyncio.current_task()
            left = [task for task in asyncio.all_tasks() if task is not current]
            for task in left:
                task.cancel()
            await asyncio.gather(*left, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        self.run(finish(), timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        self.loop.close()


@dataclass
class Env:
    """The module's server and browser, and the loop they live on."""

    loop: LoopThread
    server: Server
    browsing: Browsing

    @contextlib.asynccontextmanager
    async def page(self) -> AsyncIterator[Page]:
        """The compatibility page, loaded and rendered; closed and traffic checked after."""
        page = await self.browsing.context.new_page()
        page.on("pageerror", lambda error: self.browsing.traffic.page_errors.append(str(error)))
        await page.goto(self.server.url + "/")
        await page.wait_for_selector("body[data-ready=yes]")
        try:
            yield page
        finally:
            await page.close()
        self.browsing.traffic.check()


@pytest.fixture(scope="module")
def env(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """Start the server, then Chromium, on a loop thread; stop them in reverse order."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    loop = LoopThread()
    stack = contextlib.AsyncExitStack()
    try:
        database = tmp_path_factory.mktemp("react-compat") / "durably.db"
        server = loop.run(stack.enter_async_context(serve(bundle, database)))
        profile = tmp_path_factory.mktemp("chromium-profile")
        browsing = loop.run(stack.enter_async_context(open_browser(profile)))
        yield Env(loop, server, browsing)
    finally:
        try:
            loop.run(stack.aclose())
        finally:
            loop.close()
    browsing.traffic.check()


def in_page(test: Callable[[Page, Server], Awaitable[None]]) -> Callable[[Env], None]:
    """Turn ``async def test(page, server)`` into a test run on the loop, with a fresh page."""

    def run(env: Env) -> None:
        async def body() -> None:
            async with env.page() as page:
                await test(page, env.server)

        env.loop.run(body())

    run.__name__, run.__qualname__, run.__doc__ = test.__name__, test.__qualname__, test.__doc__
    return run


# -- helpers -------------------------------------------------------------------------------


async def state(page: Page, path: str) -> Any:
    """Read ``window.__state.<path>``."""
    return await page.evaluate(f"() => JSON.parse(JSON.stringify(window.__state.{path} ?? null))")


async def wait_state(page: Page, condition: str) -> None:
    """Wait until ``condition`` (a JS expression over ``s = window.__state``) holds."""
    try:
        await page.wait_for_function(f"() => {{ const s = window.__state; return {condition} }}")
    except Exception as exc:
        snapshot = json.dumps(await state(page, "jobs"), indent=1)[:4000]
        raise AssertionError(f"never true: {condition}\njobs state: {snapshot}") from exc


async def act(page: Page, action: str, run_id: str) -> dict[str, Any]:
    """Click a useRunActions button of the runs table; return the recorded outcome."""
    before = len(await state(page, "actions"))
    await page.get_by_test_id(f"{action}-runs-{run_id}").click()
    await wait_state(page, f"s.actions.length > {before} && s.actions[{before}].ok !== null")
    outcome: dict[str, Any] = (await state(page, "actions"))[before]
    return outcome


async def row_status(page: Page, run_id: str, status: str) -> None:
    """Wait for the runs table (useRuns) to show ``run_id`` with ``status``."""
    await page.wait_for_selector(f'[data-testid="run-runs-{run_id}"][data-status="{status}"]')


# -- tests ---------------------------------------------------------------------------------


@in_page
async def test_use_job_triggers_and_follows_progress_to_the_output(
    page: Page, server: Server
) -> None:
    await page.get_by_test_id("trigger-importCsv").click()
    await wait_state(page, "s.jobs.importCsv.status === 'completed'")
    job = await state(page, "jobs.importCsv")
    run_id = job["currentRunId"]
    assert job["error"] is None and job["triggerError"] is None
    assert job["output"] == {"imported": 5, "checksum": 0 + 1 + 4 + 9 + 16}
    statuses = job["history"]["status"]
    assert "leased" in statuses and statuses.index("leased") < statuses.index("completed")
    progress = [p for p in job["history"]["progress"] if p is not None]
    assert len(progress) >= 3, progress  # several live updates, not just the last one
    currents = [p["current"] for p in progress]
    assert currents == sorted(currents) and len(set(currents)) == len(currents)
    assert progress[-1] == {"current": 5, "total": 5, "message": "row 5"}
    assert [(log["runId"], log["message"]) for log in job["logs"]] == [(run_id, "imported")]
    assert job["logs"][0]["data"] == {"rows": 5}
    assert await page.get_by_test_id("output-importCsv").text_content() == (
        '{"imported":5,"checksum":30}'
    )

    # useRuns: the page never reloads or polls, so the row comes from realtime events.
    await row_status(page, run_id, "completed")
    runs = await state(page, "runs.runs")
    (row,) = [run for run in runs["runs"] if run["id"] == run_id]
    assert row["jobName"] == "import-csv" and row["isTerminal"] is True
    assert row["currentStepIndex"] == 5 and row["progress"]["current"] == 5
    assert runs["error"] is None

    run = await server.durably.get_run(run_id)
    assert run is not None and run.status == "completed"
    assert run.output == {"imported": 5, "checksum": 30}


@in_page
async def test_use_run_actions_cancels_a_long_run(page: Page, server: Server) -> None:
    await page.get_by_test_id("trigger-slowImport").click()
    await wait_state(
        page,
        "s.jobs.slowImport.status === 'leased' && (s.jobs.slowImport.progress?.current ?? 0) >= 2",
    )
    run_id = await state(page, "jobs.slowImport.currentRunId")
    await row_status(page, run_id, "leased")
    outcome = await act(page, "cancel", run_id)
    assert outcome["ok"] is True, outcome

    await wait_state(page, "s.jobs.slowImport.status === 'cancelled'")
    await row_status(page, run_id, "cancelled")
    run = await server.durably.get_run(run_id)
    assert run is not None and run.status == "cancelled"
    assert run.completed_step_count < 60

    again = await act(page, "cancel", run_id)  # a 409 surfaces as the hook's error message
    assert again["ok"] is False
    assert again["error"] == f"Cannot cancel already cancelled run: {run_id}"
    await asyncio.sleep(0.5)
    settled = await server.durably.get_run(run_id)
    assert settled is not None and settled.status == "cancelled"
    assert settled.completed_step_count <= run.completed_step_count + 1


@in_page
async def test_follow_latest_and_auto_resume_use_the_job_key(page: Page, server: Server) -> None:
    # followLatest: /runs/subscribe?jobName=importCsv sees a run triggered elsewhere.
    await server.wait_streams("/runs/subscribe", 3)  # two useJob (followLatest), one useRuns
    triggered = await server.durably.job_by_name("import-csv").trigger({"rows": 2, "delay": 0.05})
    await wait_state(page, f"s.jobs.importCsv.currentRunId === {json.dumps(triggered.id)}")
    await wait_state(page, "s.jobs.importCsv.status === 'completed'")
    assert await state(page, "jobs.importCsv.output") == {"imported": 2, "checksum": 1}

    # autoResume: a page loaded while a run is leased picks it up with GET /runs?jobName=..
    slow = await server.durably.job_by_name("slow-import").trigger({"rows": 40, "delay": 0.25})
    for _ in range(200):
        current = await server.durably.get_run(slow.id)
        if current is not None and current.status == "leased":
            break
        await asyncio.sleep(0.05)
    await page.reload()
    await page.wait_for_selector("body[data-ready=yes]")
    await wait_state(page, f"s.jobs.slowImport.currentRunId === {json.dumps(slow.id)}")
    await wait_state(page, "s.jobs.slowImport.status === 'leased'")
    history = await state(page, "jobs.slowImport.history.runIds")
    assert history == [None, slow.id]
    await server.durably.cancel(slow.id)
    await wait_state(page, "s.jobs.slowImport.status === 'cancelled'")


@in_page
async def test_run_actions_steps_get_retrigger_delete_and_use_run(
    page: Page, server: Server
) -> None:
    original = await server.durably.job_by_name("import-csv").trigger({"rows": 2, "delay": 0.01})
    await server.durably.wait_for_run(original.id, timeout=10)
    await page.reload()  # a fresh first fetch of useRuns
    await page.wait_for_selector("body[data-ready=yes]")
    await row_status(page, original.id, "completed")

    steps = await act(page, "steps", original.id)
    assert [(s["name"], s["status"], s["output"]) for s in steps["result"]] == [
        ("row-0", "completed", 0),
        ("row-1", "completed", 1),
    ]
    fetched = await act(page, "get", original.id)
    assert fetched["result"]["id"] == original.id
    assert fetched["result"]["status"] == "completed" and fetched["result"]["isTerminal"] is True

    # useRun/useLogs on a finished run: everything comes from the /subscribe snapshot.
    await page.get_by_test_id(f"watch-runs-{original.id}").click()
    await wait_state(page, "s.watched?.status === 'completed'")
    assert await state(page, "watched.output") == {"imported": 2, "checksum": 1}

    retriggered = await act(page, "retrigger", original.id)
    new_id = retriggered["result"]
    assert retriggered["ok"] is True and isinstance(new_id, str) and new_id != original.id
    await row_status(page, new_id, "completed")

    deleted = await act(page, "delete", original.id)
    assert deleted["ok"] is True, deleted
    await page.wait_for_selector(f'[data-testid="run-runs-{original.id}"]', state="detached")
    assert await server.durably.get_run(original.id) is None
    missing = await page.evaluate(f"() => window.__runActions.getRun({json.dumps(original.id)})")
    assert missing is None  # the client maps 404 to null
    # The watcher's EventSource reconnects (~3 s), gets 404 and gives up, as upstream's does.
    await wait_state(page, "s.watched?.error === 'Connection failed'")


def test_the_client_used_every_endpoint_on_loopback_only(env: Env) -> None:
    """Runs after the others in this module: the whole conversation, seen from the browser."""
    browsing = env.browsing
    browsing.traffic.check()
    used = {
        (method, urlsplit(url).path.removeprefix(API))
        for method, url in browsing.traffic.requests
        if urlsplit(url).path.startswith(API + "/")
    }
    assert used == {
        ("POST", "/trigger"),
        ("GET", "/runs"),
        ("GET", "/runs/subscribe"),
        ("GET", "/subscribe"),
        ("GET", "/run"),
        ("GET", "/steps"),
        ("POST", "/cancel"),
        ("POST", "/retrigger"),
        ("DELETE", "/run"),
    }
    # The only 4xx answers: the second cancel (409), and the deleted run, which the watcher's
    # EventSource reconnects to and useRunActions.getRun asks for (404 each).
    assert set(browsing.traffic.client_errors) == {
        (409, "POST", API + "/cancel"),
        (404, "GET", API + "/subscribe"),
        (404, "GET", API + "/run"),
    }
