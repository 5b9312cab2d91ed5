"""Find the job a ``MODULE:JOB`` target names and validate its input, before any database work.

``MODULE`` is an importable module name (``myapp.jobs``) or the path of a ``.py`` file
(``examples/import_csv.py``); ``JOB`` is the name of a :class:`~durably_web.JobDefinition` in
it. As ``python -m`` and ``python script.py`` do, the current directory (for a module name) or
the script's directory (for a file) is put on ``sys.path`` first, so the job's own imports work.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from durably_web.cli.common import UsageError
from durably_web.core.trigger import TriggerItem, prepare
from durably_web.errors import ValidationError
from durably_web.job import JobDefinition, jobs_in_module

__all__ = ["jobs_of", "load_attribute", "load_job", "validate_input"]


def load_job(target: str) -> tuple[str, JobDefinition[Any, Any]]:
    """Import the module of a ``MODULE:JOB`` target and return the job it names.

    Args:
        target: ``module.name:job`` or ``path/to/file.py:job``.

    Returns:
        ``(JOB, definition)``: the attribute name (the key the job is registered under) and
        the job definition.

    Raises:
        UsageError: the target is malformed, the module cannot be imported (or raised while
            importing), or ``JOB`` is missing or not a ``JobDefinition``.

    """
    module_ref, sep, attribute = target.rpartition(":")
    if not sep or not module_ref or not attribute:
        raise UsageError(f"job must be given as MODULE:JOB, got {target!r}")
    if not attribute.isidentifier():
        raise UsageError(f"JOB in {target!r} must be a Python identifier, got {attribute!r}")
    module = _import(module_ref)
    if not hasattr(module, attribute):
        raise UsageError(
            f"module {module_ref!r} has no attribute {attribute!r}; {_jobs_in(module_ref, module)}"
        )
    job = getattr(module, attribute)
    if not isinstance(job, JobDefinition):
        kind = "a class" if isinstance(job, type) else _article(type(job).__name__)
        raise UsageError(
            f"{target!r} is {kind}, not a job (make one with durably_web.define_job); "
            f"{_jobs_in(module_ref, module)}"
        )
    return attribute, job


def load_attribute(target: str) -> tuple[ModuleType, str | None, Any]:
    """Import ``MODULE[:ATTR]``; return the module, the attribute name and its value.

    Without ``:ATTR`` the module itself is the value.

    Raises:
        UsageError: the module cannot be imported or has no such attribute.
    """
    module_ref, sep, attribute = target.rpartition(":")
    if not sep:
        module = _import(target)
        return module, None, module
    if not module_ref or not attribute.isidentifier():
        raise UsageError(f"expected MODULE or MODULE:ATTR, got {target!r}")
    module = _import(module_ref)
    if not hasattr(module, attribute):
        raise UsageError(f"module {module_ref!r} has no attribute {attribute!r}")
    return module, attribute, getattr(module, attribute)


def jobs_of(value: Any) -> dict[str, JobDefinition[Any, Any]] | None:
    """Return the jobs a ``MODULE[:ATTR]`` value stands for, or None if it is no jobs.

    A job is registered under its name (``-`` made ``_``); a dict of jobs as it is; a module
    by :func:`~durably_web.job.jobs_in_module` (its ``jobs`` mapping, or every job it defines).

    Raises:
        UsageError: a module that defines no job.
    """
    if isinstance(value, JobDefinition):
        return {value.name.replace("-", "_"): value}
    if (
        isinstance(value, Mapping)
        and value
        and all(isinstance(v, JobDefinition) for v in value.values())
    ):
        return dict(value)
    if isinstance(value, ModuleType):
        try:
            return jobs_in_module(value)
        except ValidationError as exc:
            raise UsageError(str(exc)) from None
    return None


def validate_input(
    job: JobDefinition[Any, Any], value: Any, idempotency_key: str | None = None
) -> Any:
    """Validate a trigger the way the engine will, without touching a database.

    Args:
        job: the job to be triggered.
        value: the decoded ``--input`` JSON.
        idempotency_key: the ``--idempotency-key``, if given.

    Returns:
        The input as the engine stores it (JSON data, defaults filled in): what a stored
        run's ``input`` equals when it was triggered with the same input.

    Raises:
        UsageError: the input (or the key) fails validation.

    """
    try:
        _, data = prepare(job, TriggerItem(value, idempotency_key=idempotency_key), None)
    except ValidationError as exc:
        raise UsageError(str(exc)) from None
    return data


def _import(module_ref: str) -> ModuleType:
    path = Path(module_ref)
    if module_ref.endswith(".py") or path.is_file():
        return _import_file(path, module_ref)
    if not all(part.isidentifier() for part in module_ref.split(".")):
        raise UsageError(f"cannot import {module_ref!r}: not a module name or a .py file")
    cwd = str(Path.cwd())
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_ref)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_ref + ".").startswith(exc.name + "."):
            raise UsageError(
                f"cannot import module {module_ref!r}: no module named {exc.name!r}"
            ) from None
        raise _import_failed(module_ref, exc) from None
    except Exception as exc:  # noqa: BLE001 - any error while importing is the user's to fix
        raise _import_failed(module_ref, exc) from None


def _import_file(path: Path, module_ref: str) -> ModuleType:
    if not path.is_file():
        raise UsageError(f"cannot import {module_ref!r}: no such file")
    path = path.resolve()
    name = path.stem
    if not name.isidentifier() or name in sys.modules:
        digest = hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:8]
        name = f"_durably_job_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {module_ref!r}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    # Registered before running it, as an import would: pydantic resolves the module's
    # annotations through sys.modules.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any error while importing is the user's to fix
        del sys.modules[name]
        raise _import_failed(module_ref, exc) from None
    return module


def _import_failed(module_ref: str, exc: BaseException) -> UsageError:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    detail = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return UsageError(f"cannot import {module_ref!r}: {detail}")


def _jobs_in(module_ref: str, module: ModuleType) -> str:
    names = sorted(name for name, value in vars(module).items() if isinstance(value, JobDefinition))
    return f"jobs in {module_ref!r}: {', '.join(names)}" if names else f"{module_ref!r} has no jobs"


def _article(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"
