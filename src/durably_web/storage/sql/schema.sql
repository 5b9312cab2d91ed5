-- The schema every migration applied in order produces (as sqlite_master records it).
-- tests/unit/test_schema.py checks that migrations and this file agree.

CREATE TABLE "durably_logs" (
  "id" text primary key,
  "run_id" text not null,
  "step_name" text,
  "level" text not null,
  "message" text not null,
  "data" text,
  "created_at" text not null
);
CREATE TABLE "durably_run_labels" (
  "run_id" text not null,
  "key" text not null,
  "value" text not null
);
CREATE TABLE "durably_runs" (
  "id" text primary key,
  "job_name" text not null,
  "input" text not null,
  "status" text not null,
  "idempotency_key" text,
  "concurrency_key" text,
  "labels" text default '{}' not null,
  "current_step_index" integer default 0 not null,
  "completed_step_count" integer default 0 not null,
  "progress" text,
  "output" text,
  "error" text,
  "lease_owner" text,
  "lease_expires_at" text,
  "lease_generation" integer default 0 not null,
  "started_at" text,
  "completed_at" text,
  "created_at" text not null,
  "updated_at" text not null
, "wait_kind" text, "wait_name" text, "wait_until" text, "wait_started_at" text);
CREATE TABLE "durably_schema_versions" (
  "version" integer primary key,
  "applied_at" text not null
);
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
CREATE TABLE "durably_signals" (
  "run_id" text not null,
  "name" text not null,
  "payload" text,
  "created_at" text not null,
  "received_at" text,
  PRIMARY KEY ("run_id", "name")
) WITHOUT ROWID;
CREATE TABLE "durably_steps" (
  "id" text not null,
  "run_id" text not null,
  "name" text not null,
  "index" integer not null,
  "status" text not null,
  "output" text,
  "error" text,
  "started_at" text not null,
  "completed_at" text,
  "attempt" integer,
  "retry_at" text,
  PRIMARY KEY ("run_id", "name", "id")
) WITHOUT ROWID;
CREATE INDEX "idx_durably_logs_run_created" ON "durably_logs" ("run_id", "created_at");
CREATE INDEX "idx_durably_run_labels_key_value" ON "durably_run_labels" ("key", "value");
CREATE UNIQUE INDEX "idx_durably_run_labels_pk" ON "durably_run_labels" ("run_id", "key");
CREATE INDEX "idx_durably_runs_created" ON "durably_runs" ("created_at");
CREATE INDEX "idx_durably_runs_job_created" ON "durably_runs" ("job_name", "created_at");
CREATE UNIQUE INDEX "idx_durably_runs_job_idempotency" ON "durably_runs" ("job_name", "idempotency_key");
CREATE UNIQUE INDEX "idx_durably_runs_pending_concurrency" ON "durably_runs" ("job_name", "concurrency_key") WHERE status = 'pending' AND concurrency_key IS NOT NULL;
CREATE INDEX "idx_durably_runs_status_completed" ON "durably_runs" ("status", "completed_at");
CREATE INDEX "idx_durably_runs_status_concurrency" ON "durably_runs" ("status", "concurrency_key");
CREATE INDEX "idx_durably_runs_status_created" ON "durably_runs" ("status", "created_at");
CREATE INDEX "idx_durably_runs_status_lease_expires" ON "durably_runs" ("status", "lease_expires_at");
CREATE INDEX "idx_durably_runs_wait_until" ON "durably_runs" ("status", "wait_until", "id") WHERE "wait_until" IS NOT NULL;
CREATE TRIGGER "durably_steps_completed_unique" BEFORE INSERT ON "durably_steps"
WHEN NEW."status" = 'completed' AND EXISTS (
  SELECT 1 FROM "durably_steps"
  WHERE "run_id" = NEW."run_id" AND "name" = NEW."name" AND "status" = 'completed'
)
BEGIN
  SELECT RAISE(ABORT, 'UNIQUE constraint failed: durably_steps.run_id, durably_steps.name');
END;
CREATE TRIGGER "durably_steps_completed_unique_update" BEFORE UPDATE OF "run_id", "name", "status" ON "durably_steps"
WHEN NEW."status" = 'completed' AND EXISTS (
  SELECT 1 FROM "durably_steps"
  WHERE "run_id" = NEW."run_id" AND "name" = NEW."name" AND "status" = 'completed'
    AND "id" <> OLD."id"
)
BEGIN
  SELECT RAISE(ABORT, 'UNIQUE constraint failed: durably_steps.run_id, durably_steps.name');
END;
