"""The errors durably_web raises, and their wire form.

Hierarchy::

    DurablyError                 500  internal_error     base class, also unexpected failures
    ├── ValidationError          400  validation_error   bad input, labels, options, step result
    ├── NotFoundError            404  not_found          unknown job or run
    ├── ConflictError            409  conflict           key clash, wrong run state, registry clash
    ├── RunCancelled             409  run_cancelled      the run was cancelled under a running job
    ├── LeaseLost                409  lease_lost         another worker reclaimed the run
    ├── RunFailed                500  run_failed         a waited-for run ended in failure
    ├── SignalTimeout            408  signal_timeout     step.wait_for_signal's timeout passed
    └── StorageError             500  storage_error      the database refused or failed an operation

Every class has a ``status_code`` and a stable ``code``. Every transport carries an error in
ONE wire shape, upstream Durably's HTTP one: ``{"error": message, "code": code}`` (a response of
the HTTP server, an answer of the browser worker, an ended subscription, a boot failure, the
page client's JS adapter). :func:`error_to_wire` is its one encoder, :func:`error_from_wire`
its one decoder: it rebuilds the same class on the other side, keeping a ``code`` the
class does not name itself (``opfs_busy`` is a :class:`StorageError` with that code).

This module also runs on PyScript pages under MicroPython (``durably_web.client`` raises
these classes there), so it keeps to the subset both share: no ``from __future__`` (MicroPython
has no such module; it never evaluates annotations, and CPython 3.11+ can evaluate these) and
no hard ``typing`` import.
"""

try:  # noqa: SIM105 - MicroPython has no contextlib.suppress
    from typing import Any
except ImportError:  # MicroPython (PyScript pages): annotations are never evaluated there
    pass

__all__ = [
    "ConflictError",
    "DurablyError",
    "LeaseLost",
    "NotFoundError",
    "RunCancelled",
    "RunFailed",
    "SignalTimeout",
    "StorageError",
    "ValidationError",
    "error_from_wire",
    "error_to_wire",
]


class DurablyError(Exception):
    """Base class of every durably_web error.

    Args:
        message: what went wrong, for people.
        code: a code of its own instead of the class's (e.g. ``opfs_busy``).

    Attributes:
        status_code: the HTTP status that represents this error on the wire.
        code: a stable machine-readable string identifying the error (by default the class's).

    """

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code

    def to_wire(self) -> dict[str, str]:
        """Return the wire form ``{"error": message, "code": code}``."""
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


class SignalTimeout(DurablyError):
    """``step.wait_for_signal(name, timeout=...)``: no signal arrived before the timeout.

    Raised inside the job; a job that does not catch it fails with this message.
    """

    status_code = 408
    code = "signal_timeout"


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
        SignalTimeout,
        StorageError,
    )
}
# Codes of the browser runtime (web/client/errors.mjs) and the class each belongs to; that
# module mirrors this one's classes and tables (tests/unit/test_errors_js.py compares them).
_BY_CODE["opfs_unavailable"] = StorageError
_BY_CODE["opfs_busy"] = StorageError
_BY_CODE["quota_exceeded"] = StorageError
_BY_STATUS: dict[int, type[DurablyError]] = {
    400: ValidationError,
    404: NotFoundError,
    409: ConflictError,
}


def error_to_wire(error: BaseException, *, expose: bool = True) -> dict[str, str]:
    """Return any exception in the one wire shape ``{"error": message, "code": code}``.

    Args:
        error: the exception; one that is not a :class:`DurablyError` gets ``internal_error``.
        expose: send the message of such an unexpected exception (``False``: a server hides
            it behind ``internal server error``).

    """
    if isinstance(error, DurablyError):
        return error.to_wire()
    message = (str(error) or type(error).__name__) if expose else "internal server error"
    return {"error": message, "code": "internal_error"}


def error_from_wire(payload: Any, status_code: "int | None" = None) -> DurablyError:
    """Rebuild an error from its wire form ``{"error": message, "code": code}``.

    Args:
        payload: the decoded JSON object (anything else is taken as the message).
        status_code: the HTTP status, used when ``code`` names no class (e.g. an upstream
            Durably server, which sends only ``{"error": ...}``).

    Returns:
        An instance of the class named by ``code``, or the class whose status matches
        ``status_code``, or a plain :class:`DurablyError`; carrying the ``code`` as sent.

    """
    if not isinstance(payload, dict):
        payload = {"error": str(payload)}
    message = str(payload.get("error") or "unknown error")
    code = str(payload.get("code") or "")
    cls = _BY_CODE.get(code)
    if cls is None and status_code is not None:
        cls = _BY_STATUS.get(status_code)
    return (cls or DurablyError)(message, code or None)
