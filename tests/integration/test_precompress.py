"""Precompressed siblings (``foo.wasm.br``, ``foo.wasm.gz``): written by the build, sent by the
static server when the request accepts them, never when they are older than their file.

Real sockets (``durably-web serve``'s server) and real files; the build's own siblings are
checked on the session build of this checkout (marked slow).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import os
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import brotli
import pytest

from durably_web.sitebuild import BuildResult, build, make_server, precompress
from durably_web.sitebuild.mirror import MANIFEST
from durably_web.sitebuild.precompress import MIN_SIZE, compress, siblings, wanted
from durably_web.sitebuild.static import accepts
from durably_web.sitebuild.versions import (
    BOOT_FILES,
    BOOT_FILES_MODULE,
    IMMUTABLE,
    content_version,
)

REPO = Path(__file__).resolve().parents[2]
Get = Callable[..., tuple[http.client.HTTPResponse, bytes]]
WASM = b"\0asm\1\0\0\0" + bytes(range(256)) * 40  # compressible, over MIN_SIZE


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site with a wasm file and its siblings, a small script, a core zip and a wheel."""
    web = tmp_path / "site"
    web.mkdir()
    files = {
        "module.wasm": WASM,
        "small.mjs": b"export const answer = 42;\n",
        "python_stdlib_core.zip": _stored_zip(),
        "x-1.0-py3-none-any.whl": b"PK" + bytes(8000),
    }
    for name, data in files.items():
        (web / name).write_bytes(data)
    for name, data in siblings(files, cache=tmp_path / "cache").items():
        (web / name).write_bytes(data)
    return web


def _stored_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("json/__init__.pyc", b"pyc" * 3000)
    return buffer.getvalue()


