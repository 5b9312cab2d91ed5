from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import pytest

from durably_web import StorageError, ValidationError, create_durably
from durably_web.clock import format_timestamp
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
        (
            {"max_concurrent_runs": 0},
            "max_concurrent_runs must be an integer of at least 1 and at most 1000",
        ),
        ({"max_concurrent_runs": 1001}, "at least 1 and at most 1000, got 1001"),
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
        ("mysql://x", "database URL must look like"),
        ("sqlite://", "database URL must look like"),
        ("sqlite:///x.db?fsync=1", "unknown database URL option"),
        ("sqlite:///x.db?synchronous=SOMETIMES", "synchronous must be one of"),
        ("sqlite:///x.db?busy_timeout=soon", "busy_timeout must be a number"),
        (42, "database must be a sqlite:/// or postgresql:// URL"),
    ],
)
def test_invalid_database(database: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        create_durably(database)  # type: ignore[arg-type]


def test_postgres_url_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "durably_web.storage.postgres", None)  # not installed
    with pytest.raises(StorageError, match=r"pip install 'durably-web\[postgres\]'"):
        create_durably("postgresql://u:p@127.0.0.1:5432/db")


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


# -- every duration is bounded (a lease of 1e12 s used to write the year 33715) -----------

DAY = 86400


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"lease_duration": 1e12},
            "lease_duration must be greater than 0 and at most 604800 seconds (7 days), "
            "got 1000000000000.0",
        ),
        ({"lease_duration": 1e308}, "lease_duration must be greater than 0 and at most"),
        ({"lease_duration": float("inf")}, "lease_duration must be a finite number"),
        ({"stale_threshold": 8 * DAY}, "lease_duration must be greater than 0 and at most"),
        ({"lease_renew_interval": 2 * DAY}, "at most 86400 seconds (1 day)"),
        ({"polling_interval": 1e12}, "polling_interval must be greater than 0 and at most"),
        ({"retain_runs": "99999999999d"}, "retain_runs must be at most 36500 days"),
        ({"unknown_job_grace": -1}, "unknown_job_grace must be at least 0 and at most"),
        ({"unknown_job_grace": 1e12}, "at most 31536000 seconds (365 days)"),
        ({"unknown_job_grace": "5m"}, "unknown_job_grace must be a finite number"),
    ],
)
def test_durations_are_bounded(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Options.build(**options)  # type: ignore[arg-type]
    assert message in str(raised.value)


def test_largest_durations_are_accepted() -> None:
    options = Options.build(
        lease_duration=7 * DAY,
        polling_interval=DAY,
        retain_runs="36500d",
        unknown_job_grace=0,
    )
    assert (options.lease_duration, options.retain_runs) == (7 * DAY, 36500 * DAY)
    assert options.unknown_job_grace == 0
    assert Options.build(unknown_job_grace=None).unknown_job_grace is None
    assert Options.build().unknown_job_grace == 300


async def test_call_timeouts_are_bounded() -> None:
    durably = create_durably()
    for bad in (1e12, float("nan"), -1, 0):
        with pytest.raises(ValidationError, match="timeout must be"):
            await durably.wait_for_run("run", timeout=bad)
    with pytest.raises(ValidationError, match="timeout must be at least 0 and at most"):
        await durably.stop(timeout=1e308)
    with pytest.raises(ValidationError, match="older_than must be at least 0 and at most"):
        await durably.purge_runs(timedelta(days=999_999_999))
    with pytest.raises(ValidationError, match="older_than must be at most 36500 days"):
        await durably.purge_runs("9999999999d")
    assert await durably.purge_runs(datetime(1, 1, 1, tzinfo=UTC)) == 0
    await durably.close()


def test_timestamps_outside_years_1000_to_9999_are_refused() -> None:
    assert format_timestamp(253_402_300_799.999) == "9999-12-31T23:59:59.999Z"
    for bad in (253_402_300_800.0, 1e308, float("nan"), -1e12):
        with pytest.raises(ValidationError, match="outside the years 1000-9999"):
            format_timestamp(bad)
