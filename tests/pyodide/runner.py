"""Run the engine's test suite inside Pyodide (CPython 3.14 on WASM), over the real JS bridge.

pytest's own runner cannot run there: pytest-asyncio drives its loop with
``run_until_complete``, which Pyodide's browser event loop cannot do (it cannot block, and
Node 20 has no JSPI to fake it). This module is a small async runner that does the part of
pytest the suite needs, on the loop Pyodide already runs:

- imports the test modules (with pytest's assertion rewriting, so a failed ``assert`` says
  what it compared), collects ``test_*`` functions and expands ``pytest.mark.parametrize``
  (ids like pytest's: ``test_x[memory-options0-message]``);
- resolves fixtures by parameter name from :data:`FIXTURES`, which mirrors
  ``tests/conftest.py`` and ``tests/integration/conftest.py`` with connections through
  :class:`~durably_web.adapters.pyodide.PyodideConnection` (sync, async and generator
  fixtures, torn down in reverse order);
- runs each test once per backend (only tests whose fixtures use ``backend``), awaiting async
  tests on Pyodide's loop, with warnings turned into errors (``filterwarnings = error``), a
  timeout, and every task the test leaked cancelled afterwards (pytest-asyncio closes a fresh
  loop per test);
- skips what cannot apply here, with a reason: ``slow`` tests, tests that start
  subprocesses (the CLI) or need host tools, tests needing fixtures it does not provide, and
  tests for PostgreSQL only (``backend`` parametrized, indirectly, to ``postgres``); a test
  parametrized to SQLite backends runs on this runner's own.
  Pyodide 314 has the ``sqlite3`` module, so the tests of the CPython sqlite3 adapter run too
  (on Pyodide's in-memory file system); a build without it skips them.
- after the last test, collects garbage and fails on unraisable exceptions (an unclosed
  database's ``ResourceWarning``), as pytest does; ``gc`` does it after every test instead,
  to find the test responsible.

``pytest`` itself (``raises``, ``approx``, ``mark``, ``skip``) is real: its wheels are
unpacked by :mod:`tests.pyodide.bootstrap` before this module is imported.

The host (``tests/pyodide/run_in_node.mjs``, ``playwright_tests/pages/tests/runner-worker.mjs``)
calls ``await run_suite(bridge, host, config_json)`` and gets a JSON summary back::

    {"counts": {"passed": 256, "failed": 0, "skipped": 4}, "passed": [...],
     "failed": [{"name", "phase", "error", "traceback"}], "skipped": [{"name", "reason"}],
     "loop_errors": [{"name", "message"}], "seconds": 5.3, "slowest": [[name, ms], ...],
     "python": "3.14.2 ...", "platform": "emscripten", "backends": ["memory", "file"],
     "journal_modes": {"memory": "memory", "file": "delete"}}

``host`` is a JS object with ``deleteDatabase(filename)`` (remove a database file and its
journals from the SQLite VFS) and optionally ``testStarted(name)`` (progress, for a
watchdog); ``bridge`` is the runtime's ``sqlite_bridge.mjs``.
"""

from __future__ import annotations

import ast
import asyncio
import gc
import importlib
import importlib.util
import inspect
import io
import itertools
import json
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import pytest

from durably_web import Durably, create_durably
from durably_web.browser.boot import PRAGMAS
from durably_web.storage.connection import Connection
from durably_web.storage.sqlite import SQLiteStore
from durably_web.testing import FakeClock

__all__ = ["BACKENDS", "FIXTURES", "Backend", "collect", "run_suite"]

# -- backends --------------------------------------------------------------------------------

# The browser engine's own pragmas per durability (WAL needs exclusive locking mode on the
# opfs-sahpool VFS, which has no shared memory): the OPFS backends test exactly those.
_WAL = PRAGMAS["NORMAL"]
_DELETE = PRAGMAS["FULL"]


@dataclass(frozen=True, slots=True)
class Backend:
    """How the ``connect`` fixture opens databases.

    Attributes:
        name: the test id part (``test_x[memory]``).
        memory: ``:memory:`` rather than a file.
        shared: one connection per test, returned by every ``connect()`` (CPython's
            ``memory`` backend); otherwise a new connection to one file per call (``file``).
        pragmas: run on every connection after opening.

    """

    name: str
    memory: bool
    shared: bool
    pragmas: tuple[str, ...] = ()


