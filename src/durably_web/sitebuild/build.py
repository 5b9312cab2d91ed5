"""``durably-web build``: a static site of an app (or the demo), with every byte it loads.

Steps, each skipped when its own inputs did not change:

1. The pinned npm tarballs (Pyodide, sqlite-wasm, PyScript, MicroPython), fetched from the
   registry and checked against the lock's sha512 integrity, with Python only (:mod:`.npm`).
2. A wheel of durably_web from the installed package (:mod:`.wheel_self`).
3. The stdlib zip and the wheels compiled to ``.pyc`` (:mod:`.precompiled`): shipped in the
   installed durably-web wheel; only a checkout compiles them (Node) and downloads the
   pinned wheels (pip).
4. ``pyodide/pyodide-lock.json`` for the served wheels (:mod:`.lock`), and the engine
   worker's packages as one tar with ``engine.json`` (:mod:`.engine_site`).
5. The pages that ask for it (:data:`~.preload.MARKER`) get ``<link rel="modulepreload">``
   tags for the JS client's module graph (:mod:`.preload`).
6. The site mirrored and its manifest written (:mod:`.mirror`), then the service worker that
   names the build and the precompressed siblings of the big files (:mod:`.precompress`:
   ``foo.wasm.gz``, and ``foo.wasm.br`` with the brotli package; not in the manifest), then
   the stamp.

Output (``.build/site/`` of the work directory, or ``out``; the URL layout of :mod:`.layout`)::

    index.html, app.py, ...   the app's files (``app``; default: the demo, ``web/demo/``)
    durably-sw.js             the service worker: the build id, then ``service_worker.js``
    _durably/runtime/         the engine worker's modules, service_worker.js, offline.mjs
    _durably/client/          the JS client (``durably_web/web/client/``)
    _durably/dashboard/       the runs dashboard (``durably_web/web/dashboard/``)
    _durably/vendor/pyodide/  pyodide.mjs, pyodide.asm.mjs, pyodide.asm.wasm, python_stdlib.zip,
                              pyodide-lock.json, *.whl (all .pyc, durably_web's included),
                              engine-site.tar, engine.json, python_stdlib_core.zip and
                              python_stdlib_rest.zip (what the engine worker loads)
    _durably/vendor/sqlite-wasm/  index.mjs, sqlite3.wasm, sqlite3-opfs-async-proxy.js
    _durably/vendor/pyscript/     PyScript's dist (no source maps)
    _durably/vendor/micropython/  micropython.mjs and its .wasm variants
    _durably/vendor/py/       a copy of ``durably_web/web/py/**/*.py`` (the page package's
                              light root) plus the page-side durably_web files
                              (:data:`PAGE_PACKAGE_FILES`), and ``files.json``
                              (:data:`PAGE_FILES`): what ``pyscript.mjs`` puts on the
                              interpreter's path
    _durably/manifest.json    every file of the site but the service worker and the
                              precompressed siblings: path -> size, sha256; its own
                              sha256 is the build id
    **/*.gz, **/*.br          precompressed copies of the compressible files of 4 KiB and
                              more (:mod:`.precompress`), for servers that send them

The stamp (``.build/stamp.json``) records the fingerprint of every input (see
:func:`~durably_web.sitebuild.layout.inputs_digest`, plus the wheel's metadata) and the
manifest's sha256. While both match and every manifest file is present with its size, a build
is a no-op that only hashes the inputs. The output is byte-for-byte reproducible. Builds of
one work directory are serialised by a lock file, so ``serve`` and a ``build`` in another
terminal cannot interleave.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import durably_web.sitebuild.npm as npm
from durably_web.sitebuild.engine_site import engine_site
from durably_web.sitebuild.layout import (
    PACKAGE,
    PREFIX,
    SERVICE_WORKER,
    VENDOR,
    BuildError,
    Layout,
    app_files,
    check_app,
    inputs_digest,
    walk,
    write_atomic,
)
from durably_web.sitebuild.lock import build_lock, render_lock
from durably_web.sitebuild.mirror import MANIFEST, mirror, read_manifest, verify
from durably_web.sitebuild.precompiled import served_archives
from durably_web.sitebuild.precompress import siblings
from durably_web.sitebuild.preload import render_pages
from durably_web.sitebuild.versions import BOOT_FILES, BOOT_FILES_MODULE, boot_files_module
from durably_web.sitebuild.wheel_self import build_self_wheel, wheel_metadata

__all__ = [
    "PAGE_FILES",
    "PAGE_PACKAGE_FILES",
    "BuildResult",
    "build",
    "generated_vendor_files",
    "is_stale",
    "page_files",
    "page_files_json",
    "service_worker_script",
    "versioned_boot_files",
]

PAGE_PACKAGE_FILES = (
    "errors.py",
    "json_value.py",
    "client/__init__.py",
    "client/dispatch.py",
    "client/jobs.py",
    "client/page.py",
    "client/page_client.py",
    "client/values.py",
    "client/live/__init__.py",
    "client/live/dom.py",
    "client/live/hub.py",
    "client/live/job_view.py",
    "client/live/log_view.py",
    "client/live/observable.py",
    "client/live/run_actions.py",
    "client/live/run_list.py",
    "client/live/run_view.py",
    "client/live/status.py",
    "protocol/__init__.py",
    "protocol/wire.py",
)
"""Files of the durably_web package a PyScript page imports (MicroPython-safe), copied into
``_durably/vendor/py/durably_web/`` beside ``web/py/durably_web/__init__.py`` (the page's
light package root, which imports no engine code)."""

PAGE_FILES = f"{VENDOR}/py/files.json"
"""The list of the page package's files (paths below ``_durably/vendor/py/``), written from
the same plan that copies them: the client's ``pyscript.mjs`` reads it to give PyScript its
``files``, so the list has this one home (:data:`PAGE_PACKAGE_FILES`) and cannot diverge."""

LOCK_FILE = f"{VENDOR}/pyodide/pyodide-lock.json"
"""Where the lock goes in the site: beside ``pyodide.mjs``, where PyScript looks."""


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What :func:`build` did.

    Attributes:
        site: the output directory (``.build/site``, or ``out``).
        vendor: its vendored runtimes and wheels (``<site>/_durably/vendor``).
        build_id: the sha256 of its manifest: what the service worker names and caches by.
        rebuilt: False when the build was a no-op (inputs and output unchanged).
        files: files in the manifest.
        total_bytes: their total size.
        written: files (re)written by this build.
        removed: stale files deleted by this build.
        seconds: wall time of the build.

    """

    site: Path
    vendor: Path
    build_id: str
    rebuilt: bool
    files: int
    total_bytes: int
    written: int
    removed: int
    seconds: float


