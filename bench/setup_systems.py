"""Where the benchmark's pieces live, and the set-up that makes each system runnable.

Every ``setup_*`` function is idempotent and fast when its work is done already: the harness
(``bench/run.py``) calls the ones the selected systems name (:attr:`catalog.System.setup`).
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from playwright_tests.browser import CHROMIUM

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

NODE_DIR = BENCH / "upstream_node"
UPSTREAM_PG_DIR = BENCH / "upstream_pg"
UPSTREAM_BROWSER_DIR = BENCH / "upstream_browser"
DBOS_VENV = BENCH / ".venv-dbos"
DBOS_REQUIREMENTS = BENCH / "requirements-dbos.txt"
PROJECT_PYTHON = ROOT / ".venv" / "bin" / "python"
POSTGRES_SCRIPT = ROOT / "scripts" / "postgres"
#: The PostgreSQL suite's server, a ``postgresql://`` URL (``bench/systems/pg_suite.py`` reads it).
POSTGRES_URL = "DURABLY_BENCH_POSTGRES_URL"


def _run_setup(argv: Sequence[str], cwd: Path) -> None:
    print(f"setup: {' '.join(argv)}  (in {cwd.relative_to(ROOT)})", file=sys.stderr)
    subprocess.run(argv, cwd=cwd, check=True, stdout=sys.stderr)


def setup_node() -> None:
    """``npm ci`` in bench/upstream_node unless node_modules matches package-lock.json."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SystemExit("node and npm are needed for the upstream and raw_node systems")
    installed = NODE_DIR / "node_modules" / ".package-lock.json"
    binding = NODE_DIR / "node_modules/better-sqlite3/build/Release/better_sqlite3.node"
    lock = NODE_DIR / "package-lock.json"
    if (
        installed.exists()
        and binding.exists()
        and installed.stat().st_mtime >= lock.stat().st_mtime
    ):
        return
    # better-sqlite3 compiles its SQLite from source when no prebuilt binary can be fetched:
    # a few minutes on two cores, once.
    _run_setup(["npm", "ci", "--no-audit", "--no-fund"], NODE_DIR)


def setup_dbos() -> None:
    """Create bench/.venv-dbos with the pinned DBOS unless it is there already."""
    python = DBOS_VENV / "bin" / "python"
    wanted = next(
        line.strip()
        for line in DBOS_REQUIREMENTS.read_text().splitlines()
        if line.lower().startswith("dbos==")
    )
    if python.exists():
        probe = subprocess.run(
            [
                str(python),
                "-c",
                "import importlib.metadata as m; print('dbos==' + m.version('dbos'))",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == wanted:
            return
    else:
        _run_setup([sys.executable, "-m", "venv", str(DBOS_VENV)], BENCH)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run_setup([*pip, "-r", str(DBOS_REQUIREMENTS)], BENCH)


def setup_browser() -> None:
    """Check for Playwright and Chromium; bring the demo's site up to date (``build``)."""
    probe = subprocess.run(
        [str(PROJECT_PYTHON), "-c", "import playwright"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        raise SystemExit("the browser systems need the playwright package in .venv")
    if not CHROMIUM.exists():
        raise SystemExit(f"the browser systems need {CHROMIUM}: apt-get install chromium")
    # A no-op when .build/site matches its inputs, the durably_web package included: the
    # browser runs the current engine.
    _run_setup([str(PROJECT_PYTHON), "-m", "durably_web", "build"], ROOT)


def setup_upstream_browser() -> None:
    """``npm ci`` in bench/upstream_browser unless current, then bundle it unless current."""
    setup_browser()
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SystemExit("node and npm are needed for upstream_chromium and raw_sqlocal")
    installed = UPSTREAM_BROWSER_DIR / "node_modules" / ".package-lock.json"
    lock = UPSTREAM_BROWSER_DIR / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        # --ignore-scripts: @coji/durably depends on better-sqlite3, which a browser never
        # loads; without it npm would compile it (minutes). esbuild needs no install script.
        npm_ci = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
        _run_setup(npm_ci, UPSTREAM_BROWSER_DIR)
    bundle = UPSTREAM_BROWSER_DIR / "dist" / "page.js"
    inputs = ("page.mjs", "sqlocal-worker.mjs", "build.mjs", "package-lock.json")
    if not bundle.exists() or any(
        (UPSTREAM_BROWSER_DIR / name).stat().st_mtime > bundle.stat().st_mtime for name in inputs
    ):
        _run_setup(["node", "build.mjs"], UPSTREAM_BROWSER_DIR)


def setup_postgres() -> None:
    """Start one throwaway PostgreSQL cluster for the whole run, unless one is given.

    ``scripts/postgres start`` (which installs Debian's server if missing) on a free loopback
    port; its URL is exported as :data:`POSTGRES_URL` for the systems' processes, and the
    cluster is stopped and deleted when the harness exits. If :data:`POSTGRES_URL` is set
    already, that server is used as it is.
    """
    if os.environ.get(POSTGRES_URL):
        return
    print(f"setup: {POSTGRES_SCRIPT.relative_to(ROOT)} start", file=sys.stderr)
    out = subprocess.run(
        [str(POSTGRES_SCRIPT), "start"], capture_output=True, text=True, check=True
    ).stdout
    cluster = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    atexit.register(subprocess.run, [str(POSTGRES_SCRIPT), "stop", cluster["DIR"]], check=False)
    os.environ[POSTGRES_URL] = cluster["URL"]


def setup_upstream_pg() -> None:
    """Start the server, then ``npm ci --ignore-scripts`` in bench/upstream_pg unless current."""
    setup_postgres()
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SystemExit("node and npm are needed for the upstream_pg system")
    installed = UPSTREAM_PG_DIR / "node_modules" / ".package-lock.json"
    lock = UPSTREAM_PG_DIR / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        # --ignore-scripts: @coji/durably depends on better-sqlite3, which this agent never
        # loads (it uses kysely's PostgresDialect); without it npm would compile it (minutes).
        _run_setup(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], UPSTREAM_PG_DIR)


def setup_dbos_pg() -> None:
    """Start the server, then make DBOS's venv (its pins include psycopg for PostgreSQL)."""
    setup_postgres()
    setup_dbos()