BACKENDS: dict[str, Backend] = {
    # Node: sqlite-wasm in memory, like the engine under Node.
    "memory": Backend("memory", memory=True, shared=True),
    # Node: several connections to one file in sqlite-wasm's in-memory file system (like
    # CPython's "file" backend: data_version moves when another connection commits).
    "file": Backend("file", memory=False, shared=False),
    # Browser: one connection to an OPFS file with the engine's default (NORMAL) pragmas.
    "opfs": Backend("opfs", memory=False, shared=True, pragmas=_WAL),
    # Browser: several connections to one OPFS file, DELETE journal (durability FULL).
    "opfs-full": Backend("opfs-full", memory=False, shared=False, pragmas=_DELETE),
}

# -- fixtures: a mirror of tests/conftest.py and tests/integration/conftest.py ---------------

ConnectionFactory = Callable[[], Connection]
MakeDurably = Callable[..., Awaitable[Durably]]
FIXTURES: dict[str, Callable[..., Any]] = {}
# Autouse fixtures by module prefix (tests/integration/conftest.py: the recorder).
AUTOUSE: dict[str, tuple[str, ...]] = {"tests.integration.": ("recorder",)}


def fixture(function: Callable[..., Any]) -> Callable[..., Any]:
    """Register a fixture under its function name."""
    FIXTURES[function.__name__] = function
    return function


@dataclass
class Session:
    """What fixtures need from the host, and the backend of the test being run."""

    bridge: Any
    host: Any
    backend: Backend | None = None
    databases: Iterator[int] = field(default_factory=itertools.count)
    # What each backend really got (``PRAGMA journal_mode`` of its first connection).
    journal_modes: dict[str, str] = field(default_factory=dict)


@fixture
def backend(session: Session) -> str:
    """The backend this run of the test uses (see :data:`BACKENDS`)."""
    assert session.backend is not None, "backend used by a test collected without one"
    return session.backend.name


@fixture
def connect(backend: str, session: Session) -> Iterator[ConnectionFactory]:
    """Open connections to one database through the bridge; close and delete it afterwards."""
    from durably_web.adapters.pyodide import PyodideConnection

    spec = BACKENDS[backend]
    filename = ":memory:" if spec.memory else f"/durably-test-{next(session.databases)}.db"
    opened: list[Connection] = []

    def factory() -> Connection:
        if spec.shared and opened:
            return opened[0]
        connection = PyodideConnection(session.bridge, filename, spec.pragmas)
        opened.append(connection)
        if backend not in session.journal_modes:
            [row] = connection.query("PRAGMA journal_mode")
            session.journal_modes[backend] = str(row["journal_mode"])
        return connection

    try:
        yield factory
    finally:
        for connection in opened:
            connection.close()
        if not spec.memory:
            session.host.deleteDatabase(filename)


@fixture
def bridge(session: Session) -> Any:
    """The SQLite bridge (the runtime's ``sqlite_bridge.mjs``): only here, on Pyodide."""
    return session.bridge


@fixture
def database_file(session: Session) -> Iterator[str]:
    """A database file name the bridge can open (deleted afterwards), for code that opens
    its own connections (``durably_web.browser.boot``).
    """
    filename = f"/durably-test-{next(session.databases)}.db"
    try:
        yield filename
    finally:
        session.host.deleteDatabase(filename)


@fixture
def clock() -> FakeClock:
    """A clock tests move by hand."""
    return FakeClock()


@fixture
def database(backend: str, connect: ConnectionFactory) -> Any:
    """The test's database (``tests.databases.TestDatabase``) over the bridge's connections."""
    from tests.databases import TestDatabase

    return TestDatabase(backend, connect=connect)


@fixture
async def store(connect: ConnectionFactory, clock: FakeClock) -> SQLiteStore:
    """A migrated store."""
    store = SQLiteStore(connect())
    await store.migrate(clock.now())
    return store


@fixture
async def make_durably(connect: ConnectionFactory, clock: FakeClock) -> AsyncIterator[MakeDurably]:
    """Build migrated engines on the test database with the fake clock; stopped at teardown."""
    made: list[Durably] = []

    async def factory(jobs: dict[str, Any] | None = None, **options: Any) -> Durably:
        options.setdefault("clock", clock)
        durably = create_durably(connect(), **options)
        if jobs:
            durably.register(jobs)
        await durably.migrate()
        made.append(durably)
        return durably

    yield factory
    for durably in made:
        await durably.stop(timeout=0)