def is_stale(
    root: Path, *, package: Path = PACKAGE, app: Path | None = None, out: Path | None = None
) -> bool:
    """Tell whether the site of ``root`` is missing, incomplete or older than its inputs.

    Args:
        root: the work directory (its ``.build/`` holds the build).
        package: the durably_web package directory the inputs come from (the installed one).
        app: the app's directory (default: the demo).
        out: where the site goes (default: ``.build/site`` of ``root``).

    Raises:
        BuildError: ``app`` is not an app directory.

    """
    layout = _layout(root, package, app, out)
    return _stale(layout, _digest(layout))


def build(
    root: Path,
    force: bool = False,
    *,
    log: Callable[[str], None] | None = None,
    package: Path = PACKAGE,
    app: Path | None = None,
    out: Path | None = None,
) -> BuildResult:
    """Build the site of ``root`` (see the module docstring), or do nothing if it is current.

    Args:
        root: the work directory: state (and by default the site) go in its ``.build/``.
        force: download and extract the npm packages again, recompile every archive the
            installed package does not ship (downloaded wheels are kept: their hashes are
            pinned), and rewrite the output.
        log: receives one line per action taken (default: silent).
        package: the durably_web package directory the inputs come from (the installed one).
        app: the app whose files are served at ``/`` (default: the demo).
        out: where the site goes (default: ``.build/site`` of ``root``).

    Returns:
        What was done.

    Raises:
        BuildError: a step failed, or ``app`` is not an app directory; the message is one
            line.

    """
    started = time.monotonic()
    layout = _layout(root, package, app, out)
    emit = log or (lambda _line: None)
    with _exclusive(layout):
        digest = _digest(layout)
        if not force and not _stale(layout, digest):
            manifest = read_manifest(layout.site) or {}
            build_id = hashlib.sha256((layout.site / MANIFEST).read_bytes()).hexdigest()
            return _result(layout, manifest, build_id, False, 0, 0, started)
        npm.fetch(layout, force=force, log=emit)
        info = npm.pyodide_info(layout)
        own = build_self_wheel(layout)
        stdlib, wheels = served_archives(layout, info, own, force=force, log=emit)
        served = [item.path for item in wheels]

        vendor = {f"{VENDOR}/{rel}": path for rel, path in npm.vendor_files(layout).items()}
        vendor[f"{VENDOR}/pyodide/python_stdlib.zip"] = stdlib.path
        vendor.update({f"{VENDOR}/pyodide/{path.name}": path for path in served})
        plan = {**app_files(layout), **_package_files(layout), **vendor}
        missing = sorted(str(path) for path in plan.values() if not path.is_file())
        if missing:
            raise BuildError(f"{missing[0]} is missing (it belongs in the site)")
        generated = generated_vendor_files(info, served, stdlib.path)
        generated[PAGE_FILES] = page_files_json(plan)
        for rel, page in render_pages(plan).items():  # the marker becomes the preload tags
            generated[rel] = page
            del plan[rel]
        generated[f"{PREFIX}/{BOOT_FILES_MODULE}"] = versioned_boot_files(plan, generated)
        del plan[f"{PREFIX}/{BOOT_FILES_MODULE}"]  # the source's empty map is not served
        compressed = siblings(
            {**{rel: path.read_bytes() for rel, path in plan.items()}, **generated}
        )
        mirrored = mirror(
            plan,
            generated,
            layout.site,
            lambda build_id: {SERVICE_WORKER: service_worker_script(build_id), **compressed},
        )

        manifest_sha = hashlib.sha256((layout.site / MANIFEST).read_bytes()).hexdigest()
        stamp = {"inputs": digest, "manifest": manifest_sha}
        write_atomic(_stamp_path(layout), (json.dumps(stamp, indent=1) + "\n").encode())
        result = _result(
            layout,
            mirrored.manifest,
            mirrored.build_id,
            True,
            mirrored.written,
            mirrored.removed,
            started,
        )
        emit(
            f"{layout.site}: {result.files} files, {result.total_bytes / 1e6:.1f} MB "
            f"({result.written} written, {result.removed} removed) in {result.seconds:.1f} s"
        )
        return result


