from __future__ import annotations

import pytest

from durably_web import ValidationError, create_durably
from durably_web.options import Options, parse_duration


def test_defaults_match_upstream() -> None:
    options = Options.build()
    assert (options.polling_interval, options.lease_renew_interval, options.lease_duration) == (
        1.0,
        5.0,
        30.0,
    )
    assert (options.max_concurrent_runs, options.preserve_steps, options.retain_runs) == (
        1,
        False,
        None,
    )


def test_seed_aliases() -> None:
    options = Options.build(heartbeat_interval=2, stale_threshold=9)
    assert (options.lease_renew_interval, options.lease_duration) == (2.0, 9.0)
    with pytest.raises(ValidationError, match="not both"):
        Options.build(heartbeat_interval=2, lease_renew_interval=3)
    with pytest.raises(ValidationError, match="not both"):
        Options.build(stale_threshold=2, lease_duration=3)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_concurrent_runs": 0}, "max_concurrent_runs must be an integer between 1 and 1000"),
        ({"max_concurrent_runs": 1001}, "between 1 and 1000, got 1001"),
        ({"max_concurrent_runs": True}, "max_concurrent_runs"),
        ({"polling_interval": 0}, "polling_interval must be greater than 0"),
        ({"polling_interval": float("nan")}, "polling_interval must be a finite number"),
        ({"lease_duration": "30"}, "lease_duration must be a finite number"),
        ({"lease_renew_interval": 40}, "must be shorter than lease_duration"),
        ({"retain_runs": "30s"}, "retain_runs must be a duration like '30d'"),
        ({"retain_runs": "0d"}, "retain_runs must be longer than zero"),
        ({"preserve_steps": "yes"}, "preserve_steps must be True or False"),
        ({"labels": 42}, "labels must be a pydantic model"),
    ],
)
def test_invalid_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Options.build(**options)  # type: ignore[arg-type]


def test_durations() -> None:
    assert parse_duration("7d") == 7 * 86400
    assert parse_duration("12h") == 12 * 3600
    assert parse_duration("30m") == 1800


@pytest.mark.parametrize(
    ("database", "message"),
    [
        ("postgres://x", "database URL must look like"),
        ("sqlite://", "database URL must look like"),
        ("sqlite:///x.db?fsync=1", "unknown database URL option"),
        ("sqlite:///x.db?synchronous=SOMETIMES", "synchronous must be one of"),
        ("sqlite:///x.db?busy_timeout=soon", "busy_timeout must be a number"),
        (42, "database must be a sqlite:/// URL"),
    ],
)
def test_invalid_database(database: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        create_durably(database)  # type: ignore[arg-type]


async def test_worker_id_validated() -> None:
    with pytest.raises(ValidationError, match="worker_id"):
        create_durably(worker_id="")
    durably = create_durably()
    assert durably.worker_id.startswith("worker_")
    await durably.close()  # Python >= 3.13 warns about an unclosed sqlite3 database


def test_short_lease_derives_renewal_interval() -> None:
    options = Options.build(lease_duration=2)
    assert options.lease_renew_interval == 2 / 3
    assert Options.build(lease_duration=60).lease_renew_interval == 5.0