@fixture
def recorder() -> Any:
    """A fresh recorder of step executions for each test."""
    from tests import jobs

    jobs.recorder = jobs.Recorder()
    return jobs.recorder


@fixture
def tmp_path() -> Path:
    """A fresh directory in Pyodide's in-memory file system."""
    return Path(tempfile.mkdtemp(prefix="durably-test-"))


class CaptureResult(NamedTuple):
    """What :meth:`Capsys.readouterr` returns, like pytest's."""

    out: str
    err: str


class Capsys:
    """The part of pytest's ``capsys`` the tests use: ``readouterr()``."""

    def __init__(self) -> None:
        self._out = io.StringIO()
        self._err = io.StringIO()

    def readouterr(self) -> CaptureResult:
        """Return what was written to stdout and stderr since the last call, and reset."""
        result = CaptureResult(self._out.getvalue(), self._err.getvalue())
        for buffer in (self._out, self._err):
            buffer.seek(0)
            buffer.truncate()
        return result


@fixture
def capsys() -> Iterator[Capsys]:
    """Capture ``sys.stdout`` and ``sys.stderr`` during the test."""
    capture = Capsys()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = capture._out, capture._err
    try:
        yield capture
    finally:
        sys.stdout, sys.stderr = saved


# -- collection ------------------------------------------------------------------------------

# Tests that cannot apply inside Pyodide, by id without parameters.
SKIP: dict[str, str] = {
    "tests/unit/test_public_api.py::test_core_imports_no_adapter_cli_or_server": (
        "starts a Python subprocess (Pyodide has no processes)"
    ),
    "tests/integration/test_preload.py::test_the_real_client_graph_is_what_index_mjs_reaches": (
        "reads the JS client's files from the package, the build's side (the served wheel "
        "Pyodide installs here carries no web/ files: the site serves them beside it)"
    ),
}
# Modules that cannot apply inside Pyodide, skipped whole.
SKIP_MODULES: dict[str, str] = {
    "tests/integration/test_cli.py": "runs the CLI as real subprocesses (Pyodide has no processes)",
    "tests/integration/test_cli_faults.py": (
        "runs the CLI as real subprocesses (Pyodide has no processes)"
    ),
    "tests/integration/test_storage_faults.py": (
        "holds a file lock from a second thread (Pyodide has no threads) over the CPython "
        "sqlite3 adapter"
    ),
    "tests/integration/test_sitebuild.py": (
        "builds the site with the npm registry, pip and Node (host tools)"
    ),
    "tests/integration/test_precompress.py": (
        "tests the static server's compressed siblings, written by the build with brotli "
        "(a host tool, not in Pyodide) and served over HTTP (threads)"
    ),
    "tests/integration/test_site_apps.py": (
        "builds apps and runs the CLI and HTTP servers (host tools, processes, threads)"
    ),
    "tests/integration/test_cli_waits.py": "runs the CLI as real subprocesses (Pyodide has no processes)",
    "tests/integration/test_cli_worker.py": (
        "runs durably-web worker and the examples as real subprocesses"
    ),
    "tests/unit/test_json_value_js.py": "runs the JS client's json.mjs under Node (no processes here)",
    "tests/unit/test_errors_js.py": "runs the JS client's errors.mjs under Node (no processes here)",
    "tests/unit/test_page_client_micropython.py": (
        "runs MicroPython under Node and reads the JS client's files (no processes here)"
    ),
    "tests/unit/test_layers.py": "reads the package's source files (Pyodide's wheel ships .pyc)",
    "tests/unit/test_eventloop.py": (
        "starts event loops of its own (asyncio.run, uvloop) for the CLI's --loop: under "
        "Pyodide the WebLoop is the only loop, and replacing it broke the runner (V8 aborted)"
    ),
    "tests/unit/test_dashboard_timeline.py": (
        "loads the dashboard's page module from the package's web/ files (not in the wheel's "
        "site-packages here); Playwright runs the dashboard under py in Chromium"
    ),
    "tests/unit/test_demo_words.py": (
        "loads the demo's page module from the package's web/ files (not in the wheel's "
        "site-packages here); Playwright runs the demo under py in Chromium"
    ),
    "tests/unit/test_live_views.py": (
        "page-side views: under Pyodide they run in pages, checked by the Playwright py tests "
        "(playwright_tests/demo/test_live_views.py); their in-process timing under this Node "
        "event loop is not yet matched (later work)"
    ),
    "tests/unit/test_protocol_typescript.py": (
        "compares the committed JS client files and imports them under Node (no processes here)"
    ),
}
# Modules needing these (absent from Pyodide) are skipped whole, with the reason.
MISSING_MODULES = {
    "sqlite3": "needs the sqlite3 module, which this Pyodide build lacks",
    "_sqlite3": "needs the sqlite3 module, which this Pyodide build lacks",
}
DEFAULT_DIRS = ("tests/contract", "tests/unit", "tests/integration", "tests/in_pyodide")


