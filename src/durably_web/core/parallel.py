"""``step.all``: several checkpointed steps at once.

Every step of the mapping gets its name checked and its index, in the mapping's order, before
any starts, so indexes are the same on every attempt however the steps interleave. Completed
ones replay from their checkpoints; the others run as tasks (at most ``concurrency`` at once),
each a whole ``step.run`` (its attempts and retries, its checkpoint), with its own log lines.

The first step that fails for good (its last attempt failed, or the run was cancelled or lost)
cancels the steps still running and is raised: their checkpoints were not written, so a retry
of the run runs them again, and the steps that finished replay. A step whose next attempt is
due too late to wait in place lets the others settle first; then the run waits (``retry``)
until the earliest such attempt is due.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from durably_web.core.waits import RetryLater, check_outside_steps, suspend
from durably_web.errors import ValidationError
from durably_web.json_value import shown
from durably_web.storage.records import NewWait

if TYPE_CHECKING:
    from durably_web.core.step import StepContext, StepFunction

__all__ = ["run_all"]


async def run_all(
    step: StepContext, steps: Mapping[str, StepFunction], concurrency: int | None
) -> dict[str, Any]:
    """Run ``steps`` as parallel checkpointed steps; see the module docstring.

    Raises:
        ValidationError: ``steps`` is not a mapping of names to callables, ``concurrency`` is
            not a positive integer, a name is invalid or used before, or the call is made
            inside a step function.

    """
    if not isinstance(steps, Mapping):
        raise ValidationError(
            f"step.all takes a mapping of step names to functions, got {shown(steps)}"
        )
    for name, fn in steps.items():
        if not callable(fn):
            raise ValidationError(f"step {name!r} of step.all must be callable, got {shown(fn)}")
    if concurrency is not None and (
        isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
    ):
        raise ValidationError(
            f"concurrency of step.all must be a positive integer or None, got {shown(concurrency)}"
        )
    check_outside_steps("step.all")
    policy = step._policy(None, "")
    indexes: dict[str, int] = {}
    results: dict[str, Any] = {}
    for name in steps:
        index, cached = step._begin(name)
        indexes[name] = index
        if cached is not step._MISSING:
            results[name] = cached
    todo = [name for name in steps if name not in results]
    if todo:
        limit = asyncio.Semaphore(concurrency or len(todo))

        async def branch(name: str) -> Any:
            async with limit:
                return await step._attempts(name, indexes[name], steps[name], policy)

        tasks = {name: asyncio.ensure_future(branch(name)) for name in todo}
        results.update(await _settle(step, tasks))
    return {name: results[name] for name in steps}


async def _settle(step: StepContext, tasks: Mapping[str, asyncio.Future[Any]]) -> dict[str, Any]:
    """Wait for every branch; raise the first failure, or make the run wait for a retry."""
    order = {task: position for position, task in enumerate(tasks.values())}
    pending: set[asyncio.Future[Any]] = set(tasks.values())
    later: list[RetryLater] = []
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            failed = sorted(
                (task for task in done if _error(task) is not None),
                key=order.__getitem__,
            )
            if failed:
                error = _error(failed[0])
                assert error is not None
                raise error
            later.extend(retry for task in done if (retry := _retry(task)) is not None)
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    if later:
        first = min(later, key=lambda retry: retry.until)
        await suspend(step._execution, NewWait("retry", first.name, first.until, first.since))
    return {name: task.result() for name, task in tasks.items()}


def _error(task: asyncio.Future[Any]) -> BaseException | None:
    """Return a branch's failure for good (not a retry due later), if it has one."""
    if task.cancelled():
        return None
    error = task.exception()
    return None if isinstance(error, RetryLater) else error


def _retry(task: asyncio.Future[Any]) -> RetryLater | None:
    if task.cancelled():
        return None
    error = task.exception()
    return error if isinstance(error, RetryLater) else None
