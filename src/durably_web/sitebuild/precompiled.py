"""The ``.pyc`` archives a site serves: shipped in the wheel, cached, or compiled now.

Pyodide boots about twice as fast on a stdlib and wheels compiled to ``.pyc``
(:mod:`.precompile`), but only Pyodide's own CPython (3.14, under Node) can compile them. So
the compiling happens when the **durably-web wheel is built** (the build hook,
``hatch_build.py``, calls :func:`write_shipped`): the wheel and the sdist carry every
archive a site needs in ``durably_web/web/precompiled/``::

    index.json                 {"format": 1, "archives": {key: {"file": name, "sha256": hex}}}
    python_stdlib.zip          Pyodide's stdlib, compiled
    pydantic-...-cp314-...whl  every wheel pinned in requirements-wasm.txt, compiled
    durably_web-...-cp314-...whl   durably_web itself (its browser engine), compiled

and ``durably-web build`` (:func:`served_archives`) takes each archive by its key (see
:func:`~durably_web.sitebuild.precompile.archive_key`: the source's sha256, the compile
helpers, Pyodide's ``info``) from there, checking its sha256; a released install needs no
Node and not even the PyPI wheels. What the package does not ship (a checkout's editable
install has no ``precompiled/``; edited sources make a new durably_web wheel) is taken from
``.build/pyc`` or compiled with Node there, as before.
"""

from __future__ import annotations

import email.parser
import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from durably_web.sitebuild.engine_site import ENGINE_IMPORTS
from durably_web.sitebuild.layout import BuildError, Layout, sha256_file, write_atomic
from durably_web.sitebuild.npm import fetch, pyodide_dir, pyodide_info
from durably_web.sitebuild.precompile import (
    Job,
    archive_key,
    cached,
    compile_archives,
    compiled_wheel_name,
    prune,
    salt,
)
from durably_web.sitebuild.wheel_self import build_self_wheel, select_metadata
from durably_web.sitebuild.wheels import download, read_requirements

__all__ = ["INDEX", "Compiled", "package_archives", "served_archives", "shipped", "write_shipped"]

INDEX = "index.json"
"""The shipped archives' index, in ``durably_web/web/precompiled/``."""

