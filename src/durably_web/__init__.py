"""durably_web: step-oriented, resumable batch execution on SQLite, on CPython and in the browser.

A job is a function made of named steps; each finished step's result is checkpointed, so a run
that crashes, is reloaded or loses its worker resumes at the first unfinished step.
"""

# First: the engine's dataclasses below then run the bytecode the site build compiled for
# their generated methods, where the build put it there (the browser engine's wheel).
from durably_web import _dataclass_code  # noqa: F401

# isort: split
from durably_web.clock import Clock, SystemClock
from durably_web.core.durably import Durably
from durably_web.core.factory import create_durably
from durably_web.core.handles import JobHandle, JobResult, Jobs
from durably_web.core.signal import AbortSignal
from durably_web.core.step import StepContext
from durably_web.core.trigger import TriggerItem
from durably_web.errors import (
    ConflictError,
    DurablyError,
    LeaseLost,
    NotFoundError,
    RunCancelled,
    RunFailed,
    SignalTimeout,
    StorageError,
    ValidationError,
)
from durably_web.events import Event
from durably_web.job import JobDefinition, define_job
from durably_web.models import Log, Progress, Run, Step, Waiting
from durably_web.retry import Retry
from durably_web.storage.connection import Connection
from durably_web.storage.sqlite import SQLiteStore

__version__ = "0.1.0"

__all__ = [
    "AbortSignal",
    "Clock",
    "ConflictError",
    "Connection",
    "Durably",
    "DurablyError",
    "Event",
    "JobDefinition",
    "JobHandle",
    "JobResult",
    "Jobs",
    "LeaseLost",
    "Log",
    "NotFoundError",
    "Progress",
    "Retry",
    "Run",
    "RunCancelled",
    "RunFailed",
    "SQLiteStore",
    "SignalTimeout",
    "Step",
    "StepContext",
    "StorageError",
    "SystemClock",
    "TriggerItem",
    "ValidationError",
    "Waiting",
    "__version__",
    "create_durably",
    "define_job",
]