def generated_vendor_files(
    info: dict[str, Any], served: list[Path], stdlib: Path
) -> dict[str, bytes]:
    """Return the vendor files a build writes from the served archives: site path -> bytes.

    The lock (:data:`LOCK_FILE`) and the engine worker's tar, stdlib parts and
    ``engine.json`` (:mod:`.engine_site`), beside ``pyodide.mjs``.

    Args:
        info: Pyodide's ``pyodide-lock.json`` (``npm.pyodide_info``).
        served: the wheels the site serves.
        stdlib: the stdlib zip the site serves.

    """
    lock = build_lock(info, served)
    engine = engine_site(lock, served, stdlib)
    return {
        LOCK_FILE: render_lock(lock),
        **{f"{VENDOR}/pyodide/{name}": data for name, data in engine.items()},
    }


def versioned_boot_files(plan: dict[str, Path], generated: dict[str, bytes]) -> bytes:
    """Return the site's ``boot_files.mjs``: the content versions of the boot files.

    Args:
        plan: site path -> source file of the files copied into the site.
        generated: site path -> bytes of the files the build writes.

    """
    files = {}
    for name in BOOT_FILES:
        rel = f"{VENDOR}/pyodide/{name}"
        files[name] = generated[rel] if rel in generated else plan[rel].read_bytes()
    return boot_files_module(files)


def page_files_json(site_paths: Iterable[str]) -> bytes:
    """Return :data:`PAGE_FILES`: those of ``site_paths`` below ``_durably/vendor/py/``.

    Args:
        site_paths: the paths of the site's files (``/``-separated, relative to the site).

    Returns:
        A sorted JSON list of paths relative to ``_durably/vendor/py/``
        (``"durably_web/errors.py"``, ...), one line.

    """
    prefix = f"{VENDOR}/py/"
    files = sorted(rel.removeprefix(prefix) for rel in site_paths if rel.startswith(prefix))
    return (json.dumps(files) + "\n").encode()


