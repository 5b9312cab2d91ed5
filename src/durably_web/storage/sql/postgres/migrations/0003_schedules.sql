-- Version 3 (durably_web): cron schedules (durably.schedule); the PostgreSQL twin of the SQLite
-- migration 0005_schedules.sql (read it for each column). Upstream Durably 0.15 never reads this
-- table. A tick is triggered once: the worker that triggers it moves next_tick_at on with a
-- compare-and-set in the transaction that inserts its run, and the run's idempotency key
-- (schedule:<name>:<tick>) is unique per job.
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
);
