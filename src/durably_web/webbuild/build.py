"""``durably-web build``: vendor every byte the browser loads into ``web/vendor``.

Steps, each skipped when its own inputs did not change:

1. ``npm ci`` in ``web/`` (:mod:`.npm`): Pyodide, sqlite-wasm, PyScript, MicroPython.
2. ``pip download --require-hashes`` of the pinned wheels (:mod:`.wheels`).
3. A wheel of durably_web from ``src/durably_web`` (:mod:`.wheel_self`).
4. The stdlib zip and every wheel compiled to ``.pyc`` by Pyodide under Node
   (:mod:`.precompile`).
5. ``pyodide/pyodide-lock.json`` for the served wheels (:mod:`.lock`).
6. ``web/vendor`` mirrored and ``manifest.json`` written (:mod:`.mirror`), then the stamp.

Output::

    web/vendor/pyodide/      pyodide.mjs, pyodide.asm.mjs, pyodide.asm.wasm, python_stdlib.zip,
                             pyodide-lock.json, *.whl (all .pyc, durably_web's included)
    web/vendor/sqlite-wasm/  index.mjs, sqlite3.wasm, sqlite3-opfs-async-proxy.js
    web/vendor/pyscript/     PyScript's dist (no source maps)
    web/vendor/micropython/  micropython.mjs and its .wasm variants
    web/vendor/py/           a copy of web/py/**/*.py, when web/py exists, plus the page-side
                             durably_web files of src (PAGE_PACKAGE_FILES)
    web/vendor/manifest.json path -> size, sha256

The stamp (``.build/stamp.json``) records the fingerprint of every input (see
:func:`~durably_web.webbuild.layout.input_files`) and the manifest's sha256. While both match
and every manifest file is present with its size, a build is a no-op that only hashes the
inputs. The output is byte-for-byte reproducible. Builds of one root are serialised by a lock
file, so ``serve`` and a ``build`` in another terminal cannot interleave.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from durably_web.webbuild import npm
from durably_web.webbuild.layout import (
    BuildError,
    Layout,
    input_files,
    inputs_digest,
    write_atomic,
)
from durably_web.webbuild.lock import build_lock, render_lock
from durably_web.webbuild.mirror import MANIFEST, mirror, read_manifest, verify
from durably_web.webbuild.precompile import Job, compiled_wheel_name, precompile
from durably_web.webbuild.wheel_self import build_self_wheel
from durably_web.webbuild.wheels import download

__all__ = ["BuildResult", "build", "is_stale"]

PAGE_PACKAGE_FILES = (
    "errors.py",
    "json_value.py",
    "client/__init__.py",
    "client/dispatch.py",
    "client/jobs.py",
    "client/page.py",
    "client/page_client.py",
    "client/values.py",
    "protocol/__init__.py",
    "protocol/wire.py",
)
"""Files of ``src/durably_web`` a PyScript page imports (MicroPython-safe), copied into
``web/vendor/py/durably_web/`` beside ``web/py/durably_web/__init__.py`` (the page's light
package root, which imports no engine code)."""

OWNED_DIRS = frozenset({"micropython", "py", "pyodide", "pyscript", "sqlite-wasm"})
"""The directories of ``web/vendor`` the build keeps exact; it leaves any other one alone."""

LOCK_FILE = "pyodide/pyodide-lock.json"
"""Where the lock goes in ``web/vendor``: beside ``pyodide.mjs``, where PyScript looks."""


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What :func:`build` did.

    Attributes:
        vendor: the output directory (``web/vendor``).
        rebuilt: False when the build was a no-op (inputs and output unchanged).
        files: files in the output (``manifest.json`` not counted).
        total_bytes: their total size.
        written: files (re)written by this build.
        removed: stale files deleted by this build.
        seconds: wall time of the build.

    """

    vendor: Path
    rebuilt: bool
    files: int
    total_bytes: int
    written: int
    removed: int
    seconds: float


def is_stale(root: Path) -> bool:
    """Tell whether ``web/vendor`` of ``root`` is missing, incomplete or older than its inputs.

    Args:
        root: the project root (the directory holding ``web/package.json``).

    """
    layout = Layout(root.resolve())
    return _stale(layout, inputs_digest(layout))


