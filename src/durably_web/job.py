"""Job definitions: a name, an input type, an optional output type, a run function, a retry.

A definition's pydantic adapters are built by :func:`define_job`, which so reports a type
pydantic cannot validate at once. Inside :func:`deferred_adapters` (the browser worker imports
the page's job module in it) they are built on first use instead, or by
:func:`build_deferred_adapters`: pydantic's first adapter imports ``pydantic.main`` and its
schema machinery, ~60-90 ms of a cold start in Pyodide that the engine does not need until a
run is triggered (bench/BOOT-NOTES.md).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from durably_web.errors import ValidationError
from durably_web.json_value import shown
from durably_web.options import CheckpointMode
from durably_web.retry import Retry, retry_policy

if TYPE_CHECKING:
    import pydantic

    from durably_web.core.step import StepContext

__all__ = [
    "JobDefinition",
    "JobFunction",
    "build_deferred_adapters",
    "define_job",
    "deferred_adapters",
    "jobs_in_module",
]

InputT = TypeVar("InputT")
OutputT = TypeVar("OutputT")

JobFunction = Callable[["StepContext", InputT], Awaitable[OutputT] | OutputT]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}")  # fullmatch: `$` allows a final "\n"


class _Adapter:
    """The pydantic adapter of a job's type, built now or (deferred) on first use."""

    __slots__ = ("_built", "tp", "what")

    def __init__(self, tp: Any, what: str) -> None:
        self.tp = tp
        self.what = what
        self._built: pydantic.TypeAdapter[Any] | None = None

    @property
    def built(self) -> bool:
        """Whether the adapter exists yet."""
        return self._built is not None

    def get(self) -> pydantic.TypeAdapter[Any]:
        """Return the adapter, building it first if needed.

        Raises:
            ValidationError: the type is not one pydantic can validate.

        """
        if self._built is None:
            import pydantic  # not before the first adapter (module docstring)

            try:
                self._built = pydantic.TypeAdapter(self.tp)
            except (
                pydantic.PydanticSchemaGenerationError,
                pydantic.PydanticUserError,
                TypeError,
            ) as exc:
                raise ValidationError(
                    f"{self.what} is not a type pydantic can validate: {exc}"
                ) from None
        return self._built


_deferring = False
"""Whether :func:`deferred_adapters` is open: :func:`define_job` then leaves adapters unbuilt."""
_unbuilt: list[_Adapter] = []
"""The adapters left unbuilt, until :func:`build_deferred_adapters` builds them."""


@contextmanager
def deferred_adapters() -> Iterator[None]:
    """Leave the pydantic adapters of the jobs defined inside unbuilt until first use.

    A type pydantic cannot validate is then reported when the job is first triggered (or its
    run executed), not by :func:`define_job`.
    """
    global _deferring
    outer, _deferring = _deferring, True
    try:
        yield
    finally:
        _deferring = outer


def build_deferred_adapters() -> int:
    """Build every adapter :func:`deferred_adapters` left unbuilt; return how many were built.

    An adapter whose type pydantic cannot validate stays unbuilt: its job reports the
    ``ValidationError`` when it is used.
    """
    count = 0
    while _unbuilt:
        adapter = _unbuilt.pop()
        if adapter.built:
            continue
        try:
            adapter.get()
        except ValidationError:
            continue
        count += 1
    return count


@dataclass(frozen=True, slots=True, eq=False)
class JobDefinition(Generic[InputT, OutputT]):
    """A job: validated input in, a function of named steps, validated output out.

    Build one with :func:`define_job`. Two definitions are the same when they share name,
    types, function and retry policy; registering a different one under a taken name is an
    error.
    """

    name: str
    input: Any
    output: Any
    run: JobFunction[InputT, OutputT]
    _input_adapter: _Adapter = field(repr=False)
    _output_adapter: _Adapter | None = field(repr=False)
    retry: Retry | None = None
    checkpoint: CheckpointMode | None = None
    """When its steps are committed (``"each"`` or ``"batched"``); None: the instance's."""

    @property
    def input_adapter(self) -> pydantic.TypeAdapter[InputT]:
        """The pydantic adapter validating trigger input (built on first use if deferred).

        Raises:
            ValidationError: the input type is not one pydantic can validate.

        """
        return self._input_adapter.get()

    @property
    def output_adapter(self) -> pydantic.TypeAdapter[OutputT] | None:
        """The pydantic adapter validating the output, or None when the job declares none.

        Raises:
            ValidationError: the output type is not one pydantic can validate.

        """
        return None if self._output_adapter is None else self._output_adapter.get()

    def same_as(self, other: JobDefinition[Any, Any]) -> bool:
        """Return True when ``other`` defines the same job (name, types, function, retry)."""
        return (
            self.name == other.name
            and self.input is other.input
            and self.output is other.output
            and self.run is other.run
            and self.retry == other.retry
            and self.checkpoint == other.checkpoint
        )

    async def call(self, step: StepContext, payload: InputT) -> OutputT:
        """Run the job function, awaiting it when it is a coroutine function."""
        result = self.run(step, payload)
        if inspect.isawaitable(result):
            return await result
        return result


