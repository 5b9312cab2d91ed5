"""Fixtures of the crash tests: the database the engine keeps its runs in."""

from __future__ import annotations

import pytest

from tests.acceptance.crash_harness import Engine


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each crash test runs with the engine on SQLite and on PostgreSQL."""
    if request.param == "postgres":
        return Engine(str(request.getfixturevalue("postgres_url")))
    return Engine(None)
