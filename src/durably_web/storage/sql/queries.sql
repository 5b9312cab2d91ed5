-- Every query the Store runs. Each starts at a "-- name: <name>" line and runs to the next.
-- Parameters are numbered (?1, ?2, ...) so every driver binds them the same way.
-- Writes by a lease holder are fenced: "AND status = 'leased' AND lease_generation = ?2".

-- name: schema_versions_exists
SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'durably_schema_versions';

-- name: current_version
SELECT COALESCE(MAX(version), 0) AS version FROM durably_schema_versions;

-- name: record_version
INSERT INTO durably_schema_versions (version, applied_at) VALUES (?1, ?2);

-- name: find_by_idempotency_key
SELECT * FROM durably_runs WHERE job_name = ?1 AND idempotency_key = ?2;

-- name: find_pending_by_concurrency_key
SELECT * FROM durably_runs
WHERE job_name = ?1 AND concurrency_key = ?2 AND status = 'pending'
ORDER BY created_at, id LIMIT 1;

-- name: insert_run
INSERT INTO durably_runs (
  id, job_name, input, status, idempotency_key, concurrency_key, labels,
  current_step_index, completed_step_count, lease_generation, created_at, updated_at
) VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, 0, 0, 0, ?7, ?7)
RETURNING *;

-- name: insert_label
INSERT INTO durably_run_labels (run_id, key, value) VALUES (?1, ?2, ?3);

-- name: claim_next
-- The oldest claimable run of a job this worker knows: pending, or leased with an expired
-- lease (its worker is gone). A run with a concurrency key waits while any live lease holds
-- the same key, whatever its job. Each branch walks its own index and stops at the first hit.
-- Claiming clears the "Unknown job" warning a worker that does not know the job may have left.
UPDATE durably_runs
SET status = 'leased',
    lease_owner = ?2,
    lease_expires_at = ?3,
    lease_generation = lease_generation + 1,
    error = NULL,
    started_at = COALESCE(started_at, ?1),
    updated_at = ?1
WHERE id = (
  SELECT id FROM (
    SELECT * FROM (
      SELECT r.id, r.created_at FROM durably_runs r
      WHERE r.status = 'pending'
        AND r.job_name IN (SELECT value FROM json_each(?4))
        AND (r.concurrency_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM durably_runs o
          WHERE o.status = 'leased' AND o.concurrency_key = r.concurrency_key
            AND o.lease_expires_at > ?1))
      ORDER BY r.created_at, r.id LIMIT 1
    )
    UNION ALL
    SELECT * FROM (
      SELECT r.id, r.created_at FROM durably_runs r
      WHERE r.status = 'leased' AND r.lease_expires_at <= ?1
        AND r.job_name IN (SELECT value FROM json_each(?4))
        AND (r.concurrency_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM durably_runs o
          WHERE o.status = 'leased' AND o.concurrency_key = r.concurrency_key
            AND o.lease_expires_at > ?1))
      ORDER BY r.created_at, r.id LIMIT 1
    )
  )
  ORDER BY created_at, id LIMIT 1
)
RETURNING *;

-- name: claim_run
-- Lease one given run if it is claimable now, under the same rules as claim_next.
UPDATE durably_runs
SET status = 'leased',
    lease_owner = ?2,
    lease_expires_at = ?3,
    lease_generation = lease_generation + 1,
    error = NULL,
    started_at = COALESCE(started_at, ?1),
    updated_at = ?1
WHERE id = ?5
  AND job_name IN (SELECT value FROM json_each(?4))
  AND (status = 'pending' OR (status = 'leased' AND lease_expires_at <= ?1))
  AND (concurrency_key IS NULL OR NOT EXISTS (
    SELECT 1 FROM durably_runs o
    WHERE o.status = 'leased' AND o.concurrency_key = durably_runs.concurrency_key
      AND o.id != durably_runs.id AND o.lease_expires_at > ?1))
RETURNING *;

