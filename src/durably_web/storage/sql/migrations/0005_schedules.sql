-- Version 5 (durably_web): cron schedules (durably.schedule), and the wake-up index by id.
-- Upstream Durably 0.15 never reads this table, so a database with schedules still opens there.
--   name          the schedule's name (unique)
--   job_name      the job each tick triggers
--   cron          a 5-field cron expression (cronsim's dialect: Debian cron's)
--   timezone      an IANA zone the expression is read in ('UTC', 'Europe/Berlin')
--   input         the JSON input of every run
--   catch_up      'latest' | 'all' | 'none': what runs for ticks missed during downtime
--   next_tick_at  the next tick not yet triggered (UTC text); a worker that triggers it
--                 moves it on in the same transaction (compare-and-set), so a tick is
--                 triggered once however many workers see it due
--   last_tick_at  the last tick triggered (or skipped), NULL before the first
CREATE TABLE "durably_schedules" (
  "name" text not null primary key,
  "job_name" text not null,
  "cron" text not null,
  "timezone" text not null,
  "input" text not null,
  "catch_up" text not null,
  "next_tick_at" text not null,
  "last_tick_at" text,
  "created_at" text not null,
  "updated_at" text not null
) WITHOUT ROWID;
-- The claim takes due waiting runs in (wait_until, id) order: with id in the index, runs that
-- came due at one instant (a mass wake-up) are taken in index order, not by sorting them all
-- on every claim (10,000 runs due at once: O(n) per claim before).
DROP INDEX "idx_durably_runs_wait_until";
CREATE INDEX "idx_durably_runs_wait_until" ON "durably_runs" ("status", "wait_until", "id") WHERE "wait_until" IS NOT NULL;