def page_files(layout: Layout) -> dict[str, Path]:
    """Return the page package a build serves: site path -> source file.

    ``durably_web/web/py/**/*.py`` (the package's light root) and :data:`PAGE_PACKAGE_FILES`
    of the package, below ``_durably/vendor/py/``.
    """
    files = {
        f"{VENDOR}/py/{path.relative_to(layout.page_py).as_posix()}": path
        for path in walk(layout.page_py, ".py")
    }
    for rel in PAGE_PACKAGE_FILES:  # one source: the durably_web package, also served to pages
        files[f"{VENDOR}/py/durably_web/{rel}"] = layout.package / rel
    return files


def service_worker_script(build_id: str) -> bytes:
    """Return the site's ``durably-sw.js``: the build id, then the runtime's service worker.

    Every build with other files has another id, so this file's bytes change, which is how a
    browser notices a new build (it compares the registered script byte for byte).
    """
    return (
        "// Generated by `durably-web build`: the service worker of this site (do not edit).\n"
        f"// Build {build_id}: the sha256 of {MANIFEST}.\n"
        f'self.DURABLY_BUILD = "{build_id}";\n'
        f'importScripts("./{PREFIX}/runtime/service_worker.js");\n'
    ).encode()


def _layout(root: Path, package: Path, app: Path | None, out: Path | None) -> Layout:
    if app is not None:
        check_app(app.resolve())  # before anything is written into it
    return Layout(
        root.resolve(),
        package.resolve(),
        app.resolve() if app is not None else None,
        out.resolve() if out is not None else None,
    )


def _package_files(layout: Layout) -> dict[str, Path]:
    """Map the runtime, the client, the dashboard and the page package below ``_durably/``."""
    files = {}
    pages = (
        ("runtime", layout.runtime),
        ("client", layout.client),
        ("dashboard", layout.dashboard),
    )
    for name, directory in pages:
        for path in walk(directory):
            files[f"{PREFIX}/{name}/{path.relative_to(directory).as_posix()}"] = path
    return {**files, **page_files(layout)}


def _digest(layout: Layout) -> str:
    """Return the build's fingerprint: every input file, and the metadata the wheel carries."""
    return inputs_digest(layout, wheel_metadata()[1].encode())


def _stamp_path(layout: Layout) -> Path:
    return layout.state / "stamp.json"


def _stale(layout: Layout, digest: str) -> bool:
    try:
        stamp = json.loads(_stamp_path(layout).read_text())
        manifest_bytes = (layout.site / MANIFEST).read_bytes()
    except (OSError, ValueError):
        return True
    if not isinstance(stamp, dict) or stamp.get("inputs") != digest:
        return True
    if stamp.get("manifest") != hashlib.sha256(manifest_bytes).hexdigest():
        return True
    if not (layout.site / SERVICE_WORKER).is_file():
        return True
    manifest = read_manifest(layout.site)
    return manifest is None or not verify(layout.site, manifest)


def _result(
    layout: Layout,
    manifest: dict[str, dict[str, int | str]],
    build_id: str,
    rebuilt: bool,
    written: int,
    removed: int,
    started: float,
) -> BuildResult:
    sizes = [entry["size"] for entry in manifest.values()]
    return BuildResult(
        site=layout.site,
        vendor=layout.vendor,
        build_id=build_id,
        rebuilt=rebuilt,
        files=len(manifest),
        total_bytes=sum(size for size in sizes if isinstance(size, int)),
        written=written,
        removed=removed,
        seconds=time.monotonic() - started,
    )


@contextlib.contextmanager
def _exclusive(layout: Layout) -> Iterator[None]:
    """Hold ``.build/build.lock`` so two builds of one work directory never interleave (POSIX)."""
    layout.state.mkdir(parents=True, exist_ok=True)
    if sys.platform == "win32":  # no fcntl; builds are rare enough there
        yield
        return
    import fcntl

    with (layout.state / "build.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
