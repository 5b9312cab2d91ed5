"""A run whose stored values cannot be parsed is listed, shown and cancelled, not a 500.

The row below is what ``--lease-duration 1e12`` used to write (a lease expiring in the year
33715), plus garbage in other columns, as a hand edit or a foreign writer could leave.
"""

from __future__ import annotations

import asyncio

from tests import jobs
from tests.databases import sql_on
from tests.server.conftest import Served


async def test_runs_run_and_cancel_answer_for_a_run_with_unreadable_values(
    served: Served,
) -> None:
    durably = served.durably
    run = await durably.jobs.steps.trigger({"n": 2, "gate_at": 0, "gate": "held"})
    await asyncio.wait_for(jobs.recorder.entered["held"].wait(), 10)
    sql_on(
        durably.store,
        "UPDATE durably_runs SET lease_expires_at = '33715-07-10T20:40:52.123Z', "
        "created_at = 'garbage', progress = '{' WHERE id = ?1",
        (run.id,),
    )

    listing = await served.http.get("/runs")
    assert listing.status_code == 200, listing.text
    [listed] = [r for r in listing.json() if r["id"] == run.id]
    assert listed["status"] == "leased" and listed["progress"] is None

    shown = await served.http.get("/run", params={"runId": run.id})
    assert shown.status_code == 200, shown.text
    assert shown.json()["createdAt"].endswith("Z")  # the run id's own time stands in

    cancelled = await served.http.post("/cancel", params={"runId": run.id})
    assert cancelled.status_code == 200, cancelled.text
    jobs.recorder.gates["held"].set()
    after = await durably.get_run(run.id)
    assert after is not None and after.status == "cancelled"
