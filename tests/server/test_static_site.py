"""``serve-api --static``: a directory and the Durably API on one origin (sitebuild.asgi)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from durably_web import create_durably
from durably_web.server import create_app
from durably_web.sitebuild.asgi import site_app
from durably_web.sitebuild.paths import check_mounts, resolve
from durably_web.sitebuild.versions import IMMUTABLE, content_version
from tests.jobs import echo_job
from tests.server.conftest import serve


def make_site(root: Path) -> Path:
    web = root / "web"
    (web / "sub").mkdir(parents=True)
    (web / "index.html").write_text("<h1>demo</h1>")
    (web / "client.mjs").write_text("export const x = 1;")
    (web / "sub" / "index.html").write_text("sub")
    (web / ".secret").write_text("no")
    (web / "node_modules").mkdir()
    (web / "node_modules" / "x.js").write_text("no")
    (root / "outside.txt").write_text("no")
    return web


def test_resolve_refuses_what_is_not_a_file_below_the_root(tmp_path: Path) -> None:
    web = make_site(tmp_path).resolve()
    assert resolve(web, "/") == (200, web / "index.html")
    assert resolve(web, "/sub") == (301, "/sub/")
    assert resolve(web, "/sub/") == (200, web / "sub" / "index.html")
    assert resolve(web, "/client.mjs") == (200, web / "client.mjs")
    for refused in ("/../outside.txt", "/%2e%2e/outside.txt", "/a%5Cb", "/a%00b", "relative"):
        assert resolve(web, refused) == (403, None), refused
    for hidden in ("/.secret", "/node_modules/x.js", "/missing.js"):
        assert resolve(web, hidden) == (404, None), hidden
    (web / "escape").symlink_to(tmp_path)
    assert resolve(web, "/escape/outside.txt") == (403, None)
    # A canonical redirect (never ``//sub/``: a link to the host ``sub``), and answers for
    # paths the file system cannot look up.
    for odd in ("//sub", "///sub", "/./sub", "/%2Fsub"):
        assert resolve(web, odd) == (301, "/sub/"), odd
    assert resolve(web, "/.") == (301, "/")
    assert resolve(web, "/" + "a" * 10_000) == (414, None)
    assert resolve(web, "/" + "a" * 300) == (404, None)
    assert resolve(web, "/%C3%28") == (404, None)


def test_mounts_put_files_and_directories_at_fixed_urls(tmp_path: Path) -> None:
    web = make_site(tmp_path).resolve()
    pages = tmp_path / "pages"
    (pages / "deep").mkdir(parents=True)
    (pages / "check.html").write_text("check")
    (pages / "deep" / "index.html").write_text("deep")
    jobs = tmp_path / "other_jobs.py"
    jobs.write_text("JOBS = 1\n")
    mounts = check_mounts({"/check/": pages, "/jobs.py": jobs, "/sub/x/": pages / "deep"})
    assert resolve(web, "/jobs.py", mounts) == (200, jobs)
    assert resolve(web, "/%6Aobs.py", mounts) == (200, jobs)  # matched on decoded segments
    assert resolve(web, "/jobs.py/", mounts) == (404, None)
    assert resolve(web, "/check/check.html", mounts) == (200, pages / "check.html")
    assert resolve(web, "/check/deep", mounts) == (301, "/check/deep/")
    assert resolve(web, "/check", mounts) == (301, "/check/")
    assert resolve(web, "/sub/x/", mounts) == (200, pages / "deep" / "index.html")  # longest
    assert resolve(web, "/sub/", mounts) == (200, web / "sub" / "index.html")
    assert resolve(web, "/check/../outside.txt", mounts) == (403, None)
    (pages / "escape").symlink_to(web)  # a mount confines to its own directory
    assert resolve(web, "/check/escape/index.html", mounts) == (403, None)
    assert resolve(web, "/client.mjs", mounts) == (200, web / "client.mjs")
    for bad, message in (
        ({"jobs.py": jobs}, "absolute URL path"),
        ({"/a/../b": jobs}, "without dot segments"),
        ({"/x/": jobs}, "is not a directory"),
        ({"/x": pages}, "is not a file"),
    ):
        with pytest.raises(ValueError, match=message):
            check_mounts(bad)


async def test_the_site_serves_files_and_the_api_on_one_origin(tmp_path: Path) -> None:
    web = make_site(tmp_path)
    durably = create_durably(f"sqlite:///{tmp_path / 'site.db'}", jobs={"echo": echo_job})
    app = site_app(create_app(durably), web, "/api/durably")
    async with serve(app, durably) as running:
        http = running.http
        page = await http.get("/")
        assert (page.status_code, page.text) == (200, "<h1>demo</h1>")
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["cache-control"] == "no-cache"
        again = await http.get("/", headers={"if-none-match": page.headers["etag"]})
        assert (again.status_code, again.content) == (304, b"")
        module = await http.get("/client.mjs")
        assert module.headers["content-type"] == "text/javascript; charset=utf-8"
        head = await http.head("/client.mjs", headers={"accept-encoding": "identity"})
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["content-length"] == str(len("export const x = 1;"))
        zipped = await http.get("/client.mjs", headers={"accept-encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip"  # the rules of `durably-web serve`
        assert zipped.text == "export const x = 1;"
        version = content_version(b"export const x = 1;")  # the rules of sitebuild.versions
        versioned = await http.get(f"/client.mjs?v={version}")
        assert versioned.headers["cache-control"] == IMMUTABLE
        stale = await http.get("/client.mjs?v=0123456789abcdef")
        assert stale.headers["cache-control"] == "no-cache"
        missing = await http.get("/missing.js")
        assert (missing.status_code, missing.text) == (404, "404 Not Found\n")
        moved = await http.get("/sub?x=1")
        assert (moved.status_code, moved.headers["location"]) == (301, "/sub/?x=1")
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", int(running.url.rsplit(":", 1)[1])
        )
        writer.write(b"GET //sub HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        raw_answer = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
        writer.close()
        assert raw_answer.startswith("http/1.1 301") and "location: /sub/\r\n" in raw_answer
        long_path = await http.get("/" + "a" * 10_000)
        assert long_path.status_code == 414
        assert (await http.get("/.secret")).status_code == 404
        assert (await http.get("/node_modules/x.js")).status_code == 404
        assert (await http.post("/", content=b"x")).status_code == 405

        assert (await http.get("/api/durably/jobs")).json() == [{"key": "echo", "name": "echo"}]
        answer = await http.post("/api/durably/trigger", json={"jobName": "echo", "input": {}})
        assert answer.status_code == 200 and answer.json()["disposition"] == "created"
        missing = await http.get("/api/durably/nope")
        assert (missing.status_code, missing.json()["code"]) == (404, "not_found")


def test_serve_api_static_needs_a_directory(tmp_path: Path) -> None:
    target = str(Path(__file__).with_name("serve_target.py"))
    result = subprocess.run(
        [sys.executable, "-m", "durably_web", "serve-api", target, "--static", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "--static" in result.stderr and "no such directory" in result.stderr


async def test_only_paths_below_the_api_reach_it(tmp_path: Path) -> None:
    web = make_site(tmp_path)
    (web / "api").mkdir()
    (web / "api" / "durably-docs.txt").write_text("static")
    durably = create_durably(f"sqlite:///{tmp_path / 'site.db'}", jobs={"echo": echo_job})
    app = site_app(create_app(durably), web, "/api/durably/")
    async with serve(app, durably) as running:
        static = await running.http.get("/api/durably-docs.txt")
        assert (static.status_code, static.text) == (200, "static")
        api = await running.http.get("/api/durably/jobs")
        assert api.json() == [{"key": "echo", "name": "echo"}]


def test_the_old_module_names_still_import_for_one_release() -> None:
    """``durably_web.webbuild`` (named by the previous docs) is a deprecated alias."""
    from durably_web import sitebuild, webbuild
    from durably_web.sitebuild import asgi, paths
    from durably_web.webbuild import asgi as old_asgi
    from durably_web.webbuild import paths as old_paths

    assert old_asgi.site_app is asgi.site_app and old_paths.resolve is paths.resolve
    assert webbuild.build is sitebuild.build and webbuild.make_server is sitebuild.make_server
    assert "Deprecated alias" in (webbuild.__doc__ or "")
