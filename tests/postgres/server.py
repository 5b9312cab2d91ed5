"""A real PostgreSQL server for the test run, started once by ``scripts/postgres``.

``scripts/test`` starts the cluster itself (and stops it however the run ends) and passes it
in ``DURABLY_TEST_POSTGRES_URL`` and ``DURABLY_TEST_POSTGRES_DIR``; a bare ``pytest`` starts one
for its session, owned by the pytest process (so its watchdog stops it even if pytest is
killed). Tests that need it never skip: a server that cannot be installed or started fails
them, with the script's own error. The server's URL is in ``DURABLY_TEST_POSTGRES_URL`` for
subprocesses; each test gets an empty schema of its own, selected through the URL.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

__all__ = ["PostgresServer", "postgres_server", "postgres_url"]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgres"
URL_VARIABLE = "DURABLY_TEST_POSTGRES_URL"
DIR_VARIABLE = "DURABLY_TEST_POSTGRES_DIR"


@dataclass(frozen=True)
class PostgresServer:
    """A running throwaway cluster."""

    directory: str
    url: str

    def restart(self) -> None:
        """Restart the server (``pg_ctl restart -m fast``): every connection is dropped."""
        _script("restart", self.directory)

    def down(self) -> None:
        """Stop the server, keeping its data: it is unreachable until :meth:`up`."""
        _script("down", self.directory)

    def up(self) -> None:
        """Start the server again after :meth:`down`."""
        _script("up", self.directory)

    def schema_url(self, schema: str) -> str:
        """Return the server's URL with ``search_path`` set to ``schema``."""
        return f"{self.url}?options={quote(f'-csearch_path={schema}')}"

    def new_schema(self) -> str:
        """Create an empty schema and return its name."""
        import psycopg  # here: the Pyodide runner imports this module and has no psycopg

        schema = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(f'CREATE SCHEMA "{schema}"')
        return schema

    def drop_schema(self, schema: str) -> None:
        """Drop a schema and everything in it."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _script(*args: str) -> str:
    result = subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=900, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"scripts/postgres {' '.join(args)} failed (exit {result.returncode}):\n"
            f"{result.stderr.strip()}",
            pytrace=False,
        )
    return result.stdout


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The cluster ``scripts/test`` started, or one started (and stopped) for the session."""
    if os.environ.get(URL_VARIABLE) and os.environ.get(DIR_VARIABLE):
        yield PostgresServer(os.environ[DIR_VARIABLE], os.environ[URL_VARIABLE])
        return
    started = _script("start", "--owner", str(os.getpid()))
    values = dict(line.split("=", 1) for line in started.splitlines() if "=" in line)
    server = PostgresServer(values["DIR"], values["URL"])
    os.environ[URL_VARIABLE] = server.url
    try:
        yield server
    finally:
        os.environ.pop(URL_VARIABLE, None)
        _script("stop", server.directory)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A URL whose ``search_path`` is a new, empty schema, dropped after the test."""
    schema = postgres_server.new_schema()
    yield postgres_server.schema_url(schema)
    postgres_server.drop_schema(schema)
