"""``durably-web build`` and ``serve``: the static server over real sockets, the real build.

The server tests use a small site (``.build/site``) in a temporary work directory and need no
build. The build tests (marked slow) run the real build of this checkout once per session (the
npm registry, pip and Node: a checkout ships no precompiled archives), and build temporary
copies of the package (sharing the extracted npm packages and the caches) to check what a
change to a source file does; nothing under ``src/`` is modified. Apps, ``new``, the npm
fetch and the shipped archives: ``test_site_apps.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from durably_web._dataclass_code import FILE as DATACLASS_CODE
from durably_web.sitebuild import (
    BuildError,
    BuildResult,
    Layout,
    WebError,
    build,
    find_root,
    is_stale,
    make_server,
)
from durably_web.sitebuild.build import PAGE_FILES, PAGE_PACKAGE_FILES, service_worker_script
from durably_web.sitebuild.engine_site import (
    BROWSER_EXCLUDED,
    ENGINE_FORMAT,
    ON_FIRST_IMPORT,
    core_modules,
)
from durably_web.sitebuild.layout import PACKAGE, SERVICE_WORKER
from durably_web.sitebuild.lock import build_lock
from durably_web.sitebuild.mirror import MANIFEST, mirror
from durably_web.sitebuild.preload import CLIENT_ENTRY, module_graph, render_page
from durably_web.sitebuild.server import is_loopback
from durably_web.sitebuild.static import accepts_gzip

REPO = Path(__file__).resolve().parents[2]
SITE = Path(".build") / "site"  # a work directory's site

# ---------------------------------------------------------------------------------------------
# helpers


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "durably_web", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


Request = Callable[..., tuple[http.client.HTTPResponse, bytes]]
_connections: list[http.client.HTTPConnection] = []


def requester(port: int) -> tuple[http.client.HTTPConnection, Request]:
    """One keep-alive connection and a function sending raw request paths over it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    _connections.append(connection)

    def request(
        path: str, method: str = "GET", headers: dict[str, str] | None = None
    ) -> tuple[http.client.HTTPResponse, bytes]:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response, response.read()

    return connection, request


