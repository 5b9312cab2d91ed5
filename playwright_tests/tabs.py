"""Several tabs of the multi-tab check page (``pages/check/tabs.html``) on one database.

Each :class:`Tab` is one page of ``/check/tabs.html?db=NAME`` in one Chromium context: the
first to connect leads (runs the engine worker), the others follow it. A tab records every
status and event it gets with its time (epoch ms, comparable between tabs and with
:func:`now_ms`). :func:`close_leader` closes the leading tab and measures the hand-over.
Used by ``playwright_tests/demo/test_tabs.py`` and ``bench/browser_tabs.py``.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import Error as PlaywrightError

__all__ = ["HandOver", "Tab", "close_leader", "leader_of", "now_ms"]

#: How long a tab may take to connect (a cold engine boot takes ~3-8 s here; CI is busier).
CONNECT_TIMEOUT_MS = 120_000


def now_ms() -> float:
    """The wall clock in epoch ms, as the tabs record their times."""
    return time.time() * 1000


class Tab:
    """One tab of the check page."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[str] = []
        page.on("console", lambda message: self.console.append(message.text))
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))

    @classmethod
    def open(cls, context: Any, base_url: str, db: str) -> Tab:
        """Open the check page on database ``db`` in a new tab of ``context`` (not waiting)."""
        tab = cls(context.new_page())
        tab.page.goto(f"{base_url}/check/tabs.html?db={db}")
        return tab

    def wait_connected(self, timeout: float = CONNECT_TIMEOUT_MS) -> float:
        """Wait until ``connect()`` resolved; return navigation → connected (ms).

        Raises:
            AssertionError: ``connect()`` rejected (with its code and message).

        """
        self.page.wait_for_function(
            "window.tab && (window.tab.record.connected !== null || window.tab.record.error)",
            timeout=timeout,
        )
        record = self.record()
        assert record["error"] is None, (record["error"], self.console[-5:])
        return float(record["connected"])

    def record(self) -> dict[str, Any]:
        """Everything the tab recorded: ``statuses``, ``events``, ``connected``, ``error``."""
        return dict(self.page.evaluate("window.tab.record"))

    def events(self, *types: str) -> list[dict[str, Any]]:
        """The events of these types the tab got, in the order it got them."""
        return [
            dict(event)
            for event in self.page.evaluate(
                "types => window.tab.record.events.filter(e => types.includes(e.type))",
                list(types),
            )
        ]

    @property
    def role(self) -> str:
        """``leader`` or ``follower`` (the client's role now)."""
        return str(self.page.evaluate("window.tab.client ? window.tab.client.role : null"))

    @property
    def status(self) -> str:
        """The client's status now."""
        return str(self.page.evaluate("window.tab.client ? window.tab.client.status : null"))

    def crash(self) -> None:
        """Crash the tab's renderer process, as a killed tab does (Chromium's chrome://crash)."""
        crashed: list[bool] = []
        self.page.on("crash", lambda _: crashed.append(True))
        with contextlib.suppress(PlaywrightError):  # the navigation is aborted by the crash
            self.page.goto("chrome://crash", timeout=10_000)
        deadline = time.monotonic() + 10
        while not crashed and time.monotonic() < deadline:
            time.sleep(0.05)
            with contextlib.suppress(PlaywrightError):
                self.page.title()  # lets Playwright dispatch the crash event
        assert crashed, "the tab did not crash"

    def start_triggers(self, count: int, payload: dict[str, Any]) -> None:
        """Start triggering ``count`` runs of ``tick`` (not waiting: see :meth:`triggered`)."""
        self.page.evaluate(
            "([count, payload]) => { window.tab.triggered = window.tab.trigger(count, payload); }",
            [count, payload],
        )

    def triggered(self) -> list[str]:
        """The ids of the runs :meth:`start_triggers` triggered (waits for its triggers)."""
        return [str(run_id) for run_id in self.page.evaluate("window.tab.triggered")]

    def trigger(self, payload: dict[str, Any]) -> str:
        """Trigger one run of ``tick``; return its id."""
        self.start_triggers(1, payload)
        return self.triggered()[0]

    def wait_events(
        self, kind: str, run_ids: list[str], timeout: float = CONNECT_TIMEOUT_MS
    ) -> None:
        """Wait until the tab got an event ``kind`` of every run in ``run_ids``."""
        self.page.wait_for_function(
            """([kind, ids]) => {
                const seen = new Set(window.tab.record.events.filter(e => e.type === kind).map(e => e.runId));
                return ids.every(id => seen.has(id));
            }""",
            arg=[kind, run_ids],
            timeout=timeout,
            polling=100,
        )

    def wait_step(self, run_id: str, count: int, timeout: float = CONNECT_TIMEOUT_MS) -> None:
        """Wait until the tab saw ``count`` steps of run ``run_id`` complete."""
        self.page.wait_for_function(
            """([id, n]) => window.tab.record.events.filter(
                e => e.type === "step:complete" && e.runId === id).length >= n""",
            arg=[run_id, count],
            timeout=timeout,
            polling=50,
        )