@pytest.fixture
def get(site: Path) -> Iterator[Get]:
    """GET a path of ``site`` from a real server: ``get(path, **headers)`` -> (response, body)."""
    server = make_server(site, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    connections: list[http.client.HTTPConnection] = []

    def request(
        path: str, method: str = "GET", **headers: str
    ) -> tuple[http.client.HTTPResponse, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        connections.append(connection)
        connection.request(
            method, path, headers={k.replace("_", "-"): v for k, v in headers.items()}
        )
        response = connection.getresponse()
        return response, response.read()

    yield request
    for connection in connections:
        connection.close()
    server.shutdown()
    server.server_close()


def test_brotli_is_preferred_then_gzip_then_the_file_itself(site: Path, get: Get) -> None:
    plain, plain_body = get("/module.wasm")
    br, br_body = get("/module.wasm", Accept_Encoding="gzip, deflate, br, zstd")
    gz, gz_body = get("/module.wasm", Accept_Encoding="gzip, deflate")
    assert plain.getheader("Content-Encoding") is None and plain_body == WASM
    assert br.getheader("Content-Encoding") == "br"
    assert brotli.decompress(br_body) == WASM
    assert br_body == (site / "module.wasm.br").read_bytes()
    assert gz.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(gz_body) == WASM
    assert gz_body == (site / "module.wasm.gz").read_bytes()
    for response, body in ((plain, plain_body), (br, br_body), (gz, gz_body)):
        assert response.getheader("Content-Type") == "application/wasm"
        assert response.getheader("Content-Length") == str(len(body))
        assert response.getheader("Vary") == "Accept-Encoding"
    tags = {r.getheader("ETag") for r in (plain, br, gz)}
    assert len(tags) == 3  # three representations, three tags
    refused, _ = get("/module.wasm", Accept_Encoding="br;q=0, gzip")
    assert refused.getheader("Content-Encoding") == "gzip"


def test_revalidation_and_head_work_on_the_precompressed_answer(get: Get) -> None:
    first, body = get("/module.wasm", Accept_Encoding="br")
    again, empty = get("/module.wasm", Accept_Encoding="br", If_None_Match=first.getheader("ETag"))
    assert (again.status, empty, again.getheader("ETag")) == (304, b"", first.getheader("ETag"))
    other, _ = get("/module.wasm", Accept_Encoding="gzip", If_None_Match=first.getheader("ETag"))
    assert other.status == 200  # the gzip representation is another one
    head, head_body = get("/module.wasm", "HEAD", Accept_Encoding="br")
    assert head_body == b"" and head.getheader("Content-Length") == str(len(body))
    assert head.getheader("Content-Encoding") == "br"


def test_a_sibling_older_than_its_file_is_never_sent(site: Path, get: Get) -> None:
    file = site / "module.wasm"
    file.write_bytes(WASM + b"new")
    later = time.time_ns() + 5_000_000_000
    os.utime(file, ns=(later, later))
    response, body = get("/module.wasm", Accept_Encoding="br, gzip")
    assert response.getheader("Content-Encoding") == "gzip"  # made here, from the new file
    assert gzip.decompress(body) == WASM + b"new"
    (site / "module.wasm.gz").unlink()
    (site / "module.wasm.br").unlink()
    fresh, fresh_body = get("/module.wasm", Accept_Encoding="br, gzip")
    assert gzip.decompress(fresh_body) == WASM + b"new"
    assert fresh.getheader("ETag") == response.getheader("ETag")


def test_a_url_versioned_with_the_files_content_is_immutable(site: Path, get: Get) -> None:
    version = content_version(WASM)
    for path in (f"/module.wasm?v={version}", f"/module.wasm?x=1&v={version}"):
        br, body = get(path, Accept_Encoding="br")
        assert br.getheader("Cache-Control") == IMMUTABLE, path
        assert br.getheader("Content-Encoding") == "br" and brotli.decompress(body) == WASM
        assert br.getheader("Vary") == "Accept-Encoding"
        plain, plain_body = get(path)
        assert plain.getheader("Cache-Control") == IMMUTABLE and plain_body == WASM
    # The same representations and tags as the plain URL's, which stays revalidated.
    unversioned, _ = get("/module.wasm", Accept_Encoding="br")
    assert unversioned.getheader("Cache-Control") == "no-cache"
    assert unversioned.getheader("ETag") == br.getheader("ETag")
    again, _ = get(
        f"/module.wasm?v={version}", Accept_Encoding="br", If_None_Match=br.getheader("ETag")
    )
    assert (again.status, again.getheader("Cache-Control")) == (304, IMMUTABLE)
    head, _ = get(f"/module.wasm?v={version}", "HEAD")
    assert head.getheader("Cache-Control") == IMMUTABLE
    small, _ = get(f"/small.mjs?v={content_version((site / 'small.mjs').read_bytes())}")
    assert small.getheader("Cache-Control") == IMMUTABLE  # any file, not only compressed ones
    for wrong in ("", "?v=", "?v=0123456789abcdef", f"?v={version[:-1]}", f"?v={version}0"):
        response, _ = get(f"/module.wasm{wrong}", Accept_Encoding="br")
        assert response.getheader("Cache-Control") == "no-cache", wrong
    missing, _ = get(f"/missing.wasm?v={version}")
    assert (missing.status, missing.getheader("Cache-Control")) == (404, "no-cache")


def test_a_rebuilt_file_is_never_immutable_under_its_old_version(site: Path, get: Get) -> None:
    old = content_version(WASM)
    first, _ = get(f"/module.wasm?v={old}")
    assert first.getheader("Cache-Control") == IMMUTABLE
    file = site / "module.wasm"
    file.write_bytes(WASM + b"new")
    later = time.time_ns() + 5_000_000_000
    os.utime(file, ns=(later, later))
    stale, body = get(f"/module.wasm?v={old}")
    assert (stale.getheader("Cache-Control"), body) == ("no-cache", WASM + b"new")
    fresh, _ = get(f"/module.wasm?v={content_version(WASM + b'new')}")
    assert fresh.getheader("Cache-Control") == IMMUTABLE


def test_only_compressible_files_and_the_stored_core_zip_are_compressed(
    site: Path,
    get: Get,
) -> None:
    core, core_body = get("/python_stdlib_core.zip", Accept_Encoding="br")
    assert core.getheader("Content-Encoding") == "br"
    assert core.getheader("Content-Type") == "application/zip"
    assert brotli.decompress(core_body) == (site / "python_stdlib_core.zip").read_bytes()
    wheel, wheel_body = get("/x-1.0-py3-none-any.whl", Accept_Encoding="br, gzip")
    assert wheel.getheader("Content-Encoding") is None and wheel.getheader("Vary") is None
    assert wheel_body == (site / "x-1.0-py3-none-any.whl").read_bytes()
    small, small_body = get("/small.mjs", Accept_Encoding="br, gzip")
    assert not (site / "small.mjs.br").exists()  # under MIN_SIZE: no sibling
    assert small.getheader("Content-Encoding") == "gzip"  # made per request
    assert gzip.decompress(small_body) == b"export const answer = 42;\n"


def test_siblings_are_reproducible_and_cached_by_content(tmp_path: Path) -> None:
    files = {"a/module.wasm": WASM, "a/tiny.js": b"x", "a/b.whl": WASM, "a/lib.zip": WASM}
    cache = tmp_path / "cache"
    made = siblings(files, cache=cache)
    assert set(made) == {"a/module.wasm.gz", "a/module.wasm.br"}
    assert gzip.decompress(made["a/module.wasm.gz"]) == WASM
    assert brotli.decompress(made["a/module.wasm.br"]) == WASM
    digest = hashlib.sha256(WASM).hexdigest()
    cached = cache / "compressed" / f"{digest}.gz"
    assert cached.read_bytes() == made["a/module.wasm.gz"]
    assert compress(WASM, "gzip") == made["a/module.wasm.gz"]  # no name, no date in it
    cached.write_bytes(b"from the cache")  # a second build reads the cache, never recompresses
    assert siblings(files, cache=cache)["a/module.wasm.gz"] == b"from the cache"
    assert wanted("_durably/vendor/pyodide/python_stdlib_core.zip")
    assert not wanted("_durably/vendor/pyodide/python_stdlib.zip")
    assert len(WASM) >= MIN_SIZE


def test_without_the_brotli_package_only_gzip_siblings_are_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(precompress, "brotli_module", lambda: None)
    assert set(siblings({"m.wasm": WASM}, cache=tmp_path)) == {"m.wasm.gz"}
    with pytest.raises(ValueError, match=r"brotli package \(durably-web\[brotli\]\)"):
        compress(WASM, "br")
    with pytest.raises(ValueError, match="unknown content coding 'zstd'"):
        compress(WASM, "zstd")


def test_accept_encoding_rules_for_each_coding() -> None:
    assert accepts("gzip, deflate, br, zstd", "br")
    assert accepts("*", "br") and not accepts("*;q=0", "br")
    assert not accepts("gzip", "br") and not accepts(None, "br")
    assert accepts("x-gzip", "gzip") and not accepts("br;q=0.0, gzip", "br")


@pytest.fixture(scope="session")
def repo_build() -> BuildResult:
    """The build of this checkout (a no-op when it is current)."""
    return build(REPO)


@pytest.mark.slow
def test_the_build_writes_siblings_of_the_engine_files_outside_the_manifest(
    repo_build: BuildResult,
) -> None:
    site = repo_build.site
    manifest = json.loads((site / MANIFEST).read_bytes())
    assert not [rel for rel in manifest if rel.endswith((".gz", ".br"))]
    pyodide = repo_build.vendor / "pyodide"
    for name in ("pyodide.asm.wasm", "engine-site.tar", "python_stdlib_core.zip"):
        data = (pyodide / name).read_bytes()
        assert gzip.decompress((pyodide / f"{name}.gz").read_bytes()) == data
        assert brotli.decompress((pyodide / f"{name}.br").read_bytes()) == data
    for name in ("python_stdlib.zip", "python_stdlib_rest.zip"):  # deflated members: as is
        assert not (pyodide / f"{name}.gz").exists()
    with zipfile.ZipFile(pyodide / "python_stdlib_core.zip") as core:
        assert {info.compress_type for info in core.infolist()} == {zipfile.ZIP_STORED}


@pytest.mark.slow
def test_the_build_versions_the_boot_files_by_their_content(repo_build: BuildResult) -> None:
    module = (repo_build.site / "_durably" / BOOT_FILES_MODULE).read_text()
    versions = json.loads(module.partition("BOOT_FILES = ")[2].rstrip().removesuffix(";"))
    pyodide = repo_build.vendor / "pyodide"
    assert versions == {name: content_version((pyodide / name).read_bytes()) for name in BOOT_FILES}
    manifest = json.loads((repo_build.site / MANIFEST).read_bytes())
    assert f"_durably/{BOOT_FILES_MODULE}" in manifest  # so the service worker caches it
    source = REPO / "src" / "durably_web" / "web" / BOOT_FILES_MODULE
    assert "BOOT_FILES = {};" in source.read_text()  # the source tree asks for plain URLs
