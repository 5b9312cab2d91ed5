"""Test doubles for crash-testing jobs: a fake clock and a connection that fails on cue.

clock = FakeClock()
durably = create_durably(conn, clock=clock, ...)
await clock.advance(31)          # leases expire, polls fire; no real sleeping
clock.block(40)                  # in a step: time passes as if it blocked the event loop

flaky = FailingConnection(conn, fail_on_commit=7, crash=True)
# the 7th commit raises SimulatedCrash (a BaseException, like the process dying there):
# nothing of that transaction is written and every later call fails too. Open a new
# engine on the inner connection to see the job resume.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from durably_web.errors import StorageError
from durably_web.storage.connection import Connection, Param, Row

__all__ = ["FailingConnection", "FakeClock", "SimulatedCrash"]

DEFAULT_START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FakeClock:
    """A clock that moves only when told to; sleepers wake in deadline order.

    Args:
        start: the initial time, in seconds since the epoch.

    """

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()

    def now(self) -> float:
        """Return the fake current time."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Suspend until :meth:`advance` moves the clock ``seconds`` forward."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._counter), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper at its deadline and letting tasks run."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if not future.done():
                future.set_result(None)
            await settle()
        self._now = target
        await settle()

    def block(self, seconds: float) -> None:
        """Move time forward without waking anyone, as code that blocks the event loop does.

        Call it from a step to simulate a step that blocks (no lease renewal can run
        meanwhile); sleepers whose deadline passed wake at the next :meth:`advance`.
        """
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds

    @property
    def sleepers(self) -> int:
        """How many tasks are sleeping on this clock."""
        return sum(1 for _, _, future in self._sleepers if not future.done())


async def settle(rounds: int = 50) -> None:
    """Let ready tasks run for a few event-loop iterations."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class SimulatedCrash(BaseException):
    """Raised by :class:`FailingConnection` in crash mode: the process "died" here.

    A ``BaseException`` so the engine's error handling cannot catch and record it, just as it
    could not after a real SIGKILL.
    """


class _Refused(Exception):
    """A guarded batch changed nothing: roll back (the failing commit was not reached)."""


class FailingConnection:
    """Wrap a :class:`Connection`; make its Nth commit fail.

    Args:
        inner: the real connection.
        fail_on_commit: the 1-based commit that fails (rolled back, nothing written).
        crash: raise :class:`SimulatedCrash` and fail every later call, instead of a
            :class:`~durably_web.errors.StorageError` once.

    Attributes:
        commits: commits that succeeded so far.

    """

    def __init__(
        self, inner: Connection, *, fail_on_commit: int | None = None, crash: bool = False
    ) -> None:
        self.inner = inner
        self.fail_on_commit = fail_on_commit
        self.crash = crash
        self.commits = 0
        self.attempts = 0
        self.dead = False

    @property
    def lock_wait(self) -> float:
        """The inner connection's (see the Connection protocol)."""
        return self.inner.lock_wait

    def _check(self) -> None:
        if self.dead:
            raise SimulatedCrash("connection is dead after a simulated crash")

    def execute(self, sql: str, params: Sequence[Param] = ()) -> int:
        """Delegate to the inner connection (unless crashed)."""
        self._check()
        return self.inner.execute(sql, params)

    def query(self, sql: str, params: Sequence[Param] = ()) -> list[Row]:
        """Delegate to the inner connection (unless crashed)."""
        self._check()
        return self.inner.query(sql, params)

    def data_version(self) -> int:
        """Delegate to the inner connection (unless crashed)."""
        self._check()
        return self.inner.data_version()

    def execute_script(self, sql: str) -> None:
        """Delegate to the inner connection (unless crashed)."""
        self._check()
        self.inner.execute_script(sql)

    def run_batch(
        self, statements: Sequence[tuple[str, Sequence[Param]]], guard: bool = False
    ) -> bool:
        """Run the batch in one transaction whose commit fails when it is the chosen one."""
        self._check()
        if self.attempts + 1 != self.fail_on_commit:
            written = self.inner.run_batch(statements, guard)
            if written:
                self.attempts += 1
                self.commits += 1
            return written
        try:
            with self.transaction():
                for position, (sql, params) in enumerate(statements):
                    if self.inner.execute(sql, params) == 0 and guard and position == 0:
                        raise _Refused
        except _Refused:
            return False
        return True

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Wrap the inner transaction; fail its commit when it is the chosen one."""
        self._check()
        with self.inner.transaction():
            yield
            self.attempts += 1
            if self.attempts == self.fail_on_commit:
                if self.crash:
                    self.dead = True
                    raise SimulatedCrash(f"simulated crash at commit #{self.attempts}")
                raise StorageError(f"simulated failure of commit #{self.attempts}")
        self.commits += 1

    def close(self) -> None:
        """Close the inner connection."""
        self.inner.close()
