"""Apps and the Node-free build: ``durably-web new``, ``build DIR``, the npm fetch, shipped archives.

The builds here use the real npm registry (tarballs are cached per test in a temporary
``DURABLY_WEB_CACHE``, or shared with this checkout's extraction) and this checkout's
compiled archives (``.build/pyc``, copied), so they need neither Node nor pip unless a test
says so. A local HTTP server stands in for a broken registry.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.server
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright_tests.site import seed_caches

from durably_web import create_durably
from durably_web.job import jobs_in_module
from durably_web.sitebuild import BuildError, BuildResult, Layout, build, is_stale, npm
from durably_web.sitebuild.build import service_worker_script
from durably_web.sitebuild.layout import PACKAGE, SERVICE_WORKER
from durably_web.sitebuild.mirror import MANIFEST
from durably_web.sitebuild.precompiled import INDEX, write_shipped
from durably_web.sitebuild.preload import MARKER
from durably_web.sitebuild.starter import new_app
from durably_web.sitebuild.wheel_self import build_self_wheel

REPO = Path(__file__).resolve().parents[2]
STARTER = {"index.html", "app.py", "jobs.py", "style.css", "README.md"}


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durably_web", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


@pytest.fixture(scope="session")
def repo_build() -> BuildResult:
    """This checkout's demo build: its extracted npm files and compiled archives are reused."""
    return build(REPO)


def site_files(site: Path) -> set[str]:
    return {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()}


# ---------------------------------------------------------------------------------------------
# durably-web new


