"""What the Python agents of the PostgreSQL suite share: command line, messages, commands.

Standard library only: it runs in the project's venv (``durably_pg_agent.py``) and in DBOS's
(``dbos_pg_agent.py``). ``pg_suite.py`` documents the protocol; the Node agent
(``bench/upstream_pg/agent.mjs``) speaks it too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["AgentArgs", "command", "event", "now", "parse_args", "read_command", "say"]

_OUT = threading.Lock()  # DBOS reports from its workflow threads


@dataclass(frozen=True, slots=True)
class AgentArgs:
    """One agent process: its role, its database, how many runs it executes at once."""

    role: str
    url: str
    concurrency: int
    params: dict[str, Any]


def parse_args(description: str, roles: Sequence[str]) -> AgentArgs:
    """Parse ``--role --url [--concurrency] [--params]``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--role", required=True, choices=list(roles))
    parser.add_argument("--url", required=True, help="the postgresql:// URL of the database")
    parser.add_argument("--concurrency", type=int, default=1, help="runs executed at once")
    parser.add_argument("--params", default="{}", help="the workload's sizes, a JSON object")
    ns = parser.parse_args()
    return AgentArgs(ns.role, ns.url, ns.concurrency, json.loads(ns.params))


def now() -> float:
    """Return this machine's wall clock in seconds (every agent and the orchestrator read it)."""
    return time.time()


def say(message: dict[str, Any]) -> None:
    """Write one JSON message line on stdout."""
    line = json.dumps(message) + "\n"
    with _OUT:
        sys.stdout.write(line)
        sys.stdout.flush()


def event(kind: str, run_id: str | None, **extra: Any) -> None:
    """Report that run ``run_id`` started, completed or failed, now."""
    say({"event": kind, "run": run_id, "t": now(), **extra})


def read_command() -> dict[str, Any] | None:
    """Block for the next command line on stdin; None when stdin closes (time to stop)."""
    line = sys.stdin.readline()
    if not line:
        return None
    message: dict[str, Any] = json.loads(line)
    return message


async def command() -> dict[str, Any] | None:
    """:func:`read_command` without blocking the event loop."""
    return await asyncio.to_thread(read_command)
