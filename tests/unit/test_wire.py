"""Wire forms match upstream Durably 0.15's JSON, key for key, plus this project's own keys.

Ours come after upstream's: ``waiting`` and ``runAt`` on runs (durable waits, delayed runs),
``attempt`` and ``retryAt`` on steps (retries). Upstream's clients ignore keys they do not know.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from durably_web.events import (
    Event,
    LogWrite,
    RunComplete,
    RunProgress,
    RunStart,
    StepComplete,
    WorkerError,
    event_from_wire,
)
from durably_web.models import Log, Progress, Run, Step, Waiting

T = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
AT = T.timestamp()


def make_run(**changes: object) -> Run:
    values: dict[str, object] = {
        "id": "01ABC",
        "job_name": "import-csv",
        "input": {"f": "a.csv"},
        "status": "completed",
        "idempotency_key": None,
        "concurrency_key": "k",
        "current_step_index": 2,
        "completed_step_count": 2,
        "progress": Progress(4, 5, "msg"),
        "output": {"n": 1},
        "error": None,
        "labels": {"org": "o1"},
        "lease_owner": None,
        "lease_expires_at": None,
        "lease_generation": 1,
        "started_at": T,
        "completed_at": T,
        "created_at": T,
        "updated_at": T,
    }
    values.update(changes)
    return Run(**values)  # type: ignore[arg-type]


def test_client_run_matches_upstream() -> None:
    assert make_run().to_client_wire() == {
        "id": "01ABC",
        "jobName": "import-csv",
        "input": {"f": "a.csv"},
        "status": "completed",
        "currentStepIndex": 2,
        "completedStepCount": 2,
        "progress": {"current": 4, "total": 5, "message": "msg"},
        "output": {"n": 1},
        "error": None,
        "labels": {"org": "o1"},
        "startedAt": "2026-01-02T03:04:05.678Z",
        "completedAt": "2026-01-02T03:04:05.678Z",
        "createdAt": "2026-01-02T03:04:05.678Z",
        "isTerminal": True,
        "isActive": False,
        "waiting": None,
        "runAt": None,
    }


def test_a_waiting_run_says_what_for_on_the_wire() -> None:
    waiting = Waiting("signal", "approval", T, since=T)
    run = make_run(status="waiting", waiting=waiting, wait=waiting, output=None)
    expected = {"kind": "signal", "name": "approval", "until": "2026-01-02T03:04:05.678Z"}
    assert run.to_client_wire()["waiting"] == expected
    assert run.to_client_wire()["isActive"] is True
    assert run.to_wire()["waiting"] == expected
    back = Run.from_wire(run.to_wire())
    assert back.waiting == Waiting("signal", "approval", T)
    delayed = make_run(status="pending", run_at=T)
    assert delayed.to_wire()["runAt"] == "2026-01-02T03:04:05.678Z"
    assert Run.from_wire(delayed.to_wire()).run_at == T


def test_full_run_round_trips() -> None:
    run = make_run(disposition="created")
    wire = run.to_wire()
    assert list(wire)[:6] == [
        "id",
        "jobName",
        "input",
        "status",
        "idempotencyKey",
        "concurrencyKey",
    ]
    assert wire["leaseGeneration"] == 1 and wire["disposition"] == "created"
    assert Run.from_wire(wire) == run
    assert Run.from_wire(wire).disposition == "created"


def test_progress_omits_unset_keys() -> None:
    assert Progress(1).to_wire() == {"current": 1}
    assert Progress(1, message="m").to_wire() == {"current": 1, "message": "m"}


def test_step_and_log_wire() -> None:
    step = Step("S1", "R1", "parse", 0, "completed", [1], None, T, T)
    assert step.to_wire() == {
        "id": "S1",
        "runId": "R1",
        "name": "parse",
        "index": 0,
        "status": "completed",
        "output": [1],
        "error": None,
        "startedAt": "2026-01-02T03:04:05.678Z",
        "completedAt": "2026-01-02T03:04:05.678Z",
        "attempt": 1,
        "retryAt": None,
    }
    assert Step.from_wire(step.to_wire()) == step
    retried = Step("S2", "R1", "fetch", 1, "failed", None, "boom", T, T, attempt=2, retry_at=T)
    assert retried.to_wire()["retryAt"] == "2026-01-02T03:04:05.678Z"
    assert Step.from_wire(retried.to_wire()) == retried
    log = Log("L1", "R1", None, "info", "hi", {"x": 1}, T)
    assert log.to_wire()["stepName"] is None
    assert Log.from_wire(log.to_wire()) == log


def test_events_wire_like_upstream() -> None:
    base: dict[str, Any] = {
        "run_id": "R1",
        "job_name": "j",
        "labels": {"a": "b"},
        "sequence": 7,
        "at": AT,
    }
    assert RunStart(input={"x": 1}, lease_owner="w1", lease_expires_at="E", **base).to_wire() == {
        "type": "run:leased",
        "runId": "R1",
        "jobName": "j",
        "input": {"x": 1},
        "leaseOwner": "w1",
        "leaseExpiresAt": "E",
        "labels": {"a": "b"},
        "timestamp": "2026-01-02T03:04:05.678Z",
        "sequence": 7,
    }
    assert "output" not in RunComplete(output=None, duration=3, **base).to_wire()
    assert RunComplete(output=0, duration=3, **base).to_wire()["output"] == 0
    step = StepComplete(step_name="s", step_index=2, output=None, duration=1, **base).to_wire()
    assert (step["stepName"], step["stepIndex"], "output" in step) == ("s", 2, False)
    log = LogWrite(step_name=None, level="warn", message="m", data=None, **base).to_wire()
    assert "data" not in log and log["stepName"] is None
    progress = RunProgress(progress=Progress(1, 2), **base).to_wire()
    assert progress["progress"] == {"current": 1, "total": 2}
    error = WorkerError(run_id=None, job_name=None, error="e", context="c", sequence=1, at=AT)
    assert error.to_wire() == {
        "type": "worker:error",
        "error": "e",
        "context": "c",
        "labels": {},
        "timestamp": "2026-01-02T03:04:05.678Z",
        "sequence": 1,
    }


def test_events_round_trip() -> None:
    base: dict[str, Any] = {"run_id": "R1", "job_name": "j", "labels": {}, "sequence": 3, "at": AT}
    events: tuple[Event, ...] = (
        RunStart(input=None, lease_owner="w", lease_expires_at="E", **base),
        RunProgress(progress=Progress(1, None, "m"), **base),
        StepComplete(step_name="s", step_index=0, output=[1], duration=2, **base),
    )
    for event in events:
        again = event_from_wire(event.to_wire())
        assert again == event
    start = event_from_wire({"type": "run:start", "runId": "R"})
    assert start.type == "run:start"
