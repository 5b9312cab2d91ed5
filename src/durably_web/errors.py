"""The errors durably_web raises, and their wire form.

Hierarchy::

    DurablyError                 500  internal_error     base class, also unexpected failures
    ├── ValidationError          400  validation_error   bad input, labels, options, step result
    ├── NotFoundError            404  not_found          unknown job or run
    ├── ConflictError            409  conflict           key clash, wrong run state, registry clash
    ├── RunCancelled             409  run_cancelled      the run was cancelled under a running job
    ├── LeaseLost                409  lease_lost         another worker reclaimed the run
    ├── RunFailed                500  run_failed         a waited-for run ended in failure
    └── StorageError             500  storage_error      the database refused or failed an operation

Every class has a ``status_code`` and a stable ``code``. :meth:`DurablyError.to_wire` gives
``{"error": message, "code": code}`` and :func:`error_from_wire` rebuilds the same class on the
other side of a postMessage, HTTP response or SSE frame.

This module also runs on PyScript pages under MicroPython (``durably_web.client`` raises
these classes there), so it keeps to the subset both share: no ``from __future__`` (MicroPython
has no such module; it never evaluates annotations, and CPython 3.11+ can evaluate these) and
no hard ``typing`` import.
"""

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any, ClassVar
except ImportError:  # MicroPython (PyScript pages): annotations are never evaluated there
    pass

__all__ = [
    "ConflictError",
    "DurablyError",
    "LeaseLost",
    "NotFoundError",
    "RunCancelled",
    "RunFailed",
    "StorageError",
    "ValidationError",
    "error_from_wire",
]


class DurablyError(Exception):
    """Base class of every durably_web error.

    Attributes:
        status_code: the HTTP status that represents this error on the wire.
        code: a stable machine-readable string identifying the error class.

    """

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_wire(self) -> dict[str, str]:
        """Return the JSON form ``{"error": message, "code": code}``."""
        return {"error": self.message, "code": self.code}


class ValidationError(DurablyError):
    """Input, labels, options or a step result failed validation; nothing was written."""

    status_code = 400
    code = "validation_error"


class NotFoundError(DurablyError):
    """The job or run named does not exist."""

    status_code = 404
    code = "not_found"


class ConflictError(DurablyError):
    """The request clashes with the current state (a key in use, a run in the wrong state)."""

    status_code = 409
    code = "conflict"


class RunCancelled(DurablyError):
    """The run was cancelled; raised inside a job at its next step boundary."""

    status_code = 409
    code = "run_cancelled"


class LeaseLost(DurablyError):
    """The lease on the run is gone: another worker reclaimed it."""

    status_code = 409
    code = "lease_lost"


class RunFailed(DurablyError):
    """A run that was waited for ended in failure; ``message`` is the run's error."""

    status_code = 500
    code = "run_failed"


class StorageError(DurablyError):
    """The database failed an operation (locked too long, disk full, corrupt, quota)."""

    status_code = 500
    code = "storage_error"


_BY_CODE: dict[str, type[DurablyError]] = {
    cls.code: cls
    for cls in (
        DurablyError,
        ValidationError,
        NotFoundError,
        ConflictError,
        RunCancelled,
        LeaseLost,
        RunFailed,
        StorageError,
    )
}


def error_from_wire(payload: dict[str, Any], status_code: int | None = None) -> DurablyError:
    """Rebuild an error from its wire form ``{"error": message, "code": code}``.

    Args:
        payload: the decoded JSON object; ``message`` is accepted for ``error``.
        status_code: the HTTP status, used when ``code`` is missing or unknown (e.g. an
            upstream Durably server, which sends only ``{"error": ...}``).

    Returns:
        An instance of the class named by ``code``, or the class whose status matches
        ``status_code``, or a plain :class:`DurablyError`.

    """
    message = str(payload.get("error") or payload.get("message") or "unknown error")
    cls = _BY_CODE.get(str(payload.get("code", "")))
    if cls is None and status_code is not None:
        by_status = {400: ValidationError, 404: NotFoundError, 409: ConflictError}
        cls = by_status.get(status_code)
    return (cls or DurablyError)(message)