@overload
def define_job(
    *,
    name: str,
    input: type[InputT],
    output: type[OutputT],
    run: None = None,
    retry: Retry | int | None = None,
    checkpoint: CheckpointMode | None = None,
) -> Callable[[JobFunction[InputT, OutputT]], JobDefinition[InputT, OutputT]]: ...


@overload
def define_job(
    *,
    name: str,
    input: type[InputT],
    output: None = None,
    run: None = None,
    retry: Retry | int | None = None,
    checkpoint: CheckpointMode | None = None,
) -> Callable[[JobFunction[InputT, Any]], JobDefinition[InputT, Any]]: ...


@overload
def define_job(
    *,
    name: str,
    input: type[InputT],
    output: type[OutputT],
    run: JobFunction[InputT, OutputT],
    retry: Retry | int | None = None,
    checkpoint: CheckpointMode | None = None,
) -> JobDefinition[InputT, OutputT]: ...


@overload
def define_job(
    *,
    name: str,
    input: type[InputT],
    output: None = None,
    run: JobFunction[InputT, Any],
    retry: Retry | int | None = None,
    checkpoint: CheckpointMode | None = None,
) -> JobDefinition[InputT, Any]: ...


@overload
def define_job(
    *,
    name: str,
    input: Any,
    output: Any = None,
    run: JobFunction[Any, Any] | None = None,
    retry: Retry | int | None = None,
    checkpoint: CheckpointMode | None = None,
) -> Any: ...


def define_job(
    *,
    name: str,
    input: Any,
    output: Any = None,
    run: JobFunction[Any, Any] | None = None,
    retry: Retry | int | None = None,
    checkpoint: CheckpointMode | None = None,
) -> JobDefinition[Any, Any] | Callable[[JobFunction[Any, Any]], JobDefinition[Any, Any]]:
    """Define a job.

    Args:
        name: the job's stable name, stored with each run (letters, digits, ``_.:/-``).
        input: a pydantic model, or any type a ``pydantic.TypeAdapter`` accepts; trigger
            input is validated against it and the run function receives the parsed value.
        output: optional type the job's return value is validated against.
        run: ``async def run(step, payload)``. Without it, ``define_job`` is a decorator.
        retry: the retry policy of the job's steps (``step.run`` and ``step.all``) that give
            none of their own: a number of attempts or a :class:`~durably_web.Retry`.
        checkpoint: ``"each"`` or ``"batched"`` (see ``create_durably(checkpoint=...)``);
            None (default) follows the instance's setting.

    Returns:
        A :class:`JobDefinition`, or a decorator producing one.

    Raises:
        ValidationError: the name is malformed, a type is not one pydantic understands, or
            ``retry`` is not a number of attempts or a ``Retry``.

    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValidationError(
            f"job name must be 1-128 characters of letters, digits and _.:/- "
            f"starting with a letter or digit, got {name!r}"
        )
    if checkpoint is not None and checkpoint not in ("each", "batched"):
        raise ValidationError(
            f"checkpoint of job {name!r} must be 'each', 'batched' or None, got {shown(checkpoint)}"
        )
    input_adapter = _adapter(input, f"input type of job {name!r}")
    output_adapter = None if output is None else _adapter(output, f"output type of job {name!r}")
    policy = retry_policy(retry, f"retry of job {name!r}")

    def build(fn: JobFunction[Any, Any]) -> JobDefinition[Any, Any]:
        if not callable(fn):
            raise ValidationError(f"run of job {name!r} must be callable, got {fn!r}")
        return JobDefinition(
            name, input, output, fn, input_adapter, output_adapter, policy, checkpoint
        )

    return build if run is None else build(run)


def jobs_in_module(module: ModuleType) -> dict[str, JobDefinition[Any, Any]]:
    """Return a module's jobs: its ``jobs`` mapping, or every JobDefinition it defines.

    Raises:
        ValidationError: the module defines no job.
    """
    declared = getattr(module, "jobs", None)
    if isinstance(declared, Mapping):
        return dict(declared)
    found = {
        name: value for name, value in vars(module).items() if isinstance(value, JobDefinition)
    }
    if not found:
        raise ValidationError(f"module {module.__name__!r} defines no job (use define_job)")
    return found


def _adapter(tp: Any, what: str) -> _Adapter:
    adapter = _Adapter(tp, what)
    if _deferring:
        _unbuilt.append(adapter)
    else:
        adapter.get()
    return adapter
