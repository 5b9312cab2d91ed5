"""Every tab a full client: several tabs of one origin on one database (pages/check/tabs.html).

The first tab leads (runs the engine worker); the others forward through it and see every
event. When the leader closes, one of them boots the engine, which resumes the interrupted
run at once; the others follow it without a reload.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from playwright_tests.demo.helpers import Browser, Server, fresh_db
from playwright_tests.tabs import Tab, close_leader, leader_of

RUNS_PER_TAB = 50
HAND_OVERS = 10
STEPS = 12  # of the run interrupted by each hand-over
STEP_DELAY_MS = 150


def open_tabs(context: Any, server: Server, db: str, count: int) -> list[Tab]:
    """The first tab (connected: it leads), then ``count - 1`` more (connected: they follow)."""
    tabs = [Tab.open(context, server.url, db)]
    tabs[0].wait_connected()
    tabs += [Tab.open(context, server.url, db) for _ in range(count - 1)]
    for tab in tabs[1:]:
        tab.wait_connected()
    return tabs


# Started in a follower just before the leader closes: a read, a trigger with an idempotency
# key, one without, and a subscription to the running run.
IN_FLIGHT = """([runId, key]) => {
    const client = window.tab.client;
    const settle = (promise) => promise.then((value) => ({ ok: true, value }), (error) => ({ ok: false, code: error.code }));
    window.tab.inFlight = Promise.all([
        settle(client.getRuns({ limit: 5 }).then((runs) => runs.length)),
        settle(client.jobs.tick.trigger({ steps: 1 }, { idempotencyKey: key }).then((run) => run.id)),
        settle(client.jobs.tick.trigger({ steps: 1 }).then((run) => run.id)),
    ]);
    window.tab.subscribed = (async () => {
        const types = [];
        for await (const event of client.subscribe(runId)) types.push(event.type);
        return types;
    })();
}"""


def check_in_flight(tab: Tab, key: str) -> None:
    """What :data:`IN_FLIGHT` started survived the hand-over as documented."""
    read, keyed, plain = tab.page.evaluate("window.tab.inFlight")
    assert read["ok"] and read["value"] >= 1, read  # reads are sent again
    assert keyed["ok"], keyed  # so is a trigger with an idempotency key ...
    again = tab.page.evaluate(
        "key => window.tab.client.jobs.tick.trigger({steps: 1}, {idempotencyKey: key})", key
    )
    assert again["id"] == keyed["value"], (again, keyed)  # ... which made one run
    assert plain["ok"] or plain["code"] == "worker_restarted", plain  # others may be lost
    types = tab.page.evaluate("window.tab.subscribed")
    assert types[-1] == "run:complete" and "run:progress" in types, types  # continued


def check_resumed(tab: Tab, run_id: str, closed_at: float, where: str) -> None:
    """Tab ``tab`` saw run ``run_id`` resume after the leader ended at ``closed_at``.

    The run was leased by the old engine, then by another one only after the old tab was
    gone. Every step is checkpointed once, and none that the old engine had checkpointed
    started again: judged by the stored steps, since a crashed leader can die after a
    checkpoint and before its ``step:complete`` reached the other tabs.
    """
    events = [
        e for e in tab.events("run:leased", "step:start", "step:complete") if e["runId"] == run_id
    ]
    leases = [e for e in events if e["type"] == "run:leased"]
    assert len(leases) == 2 and leases[0]["owner"] != leases[1]["owner"], (where, leases)
    assert leases[1]["stamped"] >= closed_at - 5, (where, leases, closed_at)
    steps = tab.page.evaluate(
        """id => window.tab.client.getSteps(id).then(
            steps => steps.map(s => [s.name, s.status, Date.parse(s.completedAt)]))""",
        run_id,
    )
    assert sorted(name for name, _, _ in steps) == sorted(f"s{i}" for i in range(STEPS)), steps
    assert {status for _, status, _ in steps} == {"completed"}, (where, steps)
    # Checkpointed by the old engine: before the new one leased the run.
    before = {name for name, _, done in steps if done < leases[1]["stamped"]}
    assert len(before) >= 3, (where, steps, leases)  # it ended mid-run
    # Events after the new lease are the new engine's (a follower drops a gone leader's).
    after = events[events.index(leases[1]) :]
    again = {e["step"] for e in after if e["type"] == "step:start"} & before
    assert not again, (where, again, steps, events)
    seen_complete: set[str] = set()
    for event in events:  # in the order the tab got them
        if event["type"] == "step:complete":
            seen_complete.add(event["step"])
        elif event["type"] == "step:start":
            assert event["step"] not in seen_complete, (where, event, events)


def test_three_tabs_trigger_fifty_runs_each_and_every_tab_sees_every_run(
    server: Server, browser: Browser
) -> None:
    context = browser.open()
    workers: list[str] = []
    context.on("page", lambda page: page.on("worker", lambda w: workers.append(w.url)))
    tabs = open_tabs(context, server, fresh_db(), 3)
    assert [tab.role for tab in tabs] == ["leader", "follower", "follower"]

    for tab in tabs:  # at once: each tab's 50 triggers are in flight together
        tab.start_triggers(RUNS_PER_TAB, {"steps": 3})
    run_ids = [run_id for tab in tabs for run_id in tab.triggered()]
    assert len(set(run_ids)) == 3 * RUNS_PER_TAB

    for tab in tabs:
        tab.wait_events("run:complete", run_ids)
    for index, tab in enumerate(tabs):
        events = tab.events("run:leased", "run:complete", "run:progress", "step:start")
        completes = Counter(e["runId"] for e in events if e["type"] == "run:complete")
        leases = Counter(e["runId"] for e in events if e["type"] == "run:leased")
        starts = Counter((e["runId"], e["step"]) for e in events if e["type"] == "step:start")
        done = {e["runId"] for e in events if e["type"] == "run:progress" and e["current"] == 3}
        assert all(completes[run_id] == 1 for run_id in run_ids), f"tab {index}: {completes}"
        assert all(leases[run_id] == 1 for run_id in run_ids), f"tab {index}: leased again"
        assert set(starts.values()) == {1} and len(starts) == 3 * len(run_ids), f"tab {index}"
        assert done >= set(run_ids), f"tab {index} missed progress of {set(run_ids) - done}"
    stored = tabs[2].page.evaluate(
        "async () => (await window.tab.client.getRuns({limit: 500})).map(r => [r.id, r.status])"
    )
    assert {run_id: "completed" for run_id in run_ids} == dict(stored)
    engines = [url for url in workers if url.endswith("/_durably/runtime/worker.mjs")]
    assert len(engines) == 1, "only the leader runs an engine worker"
    # Besides it at most the leader's one short-lived snapshot worker (runtime/boot.mjs).
    assert len(workers) - len(engines) <= 1, workers
    assert all(
        url.endswith("/_durably/runtime/snapshot_worker.mjs")
        for url in workers
        if url not in engines
    )


def test_closing_the_leader_mid_run_ten_times_another_tab_finishes_each_run(
    server: Server, browser: Browser
) -> None:
    context = browser.open()
    db = fresh_db()
    tabs = open_tabs(context, server, db, 3)
    timings: list[dict[str, float]] = []
    for round_ in range(HAND_OVERS):
        trigger_tab = next(tab for tab in tabs if tab.role == "follower")
        run_id = trigger_tab.trigger({"steps": STEPS, "delay_ms": STEP_DELAY_MS})
        trigger_tab.wait_step(run_id, 3)  # mid-run: a few steps checkpointed
        trigger_tab.page.evaluate(IN_FLIGHT, [run_id, f"key{round_}"])
        hand_over = close_leader(tabs)
        check_in_flight(trigger_tab, f"key{round_}")

        for tab in tabs:
            tab.wait_events("run:complete", [run_id])
        first_start = min(
            e["at"]
            for e in hand_over.leader.events("step:start")
            if e["runId"] == run_id and e["at"] > hand_over.closed_at
        )
        for index, tab in enumerate(tabs):
            check_resumed(tab, run_id, hand_over.closed_at, f"round {round_}, tab {index}")

        # A follower serves the UI again within 1 s plus one engine boot.
        assert hand_over.served_ms <= 1000 + hand_over.boot_ms, hand_over
        timings.append(
            {
                "lock_ms": hand_over.lock_ms,
                "boot_ms": hand_over.boot_ms,
                "served_ms": hand_over.served_ms,
                "running_again_ms": first_start - hand_over.closed_at,
            }
        )
        tabs.append(Tab.open(context, server.url, db))  # three tabs again
        tabs[-1].wait_connected()
        assert tabs[-1].role == "follower"
    assert leader_of(tabs).status == "ready"
    print("hand-overs (ms):", timings)


@pytest.mark.parametrize("how", ["reload", "crash"])
def test_a_leader_that_reloads_or_crashes_mid_run_hands_over_too(
    server: Server, browser: Browser, how: str
) -> None:
    context = browser.open()
    tabs = open_tabs(context, server, fresh_db(), 3)
    old = leader_of(tabs)
    witness = tabs[2]  # a follower there from the start
    run_id = witness.trigger({"steps": STEPS, "delay_ms": STEP_DELAY_MS})
    witness.wait_step(run_id, 3)
    hand_over = close_leader(tabs, how)

    assert hand_over.leader is not old
    for tab in tabs:
        tab.wait_events("run:complete", [run_id])
    check_resumed(witness, run_id, hand_over.closed_at, how)
    assert hand_over.served_ms <= 1000 + hand_over.boot_ms, hand_over
    if how == "reload":  # the reloaded tab follows the tab that took over
        assert old in tabs and old.role == "follower" and old.status == "ready"