@dataclass
class Case:
    """One test to run: a function, its direct parameters and its backend."""

    name: str
    function: Callable[..., Any]
    module: str
    params: dict[str, Any]
    backend: Backend | None
    skip: str | None = None


@dataclass
class Outcome:
    """What running a :class:`Case` gave."""

    name: str
    status: str  # "passed" | "failed" | "skipped"
    ms: float = 0.0
    phase: str = ""
    error: str = ""
    traceback: str = ""
    reason: str = ""
    loop_errors: list[str] = field(default_factory=list)


def load_module(root: Path, relative: str) -> ModuleType:
    """Import a test module from ``root / relative`` with pytest's assert rewriting."""
    path = root / relative
    name = relative.removesuffix(".py").replace("/", ".")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None:
        raise ImportError(f"cannot import {relative}")
    module = importlib.util.module_from_spec(spec)
    source = path.read_bytes()
    tree = ast.parse(source, filename=str(path))
    try:
        from _pytest.assertion.rewrite import rewrite_asserts
    except ImportError:  # pragma: no cover - a future pytest; plain asserts still work
        pass
    else:
        rewrite_asserts(tree, source, str(path), None)
    code = compile(tree, str(path), "exec", dont_inherit=True)
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _marks(obj: Any) -> list[Any]:
    marks = getattr(obj, "pytestmark", [])
    return list(marks) if isinstance(marks, list | tuple) else [marks]


def _id_of(value: Any, argname: str, index: int) -> str:
    """pytest's id for one parameter value."""
    if isinstance(value, str):
        return value.encode("unicode_escape").decode("ascii")
    if value is None or isinstance(value, int | float | complex | bool):
        return str(value)
    if isinstance(value, type) or inspect.isfunction(value):
        return str(value.__name__)
    return f"{argname}{index}"


def _parametrize(mark: Any) -> list[tuple[str, dict[str, Any], list[Any]]]:
    """Expand one parametrize mark into ``(id, {argname: value}, marks)`` triples."""
    argnames = mark.args[0]
    names = (
        [n.strip() for n in argnames.split(",")] if isinstance(argnames, str) else list(argnames)
    )
    ids = mark.kwargs.get("ids")
    if ids is not None and not callable(ids):
        ids = list(ids)
    param_set = type(pytest.param(None))
    expanded = []
    for index, raw in enumerate(list(mark.args[1])):
        marks: list[Any] = []
        explicit_id = None
        if isinstance(raw, param_set):
            values = tuple(raw.values)
            marks = list(raw.marks)
            explicit_id = raw.id
        else:
            values = (raw,) if len(names) == 1 else tuple(raw)
        if explicit_id is None and ids is not None:
            explicit_id = (
                ids(values[0] if len(names) == 1 else values) if callable(ids) else ids[index]
            )
        part = (
            str(explicit_id)
            if explicit_id is not None
            else "-".join(_id_of(v, n, index) for n, v in zip(names, values, strict=True))
        )
        expanded.append((part, dict(zip(names, values, strict=True)), marks))
    return expanded


