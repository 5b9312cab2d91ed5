-- Version 2 (durably_web): indexes upstream lacks. Listing every run newest first
-- (get_runs without a status or job filter) walks created_at instead of sorting the table.
CREATE INDEX IF NOT EXISTS "idx_durably_runs_created" ON "durably_runs" ("created_at");
