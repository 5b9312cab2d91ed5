"""The common step's checkpoint, made without awaiting anything.

Most steps are the plain case: a fresh step completed inside its lease, no log lines or kept
steps waiting to ride along, no other write of the run in flight. Then the general path
(:meth:`~durably_web.core.execution.Execution.checkpoint` through the run's
:class:`~durably_web.core.writer.RunWriter` to the store) would build a delta that is empty,
take a write turn nobody contends, and go through about seven coroutines to reach one
``INSERT``. :meth:`QuickCheckpoints.write` makes the same write directly:

- default mode: the store's synchronous ``checkpoint_now``
  (:class:`~durably_web.storage.base.CheckpointsNow`), the same fenced ``INSERT`` as
  ``checkpoint_step``, committed before it returns;
- batched mode: the row joins the group (:mod:`~durably_web.core.batching`) when keeping it
  does not make the group due (a due group is committed by the general path).

Everything else takes the general path: a store without ``checkpoint_now`` (PostgreSQL), a
step that ran past the lease (it is reported), a write in flight or log lines unwritten, and
a locked database (``checkpoint_now`` raised ``DatabaseBusy`` having written nothing, and
the general path waits it out). Errors are sorted as the writer sorts them: the fence's
refusal aborts the signal, a broken database halts the attempt.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from durably_web.errors import LeaseLost, RunCancelled, StorageError
from durably_web.storage.base import CheckpointsNow
from durably_web.storage.connection import DatabaseBusy, IntegrityViolation
from durably_web.storage.records import completed_row

if TYPE_CHECKING:
    from durably_web.core.batching import CheckpointGroup
    from durably_web.core.execution import Execution

__all__ = ["QuickCheckpoints"]


class QuickCheckpoints:
    """Checkpoints of one execution written on the fast path (see the module docstring).

    Args:
        execution: the attempt whose checkpoints these are.
        group: its checkpoint group in the batched mode, else None.

    """

    __slots__ = ("_execution", "_generation", "_group", "_run_id", "_store", "_wall", "_writer")

    def __init__(self, execution: Execution, group: CheckpointGroup | None) -> None:
        store = execution.store
        self._execution = execution
        self._group = group
        self._writer = execution.writer
        self._store = store if isinstance(store, CheckpointsNow) else None
        self._run_id = execution.run.id
        self._generation = execution.run.lease_generation
        self._wall = execution.wall

    def write(
        self,
        name: str,
        index: int,
        output_json: str | None,
        started: float,
        finished: float,
        attempt: int,
    ) -> bool:
        """Checkpoint a completed step now if it is the plain case; return whether it was.

        False: nothing was written; make the checkpoint through the general path.

        Raises:
            RunCancelled / LeaseLost: the fence refused (the signal is aborted).
            ConflictError / ValidationError: the result cannot be stored.
            StorageError: the database failed (the attempt has halted).

        """
        execution = self._execution
        if finished > execution.lease_until:
            return False
        group, store = self._group, self._store
        if group is None and (store is None or not self._writer.idle()):
            return False
        row = completed_row(
            self._run_id,
            self._generation,
            name=name,
            index=index,
            output_json=output_json,
            started_at=started,
            now=finished,
            attempt=attempt,
        )
        if group is not None:
            if not group.keep_unless_due(row, finished):
                return False
            execution.advance(index)
            return True
        assert store is not None
        sent = finished if self._wall else time.monotonic()  # as Execution.real_time
        try:
            store.checkpoint_now(self._run_id, self._generation, row)
        except (RunCancelled, LeaseLost) as refusal:  # as ``signal.on_refusal``, without a call
            execution.signal.abort_for(refusal)
            raise
        except DatabaseBusy:
            return False
        except IntegrityViolation:
            raise
        except StorageError as exc:
            execution.broken(exc)
            raise
        execution.lease_proven(sent)
        execution.advance(index)
        return True