def _closure(function: Callable[..., Any], module: str, direct: set[str]) -> set[str]:
    """Every fixture name a test needs, through the fixtures' own parameters."""
    needed: set[str] = set()
    todo = [p for p in inspect.signature(function).parameters if p not in direct]
    for prefix, names in AUTOUSE.items():
        if module.startswith(prefix):
            todo.extend(names)
    while todo:
        name = todo.pop()
        if name in needed or name == "session":
            continue
        needed.add(name)
        if name in FIXTURES:
            todo.extend(inspect.signature(FIXTURES[name]).parameters)
    return needed


def collect(
    root: Path, relatives: Sequence[str], backends: Sequence[Backend]
) -> tuple[list[Case], list[Outcome]]:
    """Import the modules and expand their tests; return cases and module-level outcomes."""
    cases: list[Case] = []
    outcomes: list[Outcome] = []
    for relative in relatives:
        if relative in SKIP_MODULES:
            outcomes.append(Outcome(relative, "skipped", reason=SKIP_MODULES[relative]))
            continue
        try:
            module = load_module(root, relative)
        except ModuleNotFoundError as exc:
            reason = MISSING_MODULES.get(str(exc.name).split(".")[0])
            if reason is None:
                outcomes.append(_error(relative, "collect", exc))
            else:
                outcomes.append(Outcome(relative, "skipped", reason=reason))
            continue
        except BaseException as exc:  # noqa: BLE001 - a broken module is a failed outcome
            outcomes.append(_error(relative, "collect", exc))
            continue
        module_marks = _marks(module)
        for attr, function in vars(module).items():
            if not attr.startswith("test_") or not callable(function) or inspect.isclass(function):
                continue
            if getattr(function, "__module__", None) != module.__name__:
                continue  # imported from elsewhere
            cases.extend(_expand(relative, module.__name__, function, module_marks, backends))
    return cases, outcomes


def _expand(
    relative: str,
    module: str,
    function: Callable[..., Any],
    module_marks: list[Any],
    backends: Sequence[Backend],
) -> list[Case]:
    marks = module_marks + _marks(function)
    variants: list[tuple[list[str], dict[str, Any], list[Any]]] = [([], {}, [])]
    postgres_only = False
    for mark in marks:
        if mark.name != "parametrize":
            continue
        if mark.args[0] == "backend" and mark.kwargs.get("indirect"):
            # Backends chosen on CPython: here a test runs on this runner's SQLite backends,
            # unless it was meant for PostgreSQL only.
            postgres_only = all(value == "postgres" for value in mark.args[1])
            continue
        variants = [
            ([*ids, part], {**params, **values}, [*extra, *more])
            for ids, params, extra in variants
            for part, values, more in _parametrize(mark)
        ]
    base = f"{relative}::{function.__name__}"
    cases = []
    for ids, params, extra in variants:
        closure = _closure(function, module, set(params))
        missing = sorted(n for n in closure if n not in FIXTURES and n not in params)
        runs: list[Backend | None] = list(backends) if "backend" in closure else [None]
        for spec in runs:
            parts = ([spec.name] if spec else []) + ids
            name = f"{base}[{'-'.join(parts)}]" if parts else base
            skip = _skip_reason(base, marks + extra, missing, postgres_only)
            cases.append(Case(name, function, module, params, spec, skip))
    return cases


def _skip_reason(
    base: str, marks: list[Any], missing: list[str], postgres_only: bool
) -> str | None:
    if base in SKIP:
        return SKIP[base]
    if postgres_only:
        return "runs on PostgreSQL, which the engine in Pyodide cannot reach"
    for mark in marks:
        if mark.name == "slow":
            return "marked slow (real processes or long timings)"
        if mark.name == "skip":
            return str(mark.kwargs.get("reason", mark.args[0] if mark.args else "skip mark"))
        conditions = mark.args if mark.name == "skipif" else ()
        if any(c is True for c in conditions):  # string conditions are not evaluated
            return str(mark.kwargs.get("reason", "skipif"))
    if missing:
        return f"needs fixtures the Pyodide runner does not provide: {', '.join(missing)}"
    return None


# -- running ---------------------------------------------------------------------------------


def _error(name: str, phase: str, exc: BaseException) -> Outcome:
    text = "".join(traceback.format_exception(exc))
    return Outcome(
        name, "failed", phase=phase, error=f"{type(exc).__name__}: {exc}", traceback=text
    )


