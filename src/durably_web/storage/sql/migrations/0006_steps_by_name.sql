-- Version 6 (durably_web): a checkpoint writes one b-tree instead of two.
-- Migration 3 keyed durably_steps by (run_id, "index", id), which left the partial unique
-- index on (run_id, name) as a second b-tree written by every completed step. Keyed by
-- (run_id, name, id) WITHOUT ROWID, the table itself finds a step by name (the replay, the
-- completed-step and retry look-ups, upstream's getCompletedStep), and the rule "one completed
-- checkpoint per step" is kept by the triggers below: they look the key up (a read, no
-- write) and refuse a second completed row with the unique index's error. A run's steps in
-- call order (get_steps) are sorted by "index" when read. Columns and names are unchanged,
-- so upstream Durably still reads and writes this table; ids stay ULIDs.
CREATE TABLE "durably_steps_v6" (
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
INSERT INTO "durably_steps_v6" SELECT "id", "run_id", "name", "index", "status", "output", "error", "started_at", "completed_at", "attempt", "retry_at" FROM "durably_steps";
DROP TABLE "durably_steps";
ALTER TABLE "durably_steps_v6" RENAME TO "durably_steps";
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