def build(
    root: Path, force: bool = False, *, log: Callable[[str], None] | None = None
) -> BuildResult:
    """Build ``web/vendor`` of ``root`` (see the module docstring), or do nothing if current.

    Args:
        root: the project root (the directory holding ``web/package.json``).
        force: redo every step: ``npm ci`` and every precompilation (downloaded wheels are
            kept; their hashes are pinned) and rewrite the output.
        log: receives one line per action taken (default: silent).

    Returns:
        What was done.

    Raises:
        BuildError: a step failed; the message is one line.

    """
    started = time.monotonic()
    layout = Layout(root.resolve())
    emit = log or (lambda _line: None)
    with _exclusive(layout):
        digest = inputs_digest(layout)
        if not force and not _stale(layout, digest):
            manifest = read_manifest(layout.vendor) or {}
            return _result(layout, manifest, False, 0, 0, started)
        npm.install(layout, force=force, log=emit)
        info = npm.pyodide_info(layout)
        wheels = download(layout, info, log=emit)
        own = build_self_wheel(layout)
        stdlib = npm.pyodide_dir(layout) / "python_stdlib.zip"
        jobs = [Job("stdlib", stdlib, stdlib.name)]
        for path in [*(wheels[name] for name in sorted(wheels)), own]:
            jobs.append(Job("wheel", path, compiled_wheel_name(path, info)))
        compiled = precompile(layout, jobs, info, force=force, log=emit)
        served = [compiled[job.name] for job in jobs if job.kind == "wheel"]

        plan = npm.vendor_files(layout)
        plan["pyodide/python_stdlib.zip"] = compiled[stdlib.name]
        plan.update({f"pyodide/{path.name}": path for path in served})
        for path in input_files(layout):
            if path.is_relative_to(layout.page_py):
                plan[f"py/{path.relative_to(layout.page_py).as_posix()}"] = path
        for rel in PAGE_PACKAGE_FILES:  # one source: src/durably_web, also served to pages
            plan[f"py/durably_web/{rel}"] = layout.package_src / rel
        missing = sorted(str(path) for path in plan.values() if not path.is_file())
        if missing:
            raise BuildError(f"{missing[0]} is missing (it belongs in web/vendor)")
        generated = {LOCK_FILE: render_lock(build_lock(info, served))}
        mirrored = mirror(plan, generated, layout.vendor, OWNED_DIRS)

        manifest_sha = hashlib.sha256((layout.vendor / MANIFEST).read_bytes()).hexdigest()
        stamp = {"inputs": digest, "manifest": manifest_sha}
        write_atomic(_stamp_path(layout), (json.dumps(stamp, indent=1) + "\n").encode())
        result = _result(
            layout, mirrored.manifest, True, mirrored.written, mirrored.removed, started
        )
        emit(
            f"{layout.vendor}: {result.files} files, {result.total_bytes / 1e6:.1f} MB "
            f"({result.written} written, {result.removed} removed) in {result.seconds:.1f} s"
        )
        return result


def _stamp_path(layout: Layout) -> Path:
    return layout.state / "stamp.json"


def _stale(layout: Layout, digest: str) -> bool:
    try:
        stamp = json.loads(_stamp_path(layout).read_text())
        manifest_bytes = (layout.vendor / MANIFEST).read_bytes()
    except (OSError, ValueError):
        return True
    if not isinstance(stamp, dict) or stamp.get("inputs") != digest:
        return True
    if stamp.get("manifest") != hashlib.sha256(manifest_bytes).hexdigest():
        return True
    manifest = read_manifest(layout.vendor)
    return manifest is None or not verify(layout.vendor, manifest)


def _result(
    layout: Layout,
    manifest: dict[str, dict[str, int | str]],
    rebuilt: bool,
    written: int,
    removed: int,
    started: float,
) -> BuildResult:
    sizes = [entry["size"] for entry in manifest.values()]
    return BuildResult(
        vendor=layout.vendor,
        rebuilt=rebuilt,
        files=len(manifest),
        total_bytes=sum(size for size in sizes if isinstance(size, int)),
        written=written,
        removed=removed,
        seconds=time.monotonic() - started,
    )


@contextlib.contextmanager
def _exclusive(layout: Layout) -> Iterator[None]:
    """Hold ``.build/build.lock`` so two builds of one root never interleave (POSIX only)."""
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
