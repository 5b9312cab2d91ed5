-- Version 2 (durably_web): durable waits, signals, step retries and delayed runs; the
-- PostgreSQL twin of the SQLite migration 0004_durable_waits.sql (read it for each column).
-- Upstream Durably 0.15 on Node still opens and uses such a database: it never claims a run
-- with status 'waiting' (its claim takes 'pending' runs and expired 'leased' ones only), it
-- reads rows with selectAll and ignores the new columns, and it never touches durably_signals.
ALTER TABLE "durably_runs" ADD COLUMN "wait_kind" text;
ALTER TABLE "durably_runs" ADD COLUMN "wait_name" text;
ALTER TABLE "durably_runs" ADD COLUMN "wait_until" text;
ALTER TABLE "durably_runs" ADD COLUMN "wait_started_at" text;
-- The claim takes due waiting (and delayed) runs in (wait_until, id) order; next_wake reads the
-- earliest one. Only rows with a wake-up time are in it.
CREATE INDEX "idx_durably_runs_wait_until" ON "durably_runs" ("status", "wait_until", "id") WHERE "wait_until" IS NOT NULL;
ALTER TABLE "durably_steps" ADD COLUMN "attempt" integer;
ALTER TABLE "durably_steps" ADD COLUMN "retry_at" text;
CREATE TABLE "durably_signals" (
  "run_id" text not null,
  "name" text not null,
  "payload" text,
  "created_at" text not null,
  "received_at" text,
  PRIMARY KEY ("run_id", "name")
);