def test_new_writes_the_starter_app(tmp_path: Path) -> None:
    result = cli("new", "my-app", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    app = tmp_path / "my-app"
    assert {path.name for path in app.iterdir()} == STARTER
    for name in STARTER:
        assert (app / name).read_bytes() == (Layout(REPO).starter / name).read_bytes()
    page = (app / "index.html").read_text()
    assert 'id="status" data-status="loading"' in page
    assert "startOffline" in page and "./jobs.py" in page and "./app.py" in page
    assert result.stdout.splitlines()[-1] == "next: durably-web serve my-app"


def test_new_never_writes_into_a_non_empty_directory_or_over_a_file(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    (tmp_path / "file").write_text("a file")
    for name, what in (("full", "is not empty"), ("file", "is a file")):
        result = cli("new", name, cwd=tmp_path)
        assert result.returncode == 1
        assert result.stderr == (
            f"durably-web: error: {name} {what}; give a new directory for the app\n"
        )
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    assert (tmp_path / "file").read_text() == "a file"
    (tmp_path / "empty").mkdir()
    assert len(new_app(tmp_path / "empty")) == len(STARTER)  # an empty directory is fine


def test_the_starter_job_counts_primes_in_checkpointed_steps(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("starter_jobs", Layout(REPO).starter / "jobs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.primes_between(0, 2) == {"count": 0, "largest": None}
    assert module.primes_between(0, 30) == {"count": 10, "largest": 29}
    assert module.primes_between(90, 100) == {"count": 1, "largest": 97}

    async def run() -> None:
        durably = create_durably(f"sqlite:///{tmp_path / 'app.db'}", preserve_steps=True)
        durably.register(jobs_in_module(module))
        await durably.migrate()
        durably.start()
        try:
            result = await durably.jobs.count_primes.trigger_and_wait(
                {"limit": 100_000, "chunks": 7}, timeout=60
            )
            assert result.output.model_dump() == {
                "limit": 100_000,
                "primes": 9592,
                "largest": 99991,
            }
            steps = await durably.get_steps(result.id)
            assert [step.name for step in steps] == [f"chunk-{i}" for i in range(7)]
            run = await durably.get_run(result.id)
            assert run is not None and run.progress is not None
            assert (run.progress.current, run.progress.total) == (7, 7)
            assert run.progress.message == "9,592 primes below 100,000"
        finally:
            await durably.stop()

    asyncio.run(run())


# ---------------------------------------------------------------------------------------------
# durably-web build DIR / serve DIR


@pytest.mark.slow
def test_build_dir_serves_the_app_at_the_top_and_follows_its_files(
    repo_build: BuildResult, tmp_path: Path
) -> None:
    app = tmp_path / "app"
    new_app(app)
    seed_caches(app)
    (app / "data").mkdir()
    (app / "data" / "rows.json").write_text("[1, 2, 3]")
    (app / ".env").write_text("SECRET=1")
    (app / "__pycache__").mkdir()
    (app / "__pycache__" / "jobs.cpython-311.pyc").write_bytes(b"\0")
    result = build(app, app=app)
    site = app / ".build" / "site"
    assert result.site == site and result.rebuilt
    files = site_files(site)
    top = {rel for rel in files if not rel.startswith("_durably/")}
    compressed = {rel for rel in top if rel.endswith((".gz", ".br"))}  # test_precompress.py
    assert top - compressed == {*STARTER, "data/rows.json", SERVICE_WORKER}
    assert (site / "jobs.py").read_bytes() == (app / "jobs.py").read_bytes()
    page = (site / "index.html").read_text()  # the starter asks for the client's preload tags
    assert MARKER not in page and MARKER in (app / "index.html").read_text()
    assert '<link rel="modulepreload" href="./_durably/client/index.mjs">' in page
    assert {"_durably/runtime/worker.mjs", "_durably/runtime/service_worker.js"} <= files
    assert (site / SERVICE_WORKER).read_bytes() == service_worker_script(result.build_id)
    assert result.build_id == hashlib.sha256((site / MANIFEST).read_bytes()).hexdigest()
    assert not is_stale(app, app=app)
    assert not build(app, app=app).rebuilt

    (app / "jobs.py").write_text((app / "jobs.py").read_text() + "\n# edited\n")
    assert is_stale(app, app=app)
    edited = build(app, app=app)
    assert (edited.written, edited.removed) == (1, 0)
    assert edited.build_id != result.build_id  # a new build: a new service worker script
    assert (site / SERVICE_WORKER).read_bytes() == service_worker_script(edited.build_id)
    (app / "data" / "rows.json").unlink()
    assert build(app, app=app).removed == 1
    assert not (site / "data").exists()


@pytest.mark.slow
def test_an_out_directory_inside_the_app_is_not_served_to_itself(
    repo_build: BuildResult, tmp_path: Path
) -> None:
    app = tmp_path / "app"
    new_app(app)
    seed_caches(app)
    result = cli("build", "app", "--out", "app/public", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    public = app / "public"
    assert result.stdout.startswith(f"built {public} (")
    assert not [rel for rel in site_files(public) if rel.startswith("public/")]
    again = cli("build", "app", "--out", "app/public", cwd=tmp_path)
    assert again.stdout.startswith(f"{public} is up to date (")
    assert not (app / ".build" / "site").exists()  # state only: the site went to --out


def test_a_directory_that_is_not_an_app_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for name, why in (("missing", "no such directory"), ("empty", "it has no index.html")):
        result = cli("build", name, cwd=tmp_path)
        assert result.returncode == 1
        assert result.stderr == (
            f"durably-web: error: {tmp_path / name} is not an app directory ({why}); "
            "`durably-web new DIR` writes a starter app\n"
        )
    for reserved in ("_durably/client/index.mjs", SERVICE_WORKER):
        app = tmp_path / reserved.replace("/", "-")
        new_app(app)
        (app / reserved).parent.mkdir(parents=True, exist_ok=True)
        (app / reserved).write_text("// mine")
        with pytest.raises(BuildError, match=f"{reserved.split('/')[0]} is reserved"):
            build(app, app=app)
        assert not (app / ".build" / "site").exists()


@pytest.mark.slow
def test_serve_dir_builds_the_app_then_serves_it(repo_build: BuildResult, tmp_path: Path) -> None:
    app = tmp_path / "app"
    new_app(app)
    seed_caches(app)
    process = subprocess.Popen(
        [sys.executable, "-m", "durably_web", "serve", "app", "--port", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once the build is done
        prefix = "Serving the app in app at http://127.0.0.1:"
        assert line.startswith(prefix), line
        url = line.removeprefix("Serving the app in app at ").strip()
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"<title>Prime counter</title>" in response.read()
        with urllib.request.urlopen(url + SERVICE_WORKER, timeout=10) as response:
            assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
            assert b"self.DURABLY_BUILD" in response.read()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0
    assert f"durably-web build: {app / '.build' / 'site'}: " in stderr
    assert not is_stale(app, app=app)


# ---------------------------------------------------------------------------------------------
# the npm step: the registry, over HTTPS, with Python only


class _Registry(http.server.BaseHTTPRequestHandler):
    """A stand-in registry: every tarball is ``body`` with ``status``."""

    status = 200
    body = b"not the tarball"

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start a stand-in registry (and an empty download cache); return its URL."""
    servers: list[http.server.ThreadingHTTPServer] = []
    monkeypatch.setenv("DURABLY_WEB_CACHE", str(tmp_path / "cache"))

    def start(status: int = 200, body: bytes = b"not the tarball") -> str:
        handler = type("Handler", (_Registry,), {"status": status, "body": body})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        monkeypatch.setenv("DURABLY_WEB_NPM_REGISTRY", url)
        return url

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_tarball_that_is_not_the_pinned_one_is_refused(
    registry: Callable[..., str], tmp_path: Path
) -> None:
    url = registry(body=b"tampered")
    layout = Layout(tmp_path / "work")
    pin = npm.read_pins(layout)["pyodide"]
    got = "sha512-" + base64.b64encode(hashlib.sha512(b"tampered").digest()).decode()
    with pytest.raises(BuildError) as failure:
        npm.fetch(layout, force=False, log=lambda _line: None)
    assert str(failure.value) == (
        f"integrity mismatch for pyodide@314.0.7 from {url}pyodide/-/pyodide-314.0.7.tgz: "
        f"package-lock.json pins {pin.integrity}, the download has {got}"
    )
    assert not layout.npm_packages.exists()
    assert not (tmp_path / "cache").exists()  # nothing unverified is kept


def test_registry_failures_fail_the_build_in_one_line(
    registry: Callable[..., str], tmp_path: Path
) -> None:
    url = registry(status=404)
    env = dict(os.environ)
    result = cli("build", cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"durably-web: error: cannot download pyodide@314.0.7 from "
        f"{url}pyodide/-/pyodide-314.0.7.tgz: HTTP 404"
    )
    closed = closed_port_url()
    env["DURABLY_WEB_NPM_REGISTRY"] = closed
    result = cli("build", cwd=tmp_path, env=env)
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"durably-web: error: cannot download pyodide@314.0.7 from {closed}")
    assert "Connection refused" in last


def closed_port_url() -> str:
    """A registry URL on a port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.mark.slow
def test_only_the_vendored_files_are_extracted_and_tarballs_are_cached(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DURABLY_WEB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DURABLY_WEB_NPM_REGISTRY", raising=False)
    layout = Layout(tmp_path / "work")
    lines: list[str] = []
    npm.fetch(layout, force=False, log=lines.append)
    assert len([line for line in lines if line.startswith("download ")]) == len(npm.PACKAGES)
    pyodide = site_files(npm.pyodide_dir(layout))
    assert pyodide == {*npm.PACKAGES["pyodide"], ".integrity"}
    pyscript = site_files(npm.package_dir(layout, "@pyscript/core"))
    assert "dist/core.js" in pyscript and not [p for p in pyscript if p.endswith(".map")]
    assert not [p for p in pyscript if p.startswith("src/")]

    lines.clear()
    npm.fetch(layout, force=False, log=lines.append)  # current: nothing to do
    (npm.pyodide_dir(layout) / "pyodide.mjs").unlink()
    other = Layout(tmp_path / "other")
    npm.fetch(layout, force=False, log=lines.append)  # re-extracted from the user cache
    npm.fetch(other, force=False, log=lines.append)  # another work directory: the same
    assert lines == []
    assert (npm.pyodide_dir(layout) / "pyodide.mjs").is_file()

    cached = tmp_path / "cache" / "npm" / "pyodide" / "-" / "pyodide-314.0.7.tgz"
    cached.write_bytes(b"damaged")
    npm.fetch(other, force=True, log=lines.append)  # a damaged cache is downloaded again
    assert [line for line in lines if line.startswith("download pyodide@")] != []
    assert cached.stat().st_size > 1_000_000


def test_npm_pins_must_be_exact_and_locked(tmp_path: Path) -> None:
    package = tmp_path / "durably_web"
    shutil.copytree(PACKAGE / "web" / "pins", package / "web" / "pins")
    layout = Layout(tmp_path, package)
    pins = json.loads(layout.package_json.read_text())
    pins["dependencies"]["pyodide"] = "^314.0.7"
    layout.package_json.write_text(json.dumps(pins))
    with pytest.raises(
        BuildError, match=r"pins pyodide '\^314\.0\.7' but package-lock\.json locks"
    ):
        npm.read_pins(layout)
    del pins["dependencies"]["pyodide"]
    layout.package_json.write_text(json.dumps(pins))
    with pytest.raises(BuildError, match=r"package\.json does not pin pyodide"):
        npm.read_pins(layout)


# ---------------------------------------------------------------------------------------------
# archives shipped in the wheel


@pytest.mark.slow
def test_a_site_builds_from_shipped_archives_with_no_node_and_no_pip(
    repo_build: BuildResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    package = tmp_path / "pkg" / "durably_web"
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    seed_caches(root)
    layout = Layout(root, package)
    info = npm.pyodide_info(layout)
    shipped = package / "web" / "precompiled"
    files = write_shipped(layout, shipped, info, build_self_wheel(layout), log=print)
    assert files[-1] == shipped / INDEX and len(files) == 11  # stdlib + 9 wheels + index
    shutil.rmtree(layout.state / "pyc")
    shutil.rmtree(layout.state / "wheels")
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # no node, no npm

    result = build(root, package=package)
    served = result.vendor / "pyodide"
    for path in files[:-1]:
        assert (served / path.name).read_bytes() == path.read_bytes(), path.name
    assert not (layout.state / "wheels").exists()  # pip never ran
    assert not list((layout.state / "pyc").glob("*")) if (layout.state / "pyc").exists() else True

    (shipped / "python_stdlib.zip").write_bytes(b"damaged")
    with pytest.raises(BuildError, match=r"python_stdlib\.zip is missing or damaged; reinstall"):
        build(root, package=package)
