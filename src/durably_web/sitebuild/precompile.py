"""The precompile step: the stdlib zip and every wheel, compiled to ``.pyc`` by Pyodide.

A ``.pyc`` is only valid for the CPython that wrote it, and the only CPython 3.14 on a build
machine is Pyodide's own, so ``sitebuild/tools/precompile.mjs`` boots Pyodide from
``.build/npm/node_modules`` under Node and runs ``sitebuild/tools/pyc_compile.py`` inside it
(see their headers for the archive format: sourceless, unchecked hash-based ``.pyc``, fixed
dates, rewritten ``RECORD``). The page then boots in ~1.8 s instead of ~4.2 s.

Outputs are cached in ``.build/pyc/<key>/`` where the key hashes the input archive, both
helpers and Pyodide's ``info``: a build only runs Node for archives whose key is new (after a
source change, just the durably_web wheel). Unused cache entries are deleted.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from durably_web.sitebuild.layout import BuildError, Layout, sha256_file
from durably_web.sitebuild.npm import pyodide_dir

__all__ = ["Job", "compiled_wheel_name", "precompile"]

_HELPERS = ("precompile.mjs", "pyc_compile.py")


@dataclass(frozen=True, slots=True)
class Job:
    """One archive to compile: ``kind`` is ``"stdlib"`` or ``"wheel"``."""

    kind: str
    src: Path
    name: str


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


def precompile(
    layout: Layout,
    jobs: list[Job],
    info: dict[str, Any],
    *,
    force: bool,
    log: Callable[[str], None],
) -> dict[str, Path]:
    """Compile each job's archive (or take it from the cache).

    Args:
        layout: the project.
        jobs: the archives; each ``name`` is the file name of its output.
        info: Pyodide's lock ``info`` (part of the cache key).
        force: recompile everything, ignoring the cache.
        log: receives one progress line per action.

    Returns:
        Output name -> compiled archive in the cache.

    Raises:
        BuildError: Node is missing or the compilation failed.

    """
    cache = layout.state / "pyc"
    helpers = [layout.tools / name for name in _HELPERS]
    for helper in helpers:
        if not helper.is_file():
            raise BuildError(f"{helper} is missing (it compiles the .pyc archives)")
    salt = json.dumps([[sha256_file(h) for h in helpers], info], sort_keys=True)
    outputs: dict[str, Path] = {}
    todo: list[tuple[Job, Path]] = []
    for job in jobs:
        key = hashlib.sha256(f"{salt}\n{job.kind}\n{sha256_file(job.src)}".encode()).hexdigest()
        out = cache / key[:32] / job.name
        outputs[job.name] = out
        if force or not out.is_file():
            todo.append((job, out))
    if todo:
        log(f"precompile {len(todo)} archive(s) to .pyc with Pyodide {info['python']} under Node")
        # Boot Pyodide on the compiled stdlib when it is cached (~2 s faster than the stock
        # one); the .pyc it writes do not depend on that (checked: byte-identical output).
        boot = [
            out for job, out in zip(jobs, outputs.values(), strict=True) if job.kind == "stdlib"
        ]
        stdlib = boot[0] if boot and all(out != boot[0] for _, out in todo) else None
        _run_node(layout, todo, stdlib, log)
    keep = {path.parent for path in outputs.values()}
    for entry in cache.iterdir() if cache.is_dir() else ():
        if entry not in keep:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    return outputs


def _run_node(
    layout: Layout, todo: list[tuple[Job, Path]], stdlib: Path | None, log: Callable[[str], None]
) -> None:
    node = shutil.which("node")
    if node is None:
        raise BuildError(
            "node not found on PATH; install Node.js 20+ (it runs Pyodide to precompile)"
        )
    with tempfile.TemporaryDirectory(dir=layout.state, prefix="precompile-") as tmp:
        # Compile into a scratch directory and move on success, so the cache never holds half
        # a file. Only the directory differs: pyc_compile.py reads the wheel tag from the name.
        scratch = [Path(tmp) / str(index) / out.name for index, (_, out) in enumerate(todo)]
        for path in scratch:
            path.parent.mkdir()
        spec = [
            {"kind": job.kind, "src": str(job.src.resolve()), "dst": str(dst)}
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