-- name: completed_steps
SELECT name, "index", output FROM durably_steps WHERE run_id = ?1 AND status = 'completed';

-- name: count_replayed_logs
-- The run's stored log lines that a resumed attempt logs again: those written outside any
-- completed step (a completed step replays from its checkpoint without calling its function).
SELECT COUNT(*) AS n FROM durably_logs l
WHERE l.run_id = ?1
  AND (l.step_name IS NULL OR NOT EXISTS (
    SELECT 1 FROM durably_steps s
    WHERE s.run_id = ?1 AND s.name = l.step_name AND s.status = 'completed'));

-- name: run_state
SELECT status, lease_generation FROM durably_runs WHERE id = ?1;

-- name: touch_run
-- Progress and step counters ride along lazily (with the next flush or the outcome): a
-- checkpoint itself writes only the step row, not the run's page.
UPDATE durably_runs
SET progress = COALESCE(?3, progress),
    current_step_index = COALESCE(?4, current_step_index),
    completed_step_count = COALESCE(?5, completed_step_count),
    updated_at = ?6
WHERE id = ?1 AND status = 'leased' AND lease_generation = ?2;

-- name: insert_step
-- Fenced: inserts nothing unless the run is still leased under this generation (?10).
INSERT INTO durably_steps (id, run_id, name, "index", status, output, error, started_at, completed_at)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 FROM durably_runs
WHERE id = ?2 AND status = 'leased' AND lease_generation = ?10;

-- name: insert_log
INSERT INTO durably_logs (id, run_id, step_name, level, message, data, created_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7);

-- name: renew_lease
UPDATE durably_runs SET lease_expires_at = ?3, updated_at = ?4
WHERE id = ?1 AND status = 'leased' AND lease_generation = ?2;

-- name: complete_run
UPDATE durably_runs
SET status = 'completed', output = ?3, error = NULL, progress = COALESCE(?4, progress),
    current_step_index = COALESCE(?6, current_step_index),
    completed_step_count = COALESCE(?7, completed_step_count),
    lease_owner = NULL, lease_expires_at = NULL, completed_at = ?5, updated_at = ?5
WHERE id = ?1 AND status = 'leased' AND lease_generation = ?2;

-- name: fail_run
UPDATE durably_runs
SET status = 'failed', error = ?3, progress = COALESCE(?4, progress),
    current_step_index = COALESCE(?6, current_step_index),
    completed_step_count = COALESCE(?7, completed_step_count),
    lease_owner = NULL, lease_expires_at = NULL, completed_at = ?5, updated_at = ?5
WHERE id = ?1 AND status = 'leased' AND lease_generation = ?2;

-- name: release_lease
-- Give an interrupted run back: pending again, unless another run of its job already waits
-- under the same concurrency key (one pending run per key); then an expired lease, which the
-- next claim takes just the same.
UPDATE durably_runs
SET status = CASE WHEN concurrency_key IS NOT NULL AND EXISTS (
        SELECT 1 FROM durably_runs p
        WHERE p.job_name = durably_runs.job_name AND p.concurrency_key = durably_runs.concurrency_key
          AND p.status = 'pending') THEN 'leased' ELSE 'pending' END,
    lease_expires_at = CASE WHEN concurrency_key IS NOT NULL AND EXISTS (
        SELECT 1 FROM durably_runs p
        WHERE p.job_name = durably_runs.job_name AND p.concurrency_key = durably_runs.concurrency_key
          AND p.status = 'pending') THEN ?4 ELSE NULL END,
    lease_owner = NULL,
    progress = COALESCE(?3, progress),
    current_step_index = COALESCE(?5, current_step_index),
    completed_step_count = COALESCE(?6, completed_step_count),
    updated_at = ?4
WHERE id = ?1 AND status = 'leased' AND lease_generation = ?2;

-- name: expire_leases
UPDATE durably_runs SET lease_expires_at = ?1, updated_at = ?1
WHERE status = 'leased' AND (lease_expires_at IS NULL OR lease_expires_at > ?1);