class _Fixtures:
    """Sets fixtures up for one test, by parameter name, and tears them down in reverse."""

    def __init__(self, session: Session, params: dict[str, Any]) -> None:
        self.values: dict[str, Any] = {"session": session, **params}
        self.finalizers: list[Callable[[], Awaitable[None]]] = []

    async def get(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        function = FIXTURES[name]
        kwargs = {p: await self.get(p) for p in inspect.signature(function).parameters}
        if inspect.isasyncgenfunction(function):
            agen = function(**kwargs)
            value = await agen.__anext__()
            self.finalizers.append(lambda: _finish_async(agen, name))
        elif inspect.isgeneratorfunction(function):
            gen = function(**kwargs)
            value = next(gen)
            self.finalizers.append(lambda: _finish_sync(gen, name))
        else:
            value = function(**kwargs)
            if inspect.isawaitable(value):
                value = await value
        self.values[name] = value
        return value

    async def teardown(self) -> BaseException | None:
        """Run every finalizer (newest first); return the first error."""
        first: BaseException | None = None
        while self.finalizers:
            try:
                await self.finalizers.pop()()
            except BaseException as exc:  # noqa: BLE001 - reported as the test's error
                first = first or exc
        return first


async def _finish_async(agen: Any, name: str) -> None:
    try:
        await agen.__anext__()
    except StopAsyncIteration:
        return
    raise RuntimeError(f"fixture {name} yielded twice")


async def _finish_sync(gen: Any, name: str) -> None:
    try:
        next(gen)
    except StopIteration:
        return
    raise RuntimeError(f"fixture {name} yielded twice")


async def _call(case: Case, fixtures: _Fixtures, autouse: Sequence[str]) -> None:
    for name in autouse:
        await fixtures.get(name)
    parameters = inspect.signature(case.function).parameters
    kwargs = {name: await fixtures.get(name) for name in parameters}
    result = case.function(**kwargs)
    if inspect.isawaitable(result):
        await result


async def run_case(
    case: Case, session: Session, timeout: float, collect_garbage: bool = False
) -> Outcome:
    """Set up, run and tear down one test; never raises."""
    if case.skip:
        return Outcome(case.name, "skipped", reason=case.skip)
    session.backend = case.backend
    if session.host is not None and hasattr(session.host, "testStarted"):
        session.host.testStarted(case.name)  # the host's watchdog sees progress
    autouse = [
        n for prefix, names in AUTOUSE.items() if case.module.startswith(prefix) for n in names
    ]
    fixtures = _Fixtures(session, case.params)
    current = asyncio.current_task()
    before = asyncio.all_tasks()
    unraisable: list[str] = []
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _unraisable_hook(unraisable)
    # Pyodide's loop reports a task's exception as unhandled when the task fails before
    # anyone awaits it, even if the test awaits it later (CPython logs only exceptions never
    # retrieved, and pytest ignores those logs too): keep them as notes, not failures.
    loop = asyncio.get_running_loop()
    loop_errors: list[str] = []
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(_describe(context)))
    started = time.perf_counter()
    outcome: Outcome | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pyproject: filterwarnings = ["error"]
        try:
            await asyncio.wait_for(_call(case, fixtures, autouse), timeout)
        except pytest.skip.Exception as exc:
            outcome = Outcome(case.name, "skipped", reason=str(exc.msg))
        except TimeoutError as exc:
            outcome = _error(case.name, "call", exc)
            outcome.error = f"timed out after {timeout} s"
        except BaseException as exc:  # noqa: BLE001 - pytest.fail() raises a BaseException
            outcome = _error(case.name, "call", exc)
        error = await fixtures.teardown()
        if error is not None and outcome is None:
            outcome = _error(case.name, "teardown", error)
        leaked = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
        for task in leaked:
            task.cancel()
        if leaked:
            await asyncio.gather(*leaked, return_exceptions=True)
        if collect_garbage:
            gc.collect()
    sys.unraisablehook = previous_hook
    loop.set_exception_handler(previous_handler)
    ms = (time.perf_counter() - started) * 1000
    if outcome is None and unraisable:
        outcome = Outcome(
            case.name,
            "failed",
            phase="teardown",
            error="unraisable exception",
            traceback="\n".join(unraisable),
        )
    if outcome is None:
        outcome = Outcome(case.name, "passed")
    outcome.ms = ms
    outcome.loop_errors = loop_errors
    return outcome