@pytest.fixture(autouse=True)
def _close_connections() -> Iterator[None]:
    yield
    while _connections:
        _connections.pop().close()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A work directory whose site holds one file of each served kind, and a secret beside it."""
    web = tmp_path / SITE
    (web / "sub").mkdir(parents=True)
    (web / "vendor" / "pyodide").mkdir(parents=True)
    (web / "node_modules" / "pyodide").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><title>demo</title>" + "<p>x</p>" * 200)
    (web / "app.mjs").write_text("export const answer = 42;\n" * 100)
    (web / "legacy.js").write_text("var answer = 42;\n" * 100)
    (web / "data.json").write_text(json.dumps({"rows": list(range(500))}))
    (web / "style.css").write_text("body { margin: 0 }\n" * 100)
    (web / "icon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'></svg>\n" * 50)
    (web / "jobs.py").write_text("JOBS = 'web'\n")
    (web / "module.wasm").write_bytes(b"\0asm\1\0\0\0" + bytes(4000))
    (web / "vendor" / "pyodide" / "x-1.0-py3-none-any.whl").write_bytes(b"PK" + bytes(3000))
    (web / "vendor" / "pyodide" / "python_stdlib.zip").write_bytes(b"PK" + bytes(3000))
    (web / "sub" / "index.html").write_text("<p>sub</p>")
    (web / ".hidden").write_text("hidden")
    (web / "node_modules" / "pyodide" / "pyodide.mjs").write_text("export {};")
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    (tmp_path / "other_jobs.py").write_text("JOBS = 'override'\n")
    return tmp_path


@pytest.fixture
def serve(site: Path) -> Iterator[Callable[..., int]]:
    """Start servers on free ports for ``site``; returns the port. Stopped at teardown."""
    servers: list[Any] = []

    def start(**options: Any) -> int:
        server = make_server(site / SITE, "127.0.0.1", 0, **options)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return int(server.server_address[1])

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------------------------
# the server


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/index.html", "text/html; charset=utf-8"),
        ("/app.mjs", "text/javascript; charset=utf-8"),
        ("/legacy.js", "text/javascript; charset=utf-8"),
        ("/data.json", "application/json"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/icon.svg", "image/svg+xml"),
        ("/jobs.py", "text/x-python; charset=utf-8"),
        ("/module.wasm", "application/wasm"),
        ("/vendor/pyodide/x-1.0-py3-none-any.whl", "application/octet-stream"),
        ("/vendor/pyodide/python_stdlib.zip", "application/zip"),
    ],
)
def test_serves_files_with_their_mime_type(
    site: Path, serve: Callable[..., int], path: str, content_type: str
) -> None:
    _, request = requester(serve())
    response, body = request(path)
    assert response.status == 200
    assert response.getheader("Content-Type") == content_type
    assert response.getheader("Cache-Control") == "no-cache"
    assert response.getheader("Content-Encoding") is None  # not asked for
    assert body == (site / SITE / path.lstrip("/")).read_bytes()
    assert response.getheader("Content-Length") == str(len(body))


def test_revalidation_answers_304_until_the_file_changes(
    site: Path, serve: Callable[..., int]
) -> None:
    _, request = requester(serve())
    first, _ = request("/app.mjs")
    etag, modified = first.getheader("ETag"), first.getheader("Last-Modified")
    assert etag and modified

    again, body = request("/app.mjs", headers={"If-None-Match": etag})
    assert (again.status, body, again.getheader("ETag")) == (304, b"", etag)
    assert again.getheader("Cache-Control") == "no-cache"
    since, body = request("/app.mjs", headers={"If-Modified-Since": modified})
    assert (since.status, body) == (304, b"")
    other, _ = request("/app.mjs", headers={"If-None-Match": '"something-else"'})
    assert other.status == 200

    file = site / SITE / "app.mjs"
    file.write_text("export const answer = 43;\n")
    os.utime(file, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    changed, body = request("/app.mjs", headers={"If-None-Match": etag})
    assert changed.status == 200
    assert body == b"export const answer = 43;\n"
    assert changed.getheader("ETag") != etag


def test_gzip_is_negotiated_for_compressible_types_only(
    site: Path, serve: Callable[..., int]
) -> None:
    _, request = requester(serve())
    plain, plain_body = request("/module.wasm")
    zipped, zipped_body = request("/module.wasm", headers={"Accept-Encoding": "gzip, br"})
    assert zipped.getheader("Content-Encoding") == "gzip"
    assert zipped.getheader("Content-Type") == "application/wasm"
    assert gzip.decompress(zipped_body) == plain_body
    assert len(zipped_body) < len(plain_body)
    assert zipped.getheader("Content-Length") == str(len(zipped_body))
    assert plain.getheader("Vary") == zipped.getheader("Vary") == "Accept-Encoding"
    assert plain.getheader("ETag") != zipped.getheader("ETag")  # two representations

    _, cached_body = request("/module.wasm", headers={"Accept-Encoding": "gzip"})
    assert cached_body == zipped_body
    revalidated, _ = request(
        "/module.wasm",
        headers={"Accept-Encoding": "gzip", "If-None-Match": str(zipped.getheader("ETag"))},
    )
    assert revalidated.status == 304

    refused, _ = request("/index.html", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert refused.getheader("Content-Encoding") is None
    for path in ("/vendor/pyodide/python_stdlib.zip", "/vendor/pyodide/x-1.0-py3-none-any.whl"):
        response, body = request(path, headers={"Accept-Encoding": "gzip"})
        assert response.getheader("Content-Encoding") is None
        assert response.getheader("Vary") is None
        assert body == (site / SITE / path.lstrip("/")).read_bytes()


def test_head_sends_the_headers_of_get_without_a_body(serve: Callable[..., int]) -> None:
    _, request = requester(serve())
    got, _ = request("/data.json", headers={"Accept-Encoding": "gzip"})
    head, head_body = request("/data.json", "HEAD", headers={"Accept-Encoding": "gzip"})
    assert head_body == b""
    for name in ("Content-Type", "Content-Length", "Content-Encoding", "ETag"):
        assert head.getheader(name) == got.getheader(name)


def test_other_methods_get_405_and_the_connection_ends(serve: Callable[..., int]) -> None:
    _, request = requester(serve())
    response, body = request("/index.html", "POST", headers={"Content-Length": "0"})
    assert (response.status, response.getheader("Allow"), body) == (
        405,
        "GET, HEAD",
        b"405 Method Not Allowed\n",
    )
    assert response.will_close  # a request body it never read cannot be taken for a request


def test_connections_are_kept_alive(serve: Callable[..., int]) -> None:
    connection, request = requester(serve())
    request("/index.html")
    sock = connection.sock
    for path in ("/app.mjs", "/missing.js", "/data.json"):
        response, _ = request(path)
        assert not response.will_close
    assert connection.sock is sock


def test_connections_send_without_nagles_delay(site: Path) -> None:
    """Every connection has TCP_NODELAY: an answer's body never waits for the client's ACK.

    (The headers and the body are two writes: with Nagle's algorithm each request of a
    keep-alive connection after its first few waited ~40 ms for the delayed ACK.)
    """
    server = make_server(site / SITE, "127.0.0.1", 0)
    nodelay: list[int] = []
    handle = server.finish_request

    def finish_request(request: Any, client_address: Any) -> None:
        handle(request, client_address)  # the whole connection, until the client closes it
        nodelay.append(request.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    server.finish_request = finish_request  # type: ignore[method-assign]
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        connection, request = requester(int(server.server_address[1]))
        for path in ("/index.html", "/app.mjs", "/data.json"):
            assert request(path)[0].status == 200
        connection.close()
        deadline = time.monotonic() + 10
        while not nodelay and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        server.shutdown()
        server.server_close()
    assert nodelay == [1]


def test_isolated_adds_cross_origin_isolation_headers(serve: Callable[..., int]) -> None:
    _, plain = requester(serve())
    _, isolated = requester(serve(isolated=True))
    response, _ = plain("/index.html")
    assert response.getheader("Cross-Origin-Opener-Policy") is None
    assert response.getheader("Cross-Origin-Embedder-Policy") is None
    for path in ("/index.html", "/module.wasm", "/missing"):
        response, _ = isolated(path)
        assert response.getheader("Cross-Origin-Opener-Policy") == "same-origin"
        assert response.getheader("Cross-Origin-Embedder-Policy") == "require-corp"
        assert response.getheader("Cross-Origin-Resource-Policy") == "same-origin"


def test_a_mounted_file_replaces_jobs_py(site: Path, serve: Callable[..., int]) -> None:
    _, default = requester(serve())
    _, override = requester(serve(mounts={"/jobs.py": site / "other_jobs.py"}))
    assert default("/jobs.py")[1] == b"JOBS = 'web'\n"
    response, body = override("/jobs.py")
    assert body == b"JOBS = 'override'\n"
    assert response.getheader("Content-Type") == "text/x-python; charset=utf-8"
    assert override("/index.html")[0].status == 200


def test_directories_serve_index_html_or_redirect(serve: Callable[..., int]) -> None:
    _, request = requester(serve())
    root, body = request("/")
    assert (root.status, root.getheader("Content-Type")) == (200, "text/html; charset=utf-8")
    assert b"<title>demo</title>" in body
    redirect, _ = request("/sub?x=1")
    assert (redirect.status, redirect.getheader("Location")) == (301, "/sub/?x=1")
    assert request("/sub/")[1] == b"<p>sub</p>"
    assert request("/vendor/")[0].status == 404  # no directory listings


def test_missing_hidden_and_node_modules_are_404(serve: Callable[..., int]) -> None:
    _, request = requester(serve())
    for path in ("/missing.js", "/.hidden", "/node_modules/pyodide/pyodide.mjs", "/sub/x/"):
        response, body = request(path)
        assert response.status == 404, path
        assert body == b"404 Not Found\n"


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/vendor/..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/%00",
    ],
)
def test_path_traversal_is_refused(serve: Callable[..., int], path: str) -> None:
    _, request = requester(serve())
    response, body = request(path)
    assert response.status == 403
    assert b"SECRET" not in body


def test_odd_paths_get_an_http_answer_never_a_dropped_connection(
    serve: Callable[..., int],
) -> None:
    """Issue 14: a 10 KB path was an OSError traceback; ``//vendor`` must not leave the host."""
    _, request = requester(serve())
    assert request("/" + "a" * 10_000)[0].status == 414
    assert request("/" + "a" * 300)[0].status == 404  # over NAME_MAX: the lookup fails, 404
    assert request("/" + "a%C3" * 50)[0].status == 404  # not UTF-8
    for odd, canonical in (
        ("//vendor", "/vendor/"),
        ("//vendor?x=1", "/vendor/?x=1"),
        ("///vendor", "/vendor/"),
        ("/./vendor", "/vendor/"),
        ("/%2Fvendor", "/vendor/"),
    ):
        response, _ = request(odd)
        assert (response.status, response.getheader("Location")) == (301, canonical), odd
    assert request("/index.html")[0].status == 200  # the connection is still usable


