-- Version 3 (durably_web): store step checkpoints clustered by run, in call order.
-- Upstream's steps table is a rowid table with a text primary key and an index on
-- (run_id, "index"): three b-trees written per checkpoint, besides the partial unique index.
-- Keyed by (run_id, "index", id) WITHOUT ROWID, the table itself is that order (get_steps,
-- deleting a run's steps), so a checkpoint writes two b-trees. Columns and names are
-- unchanged, so upstream Durably still reads and writes this table; ids stay ULIDs.
CREATE TABLE "durably_steps_v3" (
  "id" text not null,
  "run_id" text not null,
  "name" text not null,
  "index" integer not null,
  "status" text not null,
  "output" text,
  "error" text,
  "started_at" text not null,
  "completed_at" text,
  PRIMARY KEY ("run_id", "index", "id")
) WITHOUT ROWID;
INSERT INTO "durably_steps_v3" SELECT "id", "run_id", "name", "index", "status", "output", "error", "started_at", "completed_at" FROM "durably_steps";
DROP TABLE "durably_steps";
ALTER TABLE "durably_steps_v3" RENAME TO "durably_steps";
CREATE UNIQUE INDEX "idx_durably_steps_completed_unique" ON "durably_steps" ("run_id", "name") WHERE status = 'completed';
