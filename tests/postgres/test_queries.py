"""The PostgreSQL store's query set: each ``{logs}`` query also comes without the log lines."""

from __future__ import annotations

from durably_web.storage.postgres import store
from durably_web.storage.postgres.params import LOG_COLUMNS
from durably_web.storage.queries import queries


def test_every_logs_query_has_a_variant_without_log_parameters() -> None:
    found = queries("sql/postgres")
    with_logs = sorted(name for name, sql in found.items() if "{logs}" in sql)
    assert {"write_step", "touch_run", "complete_run", "fail_run"} <= set(with_logs)
    loaded = store._load_queries()
    for name in with_logs:
        full, bare = loaded[name], loaded[name + store._NO_LOGS]
        assert all(f"%({column})s" in full for column in LOG_COLUMNS), name
        assert not any(f"%({column})s" in bare for column in LOG_COLUMNS), name
        assert "{logs}" not in full + bare, name