def _unraisable_hook(into: list[str]) -> Callable[[Any], None]:
    """Collect unraisable exceptions (pytest turns them into errors: filterwarnings = error)."""

    def hook(info: Any) -> None:
        text = "".join(traceback.format_exception(info.exc_value)) if info.exc_value else ""
        into.append(f"{info.err_msg or 'Exception ignored in'}: {info.object!r}\n{text}")

    return hook


def _final_collection() -> Outcome | None:
    """Collect garbage once more, as pytest does at the end; fail on what it finalizes badly."""
    unraisable: list[str] = []
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _unraisable_hook(unraisable)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            gc.collect()
            gc.collect()
    finally:
        sys.unraisablehook = previous_hook
    if not unraisable:
        return None
    return Outcome(
        "session (final garbage collection; run with gc to find the tests)",
        "failed",
        phase="teardown",
        error="unraisable exception",
        traceback="\n".join(unraisable),
    )


def _describe(context: dict[str, Any]) -> str:
    exc = context.get("exception")
    message = str(context.get("message") or "unhandled exception in the event loop")
    return f"{message}: {type(exc).__name__}: {exc}" if exc is not None else message


def discover(root: Path, dirs: Sequence[str] = DEFAULT_DIRS) -> list[str]:
    """The test modules under ``dirs``, as paths relative to ``root``."""
    found = []
    for directory in dirs:
        for path in sorted((root / directory).glob("test_*.py")):
            found.append(path.relative_to(root).as_posix())
    return found


async def run_suite(bridge: Any, host: Any, config_json: str = "{}") -> str:
    """Run the suite; return the JSON summary.

    ``config_json`` keys (all optional): ``root`` (the directory holding ``tests/``, default
    the parent of this package), ``modules`` (paths relative to root, default every
    ``test_*.py`` in tests/contract, tests/unit, tests/integration, tests/in_pyodide), ``backends`` (names in
    :data:`BACKENDS`, default ``["memory"]``), ``match`` (run only tests whose id contains
    it), ``timeout`` (seconds per test, default 60), ``verbose`` (print each outcome),
    ``gc`` (collect garbage after every test).
    """
    config = json.loads(config_json)
    root = Path(config.get("root") or Path(__file__).resolve().parents[2])
    backends = [BACKENDS[name] for name in config.get("backends") or ["memory"]]
    modules = config.get("modules") or discover(root)
    timeout = float(config.get("timeout", 60))
    match = config.get("match")
    verbose = bool(config.get("verbose"))
    collect_garbage = bool(config.get("gc"))

    started = time.perf_counter()
    session = Session(bridge, host)
    cases, outcomes = collect(root, modules, backends)
    for case in cases:
        if match and match not in case.name:
            continue
        outcome = await run_case(case, session, timeout, collect_garbage)
        outcomes.append(outcome)
        if verbose:
            extra = (
                f" ({outcome.reason})"
                if outcome.reason
                else f" {outcome.error}"
                if outcome.error
                else ""
            )
            print(
                f"{outcome.status.upper():7} {outcome.name} {outcome.ms:.0f} ms{extra}", flush=True
            )

    final = _final_collection()
    if final is not None:
        outcomes.append(final)
    by_status: dict[str, list[Outcome]] = {"passed": [], "failed": [], "skipped": []}
    for outcome in outcomes:
        by_status[outcome.status].append(outcome)
    timed = sorted((o for o in outcomes if o.ms), key=lambda o: -o.ms)
    return json.dumps(
        {
            "python": sys.version,
            "platform": sys.platform,
            "backends": [b.name for b in backends],
            "journal_modes": session.journal_modes,
            "counts": {status: len(items) for status, items in by_status.items()},
            "passed": [o.name for o in by_status["passed"]],
            "failed": [
                {"name": o.name, "phase": o.phase, "error": o.error, "traceback": o.traceback}
                for o in by_status["failed"]
            ],
            "skipped": [{"name": o.name, "reason": o.reason} for o in by_status["skipped"]],
            "loop_errors": [
                {"name": o.name, "message": message} for o in outcomes for message in o.loop_errors
            ],
            "seconds": round(time.perf_counter() - started, 3),
            "slowest": [[o.name, round(o.ms, 1)] for o in timed[:10]],
        }
    )