_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled archive: its key and where its file is (shipped or in ``.build/pyc``)."""

    key: str
    path: Path


def shipped(layout: Layout) -> dict[str, Path]:
    """Return the archives the installed package ships, by key (empty in a checkout).

    Raises:
        BuildError: the index is unreadable, or a file is missing or not what it lists
            (a damaged install: reinstall durably-web).

    """
    directory = layout.precompiled
    index = directory / INDEX
    if not index.is_file():
        return {}
    try:
        data = json.loads(index.read_text())
        entries = data["archives"] if data.get("format") == _FORMAT else None
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise BuildError(f"{index} is unreadable ({exc}); reinstall durably-web") from exc
    if not isinstance(entries, dict):
        raise BuildError(f"{index}: unknown format; reinstall durably-web")
    found = {}
    for key, entry in entries.items():
        path = directory / str(entry.get("file", ""))
        if not path.is_file() or sha256_file(path) != entry.get("sha256"):
            raise BuildError(f"{path} is missing or damaged; reinstall durably-web")
        found[key] = path
    return found


def served_archives(
    layout: Layout,
    info: dict[str, Any],
    own: Path,
    *,
    force: bool,
    log: Callable[[str], None],
    use_shipped: bool = True,
) -> tuple[Compiled, list[Compiled]]:
    """Return the compiled stdlib zip and the compiled wheels (the pinned ones, then ``own``).

    Each is the shipped archive of its key, else the cached one, else compiled now (the
    pinned wheels are downloaded first then).

    Args:
        layout: the build (its Pyodide package must be extracted).
        info: Pyodide's lock ``info``.
        own: the durably_web wheel built from the installed sources.
        force: ignore ``.build/pyc`` (shipped archives are still used).
        log: receives one progress line per action.
        use_shipped: take archives the package ships (the build hook makes them: False).

    Raises:
        BuildError: something must be compiled and Node is missing or fails, or pip fails.

    """
    key_salt = salt(layout, info)
    ship = shipped(layout) if use_shipped else {}

    def find(kind: str, hashes: Iterable[str]) -> Compiled | None:
        for digest in sorted(hashes):
            key = archive_key(key_salt, kind, digest)
            path = ship.get(key) or (None if force else cached(layout, key))
            if path is not None:
                return Compiled(key, path)
        return None

    source_stdlib = pyodide_dir(layout) / "python_stdlib.zip"
    stdlib = find("stdlib", [sha256_file(source_stdlib)])
    pins = read_requirements(layout.requirements)
    wheels = {name: find("wheel", pin.hashes) for name, pin in sorted(pins.items())}
    mine = find("wheel", [sha256_file(own)])

    jobs: dict[str, Job] = {}
    if stdlib is None:
        jobs["stdlib"] = Job("stdlib", source_stdlib, source_stdlib.name)
    if None in wheels.values():
        downloaded = download(layout, info, log=log)
        for name, found in wheels.items():
            if found is None:
                jobs[name] = Job(
                    "wheel", downloaded[name], compiled_wheel_name(downloaded[name], info)
                )
    if mine is None:
        # With the bytecode of the engine's dataclass methods (durably_web/_dataclass_code.py).
        jobs["own"] = Job("wheel", own, compiled_wheel_name(own, info), ENGINE_IMPORTS)
    boot = stdlib.path if stdlib is not None else None
    compiled = compile_archives(layout, list(jobs.values()), info, log=log, boot_stdlib=boot)
    made = {
        label: Compiled(archive_key(key_salt, job.kind, sha256_file(job.src)), compiled[job.name])
        for label, job in jobs.items()
    }
    stdlib = stdlib or made["stdlib"]
    served = [wheels[name] or made[name] for name in wheels] + [mine or made["own"]]
    prune(
        layout, [item.path for item in (stdlib, *served) if item.path.is_relative_to(layout.state)]
    )
    return stdlib, served


def write_shipped(
    layout: Layout, out: Path, info: dict[str, Any], own: Path, *, log: Callable[[str], None]
) -> list[Path]:
    """Write every archive a site needs, compiled, and their index into ``out`` (emptied).

    The build hook's work: ``out`` becomes ``durably_web/web/precompiled/`` of the wheel.

    Args:
        layout: the build state to use (the checkout's ``.build``; its caches are reused).
        out: the directory to fill.
        info: Pyodide's lock ``info``.
        own: the durably_web wheel of the sources being packaged.
        log: receives one progress line per action.

    Returns:
        The files written, the index last.

    """
    stdlib, wheels = served_archives(layout, info, own, force=False, log=log, use_shipped=False)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    entries: dict[str, dict[str, str]] = {}
    written = []
    for item in (stdlib, *wheels):
        if item.path.name in {entry["file"] for entry in entries.values()}:
            raise BuildError(f"two archives are named {item.path.name}")
        target = out / item.path.name
        shutil.copyfile(item.path, target)
        entries[item.key] = {"file": item.path.name, "sha256": sha256_file(target)}
        written.append(target)
    index = out / INDEX
    text = json.dumps({"format": _FORMAT, "archives": entries}, indent=1, sort_keys=True)
    write_atomic(index, (text + "\n").encode())
    return [*written, index]


def package_archives(root: Path, metadata: str, *, log: Callable[[str], None]) -> list[Path]:
    """Compile everything a site needs for the wheel being built; return the files.

    What ``hatch_build.py`` calls when it builds the sdist or the wheel of a checkout:
    the files (in ``<root>/.build/precompiled/``) go into the package's ``web/precompiled/``.
    Needs Node (and the npm registry, and PyPI when ``.build`` has no compiled copy yet).

    Args:
        root: the checkout (``src/durably_web`` is the package; ``.build`` its build state).
        metadata: the ``METADATA`` text of the distribution being built.
        log: receives one progress line per action.

    """
    layout = Layout(root, root / "src" / "durably_web")
    fetch(layout, force=False, log=log)
    info = pyodide_info(layout)
    message = email.parser.Parser().parsestr(metadata)
    own = build_self_wheel(layout, select_metadata(message.get_all))
    return write_shipped(layout, layout.state / "precompiled", info, own, log=log)