def test_symlink_out_of_the_site_is_refused(site: Path, serve: Callable[..., int]) -> None:
    (site / SITE / "escape.txt").symlink_to(site / "secret.txt")
    _, request = requester(serve())
    response, body = request("/escape.txt")
    assert response.status == 403
    assert b"SECRET" not in body


def test_accept_encoding_and_loopback_rules() -> None:
    assert accepts_gzip("gzip, deflate, br")
    assert accepts_gzip("br;q=1.0, gzip;q=0.8")
    assert accepts_gzip("*")
    assert not accepts_gzip(None)
    assert not accepts_gzip("br")
    assert not accepts_gzip("gzip;q=0, *")
    assert not accepts_gzip("identity")
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")


def make_wheel(directory: Path, name: str, version: str, *requires: str) -> Path:
    path = directory / f"{name}-{version}-py3-none-any.whl"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {requirement}\n" for requirement in requires)
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{name}/__init__.py", "")
        wheel.writestr(f"{name}_extra.py", "")
        wheel.writestr(f"{name}-{version}.dist-info/METADATA", metadata)
    return path


def test_lock_entries_are_read_from_the_wheels(tmp_path: Path) -> None:
    info = {"abi_version": "2026_0", "arch": "wasm32", "python": "3.14.2"}
    app = make_wheel(
        tmp_path,
        "app",
        "1.0",
        "lib>=2.0,<3",
        "missing; extra == 'docs'",
        "backport; python_version < '3.9'",
    )
    lib = make_wheel(tmp_path, "lib", "2.1")
    lock = build_lock(info, [app, lib])
    assert lock["info"] == info
    assert lock["packages"]["app"] == {
        "name": "app",
        "version": "1.0",
        "file_name": app.name,
        "install_dir": "site",
        "sha256": sha256(app),
        "package_type": "package",
        "imports": ["app", "app_extra"],
        "depends": ["lib"],
        "unvendored_tests": False,
    }
    old_lib = make_wheel(tmp_path, "lib", "1.9")
    with pytest.raises(WebError, match=r"needs 'lib>=2.0,<3', served: 1.9"):
        build_lock(info, [app, old_lib])
    with pytest.raises(WebError, match=r"needs 'lib>=2.0,<3', which is not served"):
        build_lock(info, [app])


# ---------------------------------------------------------------------------------------------
# the serve command


