-- Version 4 (durably_web): an index in the claim's own order, so that a claim reads the run
-- ready longest from an index instead of sorting every claimable run. The claim (queries.sql,
-- claim_candidate and claim_fast) orders by "ready since": created_at for a leased run, else
-- wait_until (the end of a wait, a delayed start) or created_at. No index served that
-- expression, so each claim sorted all due runs: with 10,000 runs due at once (a mass
-- wake-up, a large backlog) every claim took ~7 ms, O(n) per claim and O(n^2) to drain them;
-- in this order the first row is the one taken (~0.05 ms). The expression must stay exactly
-- the claim's ORDER BY (tests/postgres/test_claim_plan.py fails otherwise).
-- Only rows a claim can take are in it: pending, leased (an expired lease is claimable),
-- and waiting runs with an end (a signal wait without a timeout is never due by time, and
-- 10,000 of them would otherwise sit in front of the due runs).
-- Upstream Durably 0.15 on Node never reads it; its writes just keep it up to date.
CREATE INDEX "idx_durably_runs_claim_order" ON "durably_runs" (
  (CASE WHEN "status" = 'leased' THEN "created_at" ELSE COALESCE("wait_until", "created_at") END),
  "id"
) WHERE "status" IN ('pending', 'leased') OR ("status" = 'waiting' AND "wait_until" IS NOT NULL);