-- name: cancel_run
UPDATE durably_runs
SET status = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, error = NULL,
    completed_at = ?2, updated_at = ?2
WHERE id = ?1 AND status IN ('pending', 'leased')
RETURNING *;

-- name: retry_run
UPDATE durably_runs
SET status = 'pending', output = NULL, error = NULL, lease_owner = NULL,
    lease_expires_at = NULL, completed_at = NULL, updated_at = ?2
WHERE id = ?1 AND status IN ('failed', 'cancelled')
RETURNING *;

-- name: unknown_job_runs
-- Runs no worker seems to know: of a job not in ?1, waiting since before ?2 (pending since
-- then, or leased with a lease that expired then), and no live lease on any run of their job
-- (a worker that knows the job is busy with it). "Waiting since" is updated_at for a pending
-- run: only enqueue, retry and release set it while a run is pending.
SELECT * FROM durably_runs r
WHERE r.job_name NOT IN (SELECT value FROM json_each(?1))
  AND ((r.status = 'pending' AND r.updated_at <= ?2)
       OR (r.status = 'leased' AND r.lease_expires_at <= ?2))
  AND NOT EXISTS (
    SELECT 1 FROM durably_runs o
    WHERE o.job_name = r.job_name AND o.status = 'leased' AND o.lease_expires_at > ?3)
ORDER BY r.created_at, r.id LIMIT ?4;

-- name: flag_unknown_job
-- The warning is kept in the run's error (shown by run-info, runs and the HTTP API) without
-- touching updated_at, which dates the wait; a claim or a cancel clears it.
UPDATE durably_runs SET error = ?2
WHERE id = ?1 AND status IN ('pending', 'leased') AND error IS NULL;

-- name: fail_unknown_job
UPDATE durably_runs
SET status = 'failed', error = ?2, lease_owner = NULL, lease_expires_at = NULL,
    completed_at = ?4, updated_at = ?4
WHERE id = ?1
  AND ((status = 'pending' AND updated_at <= ?3)
       OR (status = 'leased' AND lease_expires_at <= ?3))
  AND NOT EXISTS (
    SELECT 1 FROM durably_runs o
    WHERE o.job_name = durably_runs.job_name AND o.status = 'leased' AND o.lease_expires_at > ?4)
RETURNING *;

-- name: get_run
SELECT * FROM durably_runs WHERE id = ?1;

-- name: list_runs
-- {filters} is replaced by the filter_* fragments below joined with AND (or by "1"); their
-- plain "?" parameters come first, then limit and offset.
SELECT * FROM durably_runs r WHERE {filters}
ORDER BY r.created_at DESC, r.id DESC LIMIT ? OFFSET ?;

-- name: filter_status
r.status = ?

-- name: filter_statuses
r.status IN (SELECT value FROM json_each(?))

-- name: filter_job
r.job_name = ?

-- name: filter_jobs
r.job_name IN (SELECT value FROM json_each(?))

-- name: filter_label
EXISTS (SELECT 1 FROM durably_run_labels l WHERE l.run_id = r.id AND l.key = ? AND l.value = ?)

-- name: get_steps
SELECT * FROM durably_steps WHERE run_id = ?1 ORDER BY "index", started_at, id;

-- name: get_logs
SELECT * FROM durably_logs WHERE run_id = ?1 ORDER BY created_at, id;

-- name: purge_candidates
SELECT id FROM durably_runs
WHERE status IN ('completed', 'failed', 'cancelled') AND completed_at < ?1
ORDER BY completed_at LIMIT ?2;

-- name: delete_steps
DELETE FROM durably_steps WHERE run_id = ?1;

-- name: delete_logs
DELETE FROM durably_logs WHERE run_id = ?1;

-- name: delete_labels
DELETE FROM durably_run_labels WHERE run_id = ?1;

-- name: delete_run
DELETE FROM durably_runs WHERE id = ?1;