def test_serve_reports_a_port_in_use_in_one_line(site: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", "--no-build", "--port", str(port), cwd=site)
    assert result.returncode == 1
    assert result.stderr == f"durably-web: error: port {port} is in use; pass --port N\n"
    assert result.stdout == ""


def test_serve_no_build_without_a_build_says_to_build(tmp_path: Path) -> None:
    result = cli("serve", "--no-build", "--port", "0", cwd=tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("durably-web: error: ") and "durably-web build" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--port", "70000"], "expected a port from 0 to 65535"),
        (["serve", "--jobs", "nope.py", "--no-build"], "--jobs 'nope.py': no such file"),
        (["build", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_2(site: Path, args: list[str], message: str) -> None:
    result = cli(*args, cwd=site)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("durably-web: error: ") and message in line


def test_serve_prints_its_url_serves_and_stops_on_ctrl_c(site: Path) -> None:
    (site / SITE / MANIFEST).parent.mkdir(parents=True)
    (site / SITE / MANIFEST).write_text("{}")
    process = subprocess.Popen(
        [sys.executable, "-m", "durably_web", "serve", "--no-build", "--port", "0"],
        cwd=site,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        prefix = "Serving the durably_web demo at http://127.0.0.1:"
        assert line.startswith(prefix), line
        port = int(line.removeprefix(prefix).rstrip("/\n"))
        _, request = requester(port)
        response, body = request("/index.html")
        assert response.status == 200 and b"<title>demo</title>" in body
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0
    assert "out of date" in stderr  # --no-build with a build that has no stamp
    assert "GET" not in stderr  # requests are not logged without --verbose


def test_find_root_is_the_nearest_directory_with_a_build_else_the_start(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "sub" / "deeper").mkdir(parents=True)
    assert find_root(work / "sub") == (work / "sub").resolve()  # no build anywhere yet
    (work / ".build").mkdir()
    (work / ".build" / "stamp.json").write_text("{}")
    assert find_root(work / "sub" / "deeper") == work.resolve()
    assert find_root(work) == work.resolve()


def test_the_build_never_empties_a_directory_it_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "precious.txt").write_text("mine")
    source = tmp_path / "page.html"
    source.write_text("<p>page</p>")
    with pytest.raises(BuildError, match=r"is not empty and holds no _durably/manifest\.json"):
        mirror({"index.html": source}, {}, out)
    assert (out / "precious.txt").read_text() == "mine"
    assert not (out / "index.html").exists()


# ---------------------------------------------------------------------------------------------
# the real build (npm, pip, node)


@pytest.fixture(scope="session")
def repo_build() -> BuildResult:
    """The build of this checkout (a no-op when it is current)."""
    return build(REPO)


def copy_inputs(root: Path, *, caches: bool = True) -> Path:
    """A work directory and a copy of the package (returned); the npm files are shared."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "precompiled")
    package = root / "pkg" / "durably_web"
    shutil.copytree(PACKAGE, package, ignore=ignore)
    layout, repo = Layout(root, package), Layout(REPO)
    layout.npm_packages.parent.mkdir(parents=True)
    layout.npm_packages.symlink_to(repo.npm_packages)
    if caches:
        for name in ("wheels", "pyc"):
            shutil.copytree(repo.state / name, layout.state / name)
    return package


@pytest.mark.slow
def test_build_writes_the_site_with_every_runtime_file(repo_build: BuildResult) -> None:
    site = repo_build.site
    assert repo_build.vendor == site / "_durably" / "vendor"
    manifest_bytes = (site / MANIFEST).read_bytes()
    manifest = json.loads(manifest_bytes)
    on_disk = {
        path.relative_to(site).as_posix()
        for path in site.rglob("*")
        if path.is_file() and path.relative_to(site).as_posix() not in (MANIFEST, SERVICE_WORKER)
    }
    compressed = {rel for rel in on_disk if rel.endswith((".gz", ".br"))}  # test_precompress.py
    on_disk -= compressed
    assert set(manifest) == on_disk
    assert {rel.rpartition(".")[0] for rel in compressed} <= on_disk
    assert repo_build.build_id == hashlib.sha256(manifest_bytes).hexdigest()
    assert (site / SERVICE_WORKER).read_bytes() == service_worker_script(repo_build.build_id)
    for rel, entry in manifest.items():
        assert entry == {"size": (site / rel).stat().st_size, "sha256": sha256(site / rel)}
    layout = Layout(REPO)
    app = {
        "index.html",
        "demo.py",
        "demo_table.py",
        "demo_form.py",
        "demo.css",
        "jobs.py",
        "bench.html",
        "bench.py",
    }
    assert {rel for rel in on_disk if "/" not in rel} == app
    client = module_graph(CLIENT_ENTRY, lambda rel: (site / rel).read_text())

    def as_built(rel: str, source: Path) -> bytes:  # a page's preload marker becomes the tags
        return render_page(source.read_bytes(), rel, client) or source.read_bytes()

    for name in app:
        assert (site / name).read_bytes() == as_built(name, layout.app / name)
    for rel in (
        "runtime/worker.mjs",
        "runtime/sqlite_bridge.mjs",
        "runtime/service_worker.js",
        "runtime/offline.mjs",
        "client/index.mjs",
        "dashboard/index.html",
        "dashboard/dashboard.py",
        "dashboard/run_page.py",
        "dashboard/timeline.py",
        "dashboard/style.css",
    ):
        built = f"_durably/{rel}"
        assert (site / built).read_bytes() == as_built(built, layout.web / rel)
    vendored = {
        "pyodide/pyodide.mjs",
        "pyodide/pyodide.asm.mjs",
        "pyodide/pyodide.asm.wasm",
        "pyodide/python_stdlib.zip",
        "pyodide/pyodide-lock.json",
        "pyodide/durably_web-0.1.0-cp314-none-any.whl",
        "pyodide/pydantic-2.14.4-cp314-none-any.whl",
        "pyodide/pydantic_core-2.50.5-cp314-cp314-pyemscripten_2026_0_wasm32.whl",
        "pyodide/micropip-0.11.1-cp314-none-any.whl",
        "sqlite-wasm/index.mjs",
        "sqlite-wasm/sqlite3.wasm",
        "sqlite-wasm/sqlite3-opfs-async-proxy.js",
        "pyscript/core.js",
        "pyscript/core.css",
        "micropython/micropython.mjs",
        "micropython/micropython.wasm",
    }
    assert {f"_durably/vendor/{rel}" for rel in vendored} <= on_disk
    assert not [rel for rel in on_disk if rel.endswith(".map")]
    page_py = {
        f"_durably/vendor/py/{path.relative_to(layout.page_py).as_posix()}"
        for path in layout.page_py.glob("**/*.py")
        if "__pycache__" not in path.parts
    }
    page_py |= {f"_durably/vendor/py/durably_web/{rel}" for rel in PAGE_PACKAGE_FILES}
    assert {rel for rel in on_disk if rel.startswith("_durably/vendor/py/")} == page_py | {
        PAGE_FILES
    }
    # what pyscript.mjs gives PyScript: exactly the page files the site holds
    listed = json.loads((site / PAGE_FILES).read_text())
    assert [f"_durably/vendor/py/{rel}" for rel in listed] == sorted(page_py)
    for rel in PAGE_PACKAGE_FILES:
        assert (site / "_durably/vendor/py/durably_web" / rel).read_bytes() == (
            PACKAGE / rel
        ).read_bytes()
    assert repo_build.files == len(manifest)
    assert repo_build.total_bytes == sum(entry["size"] for entry in manifest.values())


@pytest.mark.slow
def test_lock_lists_the_served_wheels_with_their_hashes(repo_build: BuildResult) -> None:
    pyodide = repo_build.vendor / "pyodide"
    lock = json.loads((pyodide / "pyodide-lock.json").read_text())
    stock = json.loads((Layout(REPO).npm_packages / "pyodide" / "pyodide-lock.json").read_text())
    assert lock["info"] == stock["info"]
    assert lock["info"]["abi_version"] == "2026_0"
    assert set(lock["packages"]) == {
        "annotated-types",
        "cronsim",
        "durably-web",
        "micropip",
        "pydantic",
        "pydantic-core",
        "typing-extensions",
        "typing-inspection",
        "tzdata",
    }
    for entry in lock["packages"].values():
        assert entry["sha256"] == sha256(pyodide / entry["file_name"])
        assert entry["imports"]
        assert set(entry["depends"]) <= set(lock["packages"])
    assert set(lock["packages"]["pydantic"]["depends"]) >= {"pydantic-core", "typing-extensions"}
    own = lock["packages"]["durably-web"]
    assert (own["name"], own["imports"], own["depends"]) == (
        "durably-web",
        ["durably_web"],
        ["cronsim", "pydantic", "tzdata"],
    )
    served = sorted(p.name for p in pyodide.glob("*.whl"))
    assert served == sorted(entry["file_name"] for entry in lock["packages"].values())


@pytest.mark.slow
def test_archives_are_precompiled_and_the_own_wheel_is_complete(repo_build: BuildResult) -> None:
    pyodide = build(REPO).vendor / "pyodide"  # current even if src/ changed since the session build
    with zipfile.ZipFile(pyodide / "python_stdlib.zip") as stdlib:
        names = stdlib.namelist()
    assert "json/__init__.pyc" in names and "json/__init__.py" not in names
    assert sum(name.endswith(".pyc") for name in names) > 500
    with zipfile.ZipFile(pyodide / "durably_web-0.1.0-cp314-none-any.whl") as wheel:
        names = wheel.namelist()
        metadata = wheel.read("durably_web-0.1.0.dist-info/METADATA").decode()
        tag = wheel.read("durably_web-0.1.0.dist-info/WHEEL").decode()
        record = wheel.read("durably_web-0.1.0.dist-info/RECORD").decode()
        header = wheel.read("durably_web/__init__.pyc")[:16]
        wheel_code = wheel.read(f"durably_web/{DATACLASS_CODE}")
    for source in PACKAGE.rglob("*"):
        rel = "durably_web/" + source.relative_to(PACKAGE).as_posix()
        if not source.is_file() or "__pycache__" in rel or rel.endswith(".pyc"):
            continue
        if source.is_relative_to(PACKAGE / "web"):  # the site's files: served, never imported
            assert not [name for name in names if name.startswith(rel)], rel
            continue
        assert (rel + "c" if rel.endswith(".py") else rel) in names, rel
    assert "durably_web/py.typed" in names and "durably_web/storage/sql/schema.sql" in names
    assert not [name for name in names if name.endswith(".py")]
    assert "Name: durably-web" in metadata and "Requires-Dist: pydantic" in metadata
    assert "extra ==" not in metadata  # only what Pyodide installs
    assert "Tag: cp314-none-any" in tag
    assert all(name in record for name in names)
    assert header[4:8] == (1).to_bytes(4, "little")  # unchecked hash-based .pyc (PEP 552)
    # The bytecode of the engine's generated dataclass methods (durably_web/_dataclass_code.py),
    # recorded by importing the engine with Pyodide's CPython (a marshal this CPython cannot
    # load): it starts with the .pyc's magic number and holds the events' generated source.
    assert header[:4] in wheel_code[:16]
    assert b"def __init__(self,*,run_id,job_name," in wheel_code
    assert f"durably_web/{DATACLASS_CODE}" in record


@pytest.mark.slow
def test_a_second_build_is_a_fast_no_op(repo_build: BuildResult) -> None:
    build(REPO)  # whatever changed since the session build (others edit src/ too)
    started = time.monotonic()
    again = build(REPO)
    assert time.monotonic() - started < 1
    assert not again.rebuilt and (again.written, again.removed) == (0, 0)
    assert not is_stale(REPO)
    result = cli("build", cwd=REPO / "src")  # the work directory is found upwards
    assert result.returncode == 0
    assert f"{REPO / SITE} is up to date" in result.stdout


@pytest.mark.slow
def test_a_source_change_rebuilds_only_what_it_changes(
    repo_build: BuildResult, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    package = copy_inputs(root)
    layout = Layout(root, package)
    assert is_stale(root, package=package)
    first = build(root, package=package)
    assert first.rebuilt and not is_stale(root, package=package)
    assert first.site == layout.site
    pyodide = layout.vendor / "pyodide"
    wheel = pyodide / "durably_web-0.1.0-cp314-none-any.whl"
    before = {p.name: sha256(p) for p in pyodide.iterdir() if p.suffix not in (".gz", ".br")}
    boot_files = layout.site / "_durably" / "runtime" / "boot_files.mjs"
    boot_files_before = sha256(boot_files)

    (package / "storage" / "sql" / "probe.sql").write_text("-- probe\n")
    assert is_stale(root, package=package)
    second = build(root, package=package)
    assert second.rebuilt
    after = {p.name: sha256(p) for p in pyodide.iterdir() if p.suffix not in (".gz", ".br")}
    assert {name for name in before if before[name] != after[name]} == {
        wheel.name,
        "pyodide-lock.json",
        "engine-site.tar",  # the engine worker's packages, durably_web's browser part included
    }
    # ... and the content versions of the two boot files among them (sitebuild.versions)
    assert sha256(boot_files) != boot_files_before
    assert second.written == 4
    lock = json.loads((pyodide / "pyodide-lock.json").read_text())
    assert lock["packages"]["durably-web"]["sha256"] == sha256(wheel)
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("durably_web/storage/sql/probe.sql") == b"-- probe\n"
    with tarfile.open(pyodide / "engine-site.tar") as tar:
        probe = tar.extractfile("durably_web/storage/sql/probe.sql")
        assert probe is not None and probe.read() == b"-- probe\n"
    assert not build(root, package=package).rebuilt

    for source, served in (  # the site's own files are copied as they are: nothing else changes
        (layout.app / "index.html", layout.site / "index.html"),
        (layout.runtime / "worker.mjs", layout.site / "_durably/runtime/worker.mjs"),
        (layout.client / "index.mjs", layout.site / "_durably/client/index.mjs"),
    ):
        source.write_text(source.read_text() + "\n<!-- edited -->\n")
        edited = build(root, package=package)
        assert (edited.written, edited.removed) == (1, 0), source
        client = module_graph(CLIENT_ENTRY, lambda rel: (layout.site / rel).read_text())
        site_path = served.relative_to(layout.site).as_posix()  # a page's marker: the tags
        expected = render_page(source.read_bytes(), site_path, client) or source.read_bytes()
        assert served.read_bytes() == expected
        assert sha256(wheel) == after[wheel.name]

    page = layout.page_py / "demo" / "page.py"  # page-side Python is mirrored as is
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("print('page')\n")
    assert build(root, package=package).written == 2  # the file, and the list naming it
    copied = layout.vendor / "py" / "demo" / "page.py"
    assert copied.read_text() == "print('page')\n"
    assert "demo/page.py" in json.loads((layout.site / PAGE_FILES).read_text())
    page.unlink()
    stray = pyodide / "stray.whl"  # the build owns the whole site: strays go
    stray.write_bytes(b"PK")
    other = layout.site / "notes" / "todo.txt"
    other.parent.mkdir()
    other.write_text("not the build's")
    assert build(root, package=package).removed == 3
    assert not copied.exists() and not copied.parent.exists() and not stray.exists()
    assert not other.parent.exists()


@pytest.mark.slow
def test_the_build_is_reproducible_from_scratch(repo_build: BuildResult, tmp_path: Path) -> None:
    root = tmp_path / "root"
    package = copy_inputs(root)
    layout = Layout(root, package)
    build(root, package=package)
    manifest = (layout.site / MANIFEST).read_bytes()
    lock = (layout.vendor / "pyodide" / "pyodide-lock.json").read_bytes()
    shutil.rmtree(layout.state / "pyc")  # recompile every archive, in one Node process
    (layout.state / "stamp.json").unlink()
    again = build(root, package=package)
    assert again.rebuilt and again.written == 0
    assert (layout.site / MANIFEST).read_bytes() == manifest
    assert (layout.vendor / "pyodide" / "pyodide-lock.json").read_bytes() == lock


@pytest.mark.slow
def test_build_without_node_fails_in_one_line(repo_build: BuildResult, tmp_path: Path) -> None:
    root = tmp_path / "root"
    copy_inputs(root)
    shutil.rmtree(Layout(root).state / "pyc")
    python_only = tmp_path / "bin"
    python_only.mkdir()
    result = cli("build", cwd=root, env={**os.environ, "PATH": str(python_only)})
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("durably-web: error: node not found on PATH")


@pytest.mark.slow
def test_a_wheel_hash_mismatch_fails_in_one_line(repo_build: BuildResult, tmp_path: Path) -> None:
    root = tmp_path / "root"
    package = copy_inputs(root)
    shutil.rmtree(Layout(root).state / "wheels")
    requirements = Layout(root, package).requirements
    text = requirements.read_text()
    good = text.split("annotated-types==0.8.0 \\\n    --hash=sha256:")[1][:64]
    requirements.write_text(text.replace(good, "0" * 64))
    with pytest.raises(BuildError) as failure:
        build(root, package=package)
    assert str(failure.value) == (
        "hash mismatch for annotated-types==0.8.0: requirements-wasm.txt "
        f"pins sha256 {'0' * 64}, the download has {good}"
    )


@pytest.mark.slow
def test_serve_builds_a_stale_root_first(repo_build: BuildResult, tmp_path: Path) -> None:
    root = tmp_path / "root"
    copy_inputs(root)
    process = subprocess.Popen(
        [sys.executable, "-m", "durably_web", "serve", "--port", "0", "--isolated"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once the build is done
        port = int(line.rsplit(":", 1)[1].rstrip("/\n"))
        assert not is_stale(root)
        _, request = requester(port)
        response, body = request("/_durably/vendor/pyodide/pyodide-lock.json")
        assert response.getheader("Content-Type") == "application/json"
        assert "durably-web" in json.loads(body)["packages"]
        response, _ = request(
            "/_durably/vendor/pyodide/pyodide.asm.wasm", headers={"Accept-Encoding": "gzip"}
        )
        assert response.getheader("Content-Type") == "application/wasm"
        assert response.getheader("Content-Encoding") == "gzip"
        assert response.getheader("Cross-Origin-Embedder-Policy") == "require-corp"
        response, body = request("/")
        assert response.status == 200 and b"_durably/client/index.mjs" in body  # the demo
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0
    assert f"durably-web build: {root / SITE}: " in stderr  # built before serving


@pytest.mark.slow
def test_the_wheel_carries_the_site_inputs(tmp_path: Path) -> None:
    """``pip wheel .`` holds every file the build reads: runtime, client, demo, starter, pins,
    tools, and the archives the build hook precompiled (so a site builds without Node)."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    [wheel] = tmp_path.glob("durably_web-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    inputs = [
        "durably_web/" + path.relative_to(PACKAGE).as_posix()
        for directory in (PACKAGE / "web", PACKAGE / "sitebuild" / "tools")
        for path in directory.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    ]
    assert len(inputs) >= 30  # a floor: the files exist at all
    assert sorted(set(inputs) - names) == []
    with zipfile.ZipFile(wheel) as archive:
        index = json.loads(archive.read("durably_web/web/precompiled/index.json"))
        shipped = {
            entry["file"]: hashlib.sha256(
                archive.read(f"durably_web/web/precompiled/{entry['file']}")
            ).hexdigest()
            for entry in index["archives"].values()
        }
    assert {entry["file"]: entry["sha256"] for entry in index["archives"].values()} == shipped
    assert "python_stdlib.zip" in shipped
    assert "durably_web-0.1.0-cp314-none-any.whl" in shipped
    assert "pydantic_core-2.50.5-cp314-cp314-pyemscripten_2026_0_wasm32.whl" in shipped


def test_the_engine_site_holds_the_engines_packages_without_the_server_side(
    repo_build: BuildResult,
) -> None:
    pyodide = repo_build.vendor / "pyodide"
    engine = json.loads((pyodide / "engine.json").read_text())
    lock = json.loads((pyodide / "pyodide-lock.json").read_text())
    assert engine["format"] == ENGINE_FORMAT and engine["site"] == "engine-site.tar"
    assert engine["imports"] == ["durably_web.browser.boot"]
    assert set(engine["packages"]) == {
        "annotated-types",
        "cronsim",
        "durably-web",
        "pydantic",
        "pydantic-core",
        "typing-extensions",
        "typing-inspection",
        "tzdata",
    }
    assert all(
        engine["packages"][name] == lock["packages"][name]["version"] for name in engine["packages"]
    )
    with tarfile.open(pyodide / "engine-site.tar") as tar:
        names = tar.getnames()
        assert all(tar.getmember(name).mtime == 0 for name in names)  # reproducible
    assert names == sorted(names)
    assert engine["dynlibs"] == [name for name in names if name.endswith(".so")]
    assert engine["dynlibs"] and engine["dynlibs"][0].startswith("pydantic_core/")
    assert "durably_web/browser/boot.pyc" in names and "pydantic/main.pyc" in names
    assert f"durably_web/{DATACLASS_CODE}" in names
    assert not [name for name in names if name.startswith(BROWSER_EXCLUDED)]
    assert not [name for name in names if name.startswith(ON_FIRST_IMPORT)]  # in the rest zip
    assert not [name for name in names if name.endswith("/RECORD") or "/sboms/" in name]
    assert "pydantic-2.14.4.dist-info/METADATA" in names  # importlib.metadata.version works
    with zipfile.ZipFile(pyodide / "durably_web-0.1.0-cp314-none-any.whl") as wheel:
        assert any(name.startswith("durably_web/server/") for name in wheel.namelist())
        assert any(name.startswith("durably_web/storage/postgres/") for name in wheel.namelist())


def test_the_stdlib_is_cut_into_the_engine_core_and_the_rest(repo_build: BuildResult) -> None:
    pyodide = repo_build.vendor / "pyodide"
    engine = json.loads((pyodide / "engine.json").read_text())
    assert engine["stdlib"] == "python_stdlib_core.zip"
    assert engine["stdlib_rest"]["file"] == "python_stdlib_rest.zip"
    zips = {}
    for name in ("python_stdlib.zip", "python_stdlib_core.zip", "python_stdlib_rest.zip"):
        with zipfile.ZipFile(pyodide / name) as archive:
            zips[name] = {i.filename: archive.read(i) for i in archive.infolist() if not i.is_dir()}
    whole, core, rest = zips.values()
    later = {name: data for name, data in rest.items() if name.startswith(ON_FIRST_IMPORT)}
    assert "pydantic/v1/__init__.pyc" in later and "pydantic/mypy.pyc" in later
    rest = {name: data for name, data in rest.items() if name not in later}
    assert not core.keys() & rest.keys() and {**core, **rest} == whole  # same members, bytes
    wanted = core_modules()
    assert {"json", "asyncio", "hashlib", "email"} <= wanted
    assert "json/__init__.pyc" in core and "hashlib.pyc" in core and "difflib.pyc" in rest
    assert "email/mime/text.pyc" in rest  # a core package's submodule can be in the rest
    modules = engine["stdlib_rest"]["modules"]
    assert modules == sorted(modules) and "difflib" in modules and "json" not in modules
    assert "pydantic.v1" in modules and "pydantic.v1.main" in modules and "pydantic" not in modules
    assert not wanted & set(modules)


PYODIDE_STUB = """
import sys, types
ffi = types.ModuleType("pyodide.ffi")
ffi.JsException = type("JsException", (Exception,), {})
sys.modules["pyodide"] = types.ModuleType("pyodide")
sys.modules["pyodide.ffi"] = ffi
"""
IMPORTED_STDLIB = (
    PYODIDE_STUB
    + """
before = set(sys.modules)
import durably_web.browser.boot
print("\\n".join(sorted(set(sys.modules) - before)))
"""
)
# What the browser boot does up to create_durably (browser/boot.py), over CPython's sqlite3;
# prints each module of durably_web that imports one of LAZY, and what (not the stdlib's own
# imports of them: CPython 3.11's pathlib imports urllib.parse, 3.14's does not).
LAZY = ("zoneinfo", "cronsim", "urllib.parse")
ENGINE_MADE = (
    PYODIDE_STUB
    + f"""
import builtins
real_import = builtins.__import__
def watch(name, globals=None, *args, **kwargs):
    importer = (globals or {{}}).get("__name__", "")
    if name in {LAZY!r} and importer.startswith("durably_web"):
        print(importer, name)
    return real_import(name, globals, *args, **kwargs)
builtins.__import__ = watch
import durably_web.browser.boot
from durably_web.adapters.sqlite3 import SQLite3Connection
from durably_web.core.factory import create_durably
from durably_web.storage.url import open_store
store, _ = open_store(SQLite3Connection(":memory:"), exclusive=True)
create_durably(store)
print("made")
"""
)


# The browser's import of the engine and a page's job module (browser/boot.py import_jobs),
# then the build a snapshot is taken after (prepare_snapshot); prints whether pydantic and its
# model machinery were imported after each, then what the job's adapters give.
JOBS_IMPORTED = (
    PYODIDE_STUB
    + """
import pathlib, tempfile
folder = tempfile.mkdtemp()
pathlib.Path(folder, "page_jobs.py").write_text(
    "from durably_web import define_job\\n"
    "@define_job(name='double', input=dict, output=int)\\n"
    "async def double(step, payload):\\n"
    "    return 2\\n"
)
from durably_web.browser.boot import import_jobs, prepare_snapshot
module = import_jobs("page_jobs", folder)
print("pydantic" in sys.modules, "pydantic.main" in sys.modules)
prepare_snapshot()
print("pydantic" in sys.modules, "pydantic.main" in sys.modules)
print(module.double.input_adapter.validate_python({"n": 1}), module.double.output_adapter.validate_python(2))
"""
)


def test_a_browser_boot_leaves_pydantic_and_the_job_adapters_until_a_snapshot() -> None:
    # Importing pydantic costs ~35 ms of a cold start in Pyodide and its first adapter (which
    # imports pydantic.main and the schema machinery) ~60-90 ms more: the engine imports
    # pydantic where it validates, the page's job module is imported with its adapters unbuilt,
    # and prepare_snapshot (called before a snapshot is taken) does both (bench/BOOT-NOTES.md).
    result = subprocess.run(
        [sys.executable, "-c", JOBS_IMPORTED], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == ["False False", "True True", "{'n': 1} 2"]


def test_the_engine_imports_only_core_stdlib_modules(repo_build: BuildResult) -> None:
    # The engine worker's stdlib is the core zip, and durably_web is imported before the
    # finder of the rest is in place: any stdlib module the engine's package imports must be
    # in the core (stdlib_core.txt). CPython's imports stand in for Pyodide's here.
    with zipfile.ZipFile(repo_build.vendor / "pyodide" / "python_stdlib_rest.zip") as archive:
        names = archive.namelist()
    rest = {name.removesuffix(".pyc").removesuffix("/__init__").replace("/", ".") for name in names}
    result = subprocess.run(
        [sys.executable, "-c", IMPORTED_STDLIB], capture_output=True, text=True, check=True
    )
    imported = set(result.stdout.split())
    assert "durably_web.core.durably" in imported  # the probe saw the engine's imports
    assert not imported & rest, sorted(imported & rest)


def test_a_browser_engine_without_schedules_never_imports_cron_or_url_parsing() -> None:
    # Every module imported before a boot's snapshot costs every cold start in Pyodide, and
    # one imported after it every warm one: time zones and cron (schedules) and URL parsing
    # (database URLs) are imported where they are used, and a browser engine, given a
    # Connection, with no schedule, uses neither (bench/BOOT-NOTES.md).
    result = subprocess.run(
        [sys.executable, "-c", ENGINE_MADE], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == ["made"]  # and no durably_web module imported LAZY
