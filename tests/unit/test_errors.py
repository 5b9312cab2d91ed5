from __future__ import annotations

import pytest

from durably_web import errors


@pytest.mark.parametrize(
    ("cls", "status", "code"),
    [
        (errors.DurablyError, 500, "internal_error"),
        (errors.ValidationError, 400, "validation_error"),
        (errors.NotFoundError, 404, "not_found"),
        (errors.ConflictError, 409, "conflict"),
        (errors.RunCancelled, 409, "run_cancelled"),
        (errors.LeaseLost, 409, "lease_lost"),
        (errors.RunFailed, 500, "run_failed"),
        (errors.StorageError, 500, "storage_error"),
    ],
)
def test_errors_round_trip_the_wire(cls: type[errors.DurablyError], status: int, code: str) -> None:
    error = cls("something went wrong")
    assert (error.status_code, error.code) == (status, code)
    assert error.to_wire() == {"error": "something went wrong", "code": code}
    rebuilt = errors.error_from_wire(error.to_wire())
    assert type(rebuilt) is cls
    assert str(rebuilt) == "something went wrong"


def test_upstream_errors_rebuilt_from_status() -> None:
    assert type(errors.error_from_wire({"error": "x"}, 404)) is errors.NotFoundError
    assert type(errors.error_from_wire({"error": "x"}, 418)) is errors.DurablyError
    assert str(errors.error_from_wire({})) == "unknown error"


def test_one_wire_shape_for_any_error() -> None:
    """errors.error_to_wire is the one encoder: every transport sends {"error", "code"}."""
    assert errors.error_to_wire(errors.NotFoundError("Run not found")) == {
        "error": "Run not found",
        "code": "not_found",
    }
    assert errors.error_to_wire(KeyError("k")) == {"error": "'k'", "code": "internal_error"}
    assert errors.error_to_wire(RuntimeError(), expose=False) == {
        "error": "internal server error",
        "code": "internal_error",
    }


def test_a_code_of_its_own_survives_the_round_trip() -> None:
    error = errors.error_from_wire({"error": "pool held", "code": "opfs_busy"})
    assert type(error) is errors.StorageError and error.code == "opfs_busy"
    assert errors.error_from_wire(error.to_wire()).code == "opfs_busy"
    assert errors.StorageError.code == "storage_error"
    unknown = errors.error_from_wire({"error": "nope", "code": "unauthorized"}, 401)
    assert type(unknown) is errors.DurablyError and unknown.code == "unauthorized"
