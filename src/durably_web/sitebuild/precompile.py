"""The precompile step: the stdlib zip and wheels, compiled to ``.pyc`` by Pyodide under Node.

A ``.pyc`` is only valid for the CPython that wrote it, and the only CPython 3.14 on a build
machine is Pyodide's own, so ``sitebuild/tools/precompile.mjs`` boots Pyodide (the files of
its npm tarball, ``.build/npm/packages/pyodide``) under Node and runs
``sitebuild/tools/pyc_compile.py`` inside it (see their headers for the archive format:
sourceless, unchecked hash-based ``.pyc``, fixed dates, rewritten ``RECORD``). The page then
boots in ~1.8 s instead of ~4.2 s.

Node is only needed where the installed package does not ship an archive already compiled
(:mod:`.precompiled`): a released durably-web wheel ships all of them, so building a site
from it needs no Node; a checkout (an editable install) compiles here, once per archive.

Every compiled archive has a *key*: a hash of its kind, the sha256 of its source archive,
both helpers and Pyodide's ``info``. Outputs are cached in ``.build/pyc/<key>/``: a build only
runs Node for keys it has not compiled (after a source change, just the durably_web wheel).
Unused cache entries are deleted.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from durably_web.sitebuild.layout import BuildError, Layout, sha256_file
from durably_web.sitebuild.npm import pyodide_dir

__all__ = [
    "Job",
    "archive_key",
    "cached",
    "compile_archives",
    "compiled_wheel_name",
    "prune",
    "salt",
]

_HELPERS = ("precompile.mjs", "pyc_compile.py")


@dataclass(frozen=True, slots=True)
class Job:
    """One archive to compile: ``kind`` is ``"stdlib"`` or ``"wheel"``; ``name`` the output's.

    ``dataclass_imports``: modules the compiled archive is imported with, to ship the bytecode
    of the methods their dataclasses generate (``pyc_compile.py`` ``dataclass_code``; for
    durably_web's own wheel, whose source, and so the archive's key, names them).
    """

    kind: str
    src: Path
    name: str
    dataclass_imports: tuple[str, ...] = ()


def compiled_wheel_name(wheel: Path, info: dict[str, Any]) -> str:
    """Name a compiled wheel: ``pydantic-2.14.4-py3-none-any.whl`` -> ``...-cp314-none-any.whl``.

    Raises:
        BuildError: the wheel is not for Pyodide's CPython.

    """
    parts = wheel.name.removesuffix(".whl").split("-")
    if len(parts) != 5:
        raise BuildError(f"{wheel.name}: not a wheel file name (build tags are not supported)")
    name, version, python_tag, abi, platform = parts
    interpreter = "cp" + "".join(str(info["python"]).split(".")[:2])
    tags = python_tag.split(".")
    if interpreter not in tags and "py3" not in tags:
        raise BuildError(f"{wheel.name}: not a wheel for {interpreter}")
    return f"{name}-{version}-{interpreter}-{abi}-{platform}.whl"


def salt(layout: Layout, info: dict[str, Any]) -> str:
    """Return what every key depends on besides its source: the helpers and Pyodide's info.

    Raises:
        BuildError: a helper is missing from the package.

    """
    helpers = [layout.tools / name for name in _HELPERS]
    for helper in helpers:
        if not helper.is_file():
            raise BuildError(f"{helper} is missing (it compiles the .pyc archives)")
    return json.dumps([[sha256_file(h) for h in helpers], info], sort_keys=True)


def archive_key(salt: str, kind: str, source_sha256: str) -> str:
    """Return the key of the compiled form of a source archive (hex sha256)."""
    return hashlib.sha256(f"{salt}\n{kind}\n{source_sha256}".encode()).hexdigest()


def cached(layout: Layout, key: str) -> Path | None:
    """Return the archive compiled under ``key`` in ``.build/pyc``, or None."""
    directory = layout.state / "pyc" / key[:32]
    found = sorted(directory.glob("*")) if directory.is_dir() else []
    return found[0] if len(found) == 1 and found[0].is_file() else None


def compile_archives(
    layout: Layout,
    jobs: list[Job],
    info: dict[str, Any],
    *,
    log: Callable[[str], None],
    boot_stdlib: Path | None = None,
) -> dict[str, Path]:
    """Compile each job's archive with Pyodide under Node, into ``.build/pyc/<key>/``.

    Args:
        layout: the build.
        jobs: the archives; each ``name`` is the file name of its output.
        info: Pyodide's lock ``info`` (part of the key).
        log: receives one progress line.
        boot_stdlib: an already compiled stdlib to boot Pyodide on (~2 s faster than the
            stock one; the ``.pyc`` it writes do not depend on it: byte-identical output).

    Returns:
        Output name -> compiled archive in the cache.

    Raises:
        BuildError: Node is missing or the compilation failed.

    """
    if not jobs:
        return {}
    key_salt = salt(layout, info)
    outputs = {
        job.name: layout.state
        / "pyc"
        / archive_key(key_salt, job.kind, sha256_file(job.src))[:32]
        / job.name
        for job in jobs
    }
    log(f"precompile {len(jobs)} archive(s) to .pyc with Pyodide {info['python']} under Node")
    _run_node(layout, [(job, outputs[job.name]) for job in jobs], boot_stdlib, log)
    return outputs


def prune(layout: Layout, keep: Iterable[Path]) -> None:
    """Delete every ``.build/pyc`` entry but the directories of ``keep``."""
    cache = layout.state / "pyc"
    kept = {path.parent for path in keep}
    for entry in cache.iterdir() if cache.is_dir() else ():
        if entry not in kept:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def _run_node(
    layout: Layout, todo: list[tuple[Job, Path]], stdlib: Path | None, log: Callable[[str], None]
) -> None:
    node = shutil.which("node")
    if node is None:
        what = ", ".join(job.name for job, _ in todo[:3]) + (", ..." if len(todo) > 3 else "")
        raise BuildError(
            f"node not found on PATH, and this durably-web install ships no precompiled {what} "
            "(an editable install, or its sources changed): install Node.js 20+ to compile "
            "them, or install a durably-web wheel"
        )
    with tempfile.TemporaryDirectory(dir=layout.state, prefix="precompile-") as tmp:
        # Compile into a scratch directory and move on success, so the cache never holds half
        # a file. Only the directory differs: pyc_compile.py reads the wheel tag from the name.
        scratch = [Path(tmp) / str(index) / out.name for index, (_, out) in enumerate(todo)]
        for path in scratch:
            path.parent.mkdir()
        spec = [
            {
                "kind": job.kind,
                "src": str(job.src.resolve()),
                "dst": str(dst),
                "dataclass_imports": list(job.dataclass_imports),
            }
            for (job, _), dst in zip(todo, scratch, strict=True)
        ]
        spec_file = Path(tmp) / "jobs.json"
        spec_file.write_text(json.dumps(spec))
        command = [node, str(layout.tools / "precompile.mjs"), str(pyodide_dir(layout))]
        command += [str(spec_file), *([str(stdlib)] if stdlib else [])]
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise BuildError(f"cannot run node: {exc}") from exc
        if result.returncode != 0:
            lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
            detail = next(
                (ln for ln in reversed(lines) if "Error" in ln), lines[-1] if lines else ""
            )
            raise BuildError(f"precompile with Pyodide under Node failed: {detail or 'no output'}")
        try:
            report = json.loads(result.stdout)
        except ValueError as exc:
            raise BuildError(f"precompile printed no report: {result.stdout[-200:]!r}") from exc
        for archive in report["archives"]:
            for failure in archive["failed"]:  # kept as source; Pyodide still imports it
                log(f"kept as source (does not compile): {failure}")
        for (_, out), dst in zip(todo, scratch, strict=True):
            if out.parent.exists():
                shutil.rmtree(out.parent)
            out.parent.mkdir(parents=True)
            dst.replace(out)