def leader_of(tabs: list[Tab]) -> Tab:
    """The one tab of ``tabs`` that leads.

    Raises:
        AssertionError: none or several do.

    """
    leaders = [tab for tab in tabs if tab.role == "leader"]
    assert len(leaders) == 1, [tab.role for tab in tabs]
    return leaders[0]


@dataclass(frozen=True)
class HandOver:
    """What happened after the leader tab closed (times in epoch ms)."""

    closed_at: float
    """Just before the leader's page was closed."""
    leader: Tab
    """The tab that leads now."""
    booting_at: float
    """The new leader started its engine worker."""
    ready_at: float
    """The new leader's engine was ready."""
    served_at: dict[int, float]
    """When each remaining tab (by its index in ``tabs``) was ready again."""
    stages: dict[str, float]
    """The new leader's boot stages: when each was reached, ms after ``booting_at``."""

    @property
    def boot_ms(self) -> float:
        """The new leader's engine boot."""
        return self.ready_at - self.booting_at

    @property
    def lock_ms(self) -> float:
        """Close → the new leader starts its worker (the Web Lock's hand-over)."""
        return self.booting_at - self.closed_at

    @property
    def served_ms(self) -> float:
        """Close → the last remaining tab serves the UI again."""
        return max(self.served_at.values()) - self.closed_at


def close_leader(
    tabs: list[Tab], how: str = "close", timeout: float = CONNECT_TIMEOUT_MS
) -> HandOver:
    """End the leading tab of ``tabs``; wait until every tab left serves the UI again.

    Args:
        tabs: the tabs; the leader is removed from it unless it reloads.
        how: ``close`` the tab, ``reload`` it (it stays in ``tabs``: it follows the next
            leader), or ``crash`` its renderer process (its worker dies with it).
        timeout: ms to wait for the tabs to be ready again.

    Returns:
        when the next leader booted and when each remaining tab was ready again.

    """
    old = leader_of(tabs)
    closed_at = now_ms()
    if how == "reload":
        old.page.reload()
    else:
        tabs.remove(old)
        if how == "crash":
            old.crash()
        else:
            old.page.close()
    for tab in tabs:
        tab.page.wait_for_function(
            """closed => window.tab && window.tab.record.statuses.some(
                s => s.at > closed && s.status === "ready")""",
            arg=closed_at,
            timeout=timeout,
            polling=50,
        )
    new = leader_of(tabs)
    statuses = new.record()["statuses"]
    booting_at = next(s["at"] for s in statuses if s["role"] == "leader")
    stages = {
        s["stage"]: s["at"] - booting_at
        for s in statuses
        if s["role"] == "leader" and s["stage"] and s["at"] >= booting_at
    }
    ready_at = next(s["at"] for s in statuses if s["role"] == "leader" and s["status"] == "ready")
    served_at = {
        index: next(
            s["at"]
            for s in tab.record()["statuses"]
            if s["at"] > closed_at and s["status"] == "ready"
        )
        for index, tab in enumerate(tabs)
    }
    return HandOver(closed_at, new, booting_at, ready_at, served_at, stages)
