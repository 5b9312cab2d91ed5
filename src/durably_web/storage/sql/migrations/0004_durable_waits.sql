-- Version 4 (durably_web): durable waits, signals, step retries and delayed runs.
-- Upstream Durably 0.15 still opens such a database: it never claims a run with status
-- 'waiting' (its claim takes 'pending' runs and expired 'leased' ones only), it reads rows
-- with selectAll and ignores the new columns, and it never touches durably_signals.
--
-- The wait a run is in (or resumes from), on its row:
--   wait_kind        'sleep' | 'signal' | 'retry'; NULL when the run has no wait recorded
--   wait_name        the waiting step's name (for a signal wait, the signal's name too)
--   wait_until       not claimable before this time: the end of a sleep or backoff, a signal
--                    wait's timeout (NULL: none; a signal sets it to the time it arrived),
--                    or, on a pending run with no wait_kind, a delayed run's start
--   wait_started_at  when the wait began (the waiting step's started_at)
ALTER TABLE "durably_runs" ADD COLUMN "wait_kind" text;
ALTER TABLE "durably_runs" ADD COLUMN "wait_name" text;
ALTER TABLE "durably_runs" ADD COLUMN "wait_until" text;
ALTER TABLE "durably_runs" ADD COLUMN "wait_started_at" text;
-- Only rows with a wake-up time are in it, so runs that never wait cost nothing more to write.
CREATE INDEX "idx_durably_runs_wait_until" ON "durably_runs" ("status", "wait_until") WHERE "wait_until" IS NOT NULL;
-- A step's failed attempts: attempt counts from 1 (NULL in rows written before: 1); retry_at
-- is when the next attempt of a failed one is due (NULL: no further attempt).
ALTER TABLE "durably_steps" ADD COLUMN "attempt" integer;
ALTER TABLE "durably_steps" ADD COLUMN "retry_at" text;
-- Signals sent to a run (durably.signal): at most one of each name per run; kept until the
-- run's wait of that name takes it (received_at), deleted with the run.
CREATE TABLE "durably_signals" (
  "run_id" text not null,
  "name" text not null,
  "payload" text,
  "created_at" text not null,
  "received_at" text,
  PRIMARY KEY ("run_id", "name")
) WITHOUT ROWID;
