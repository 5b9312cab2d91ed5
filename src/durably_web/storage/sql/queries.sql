-- Every query the Store runs. Each starts at a "-- name: <name>" line and runs to the next.
-- Parameters are numbered (?1, ?2, ...) so every driver binds them the same way.
-- Writes by a lease holder are fenced: "AND status = 'leased' AND lease_generation = ?2".

-- name: schema_versions_exists
SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'durably_schema_versions';

-- name: schema_object_count
SELECT COUNT(*) AS n FROM sqlite_master;

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
-- ?8: a delayed run's start (trigger's delay / run_at), NULL to start at once.
INSERT INTO durably_runs (
  id, job_name, input, status, idempotency_key, concurrency_key, labels,
  current_step_index, completed_step_count, lease_generation, created_at, updated_at,
  wait_until
) VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, 0, 0, 0, ?7, ?7, ?8)
RETURNING *;

-- name: insert_label
INSERT INTO durably_run_labels (run_id, key, value) VALUES (?1, ?2, ?3);

-- name: claim_next
-- The claimable run of a job this worker knows that has been ready longest: pending (a
-- delayed one once its start time came), waiting with its wait over (wait_until passed, or a
-- signal set it to the time it arrived), or leased with an expired lease (its worker is
-- gone). "Ready since": created_at, or wait_until for a run that waited. A run with a
-- concurrency key waits while any live lease holds the same key, whatever its job. Each
-- branch walks its own index and stops at the first hit; all four share the job names (jobs)
-- and the concurrency keys a live lease holds (held).
-- Claiming clears the "Unknown job" warning a worker that does not know the job may have left,
-- and a delayed run's start time; a wait stays recorded (the resumed step completes it).
WITH jobs(name) AS (SELECT value FROM json_each(?4)),
held(key) AS (
  SELECT concurrency_key FROM durably_runs
  WHERE status = 'leased' AND concurrency_key IS NOT NULL AND lease_expires_at > ?1
)
UPDATE durably_runs
SET status = 'leased',
    lease_owner = ?2,
    lease_expires_at = ?3,
    lease_generation = lease_generation + 1,
    error = NULL,
    started_at = COALESCE(started_at, ?1),
    updated_at = ?1,
    wait_until = CASE WHEN wait_kind IS NULL THEN NULL ELSE wait_until END
WHERE id = (
  SELECT id FROM (
    SELECT * FROM (
      SELECT r.id, r.created_at AS ready FROM durably_runs r
      WHERE r.status = 'pending' AND r.wait_until IS NULL
        AND r.job_name IN jobs AND (r.concurrency_key IS NULL OR r.concurrency_key NOT IN held)
      ORDER BY r.created_at, r.id LIMIT 1
    )
    UNION ALL
    SELECT * FROM (
      SELECT r.id, r.wait_until AS ready FROM durably_runs r
      WHERE r.status = 'pending' AND r.wait_until <= ?1
        AND r.job_name IN jobs AND (r.concurrency_key IS NULL OR r.concurrency_key NOT IN held)
      ORDER BY r.wait_until, r.id LIMIT 1
    )
    UNION ALL
    SELECT * FROM (
      SELECT r.id, r.wait_until AS ready FROM durably_runs r
      WHERE r.status = 'waiting' AND r.wait_until <= ?1
        AND r.job_name IN jobs AND (r.concurrency_key IS NULL OR r.concurrency_key NOT IN held)
      ORDER BY r.wait_until, r.id LIMIT 1
    )
    UNION ALL
    SELECT * FROM (
      SELECT r.id, r.created_at AS ready FROM durably_runs r
      WHERE r.status = 'leased' AND r.lease_expires_at <= ?1
        AND r.job_name IN jobs AND (r.concurrency_key IS NULL OR r.concurrency_key NOT IN held)
      ORDER BY r.created_at, r.id LIMIT 1
    )
  )
  ORDER BY ready, id LIMIT 1
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
    updated_at = ?1,
    wait_until = CASE WHEN wait_kind IS NULL THEN NULL ELSE wait_until END
WHERE id = ?5
  AND job_name IN (SELECT value FROM json_each(?4))
  AND ((status = 'pending' AND (wait_until IS NULL OR wait_until <= ?1))
       OR (status = 'waiting' AND wait_until <= ?1)
       OR (status = 'leased' AND lease_expires_at <= ?1))
  AND (concurrency_key IS NULL OR NOT EXISTS (
    SELECT 1 FROM durably_runs o
    WHERE o.status = 'leased' AND o.concurrency_key = durably_runs.concurrency_key
      AND o.id != durably_runs.id AND o.lease_expires_at > ?1))
RETURNING *;

-- name: next_wake
-- The earliest time after ?1 at which a run of these jobs (?2) becomes claimable: the end of
-- a wait, or a delayed run's start. The worker sleeps until then (or its polling interval).
SELECT MIN(due) AS due FROM (
  SELECT * FROM (
    SELECT wait_until AS due FROM durably_runs
    WHERE status = 'waiting' AND wait_until > ?1 AND job_name IN (SELECT value FROM json_each(?2))
    ORDER BY wait_until LIMIT 1
  )
  UNION ALL
  SELECT * FROM (
    SELECT wait_until AS due FROM durably_runs
    WHERE status = 'pending' AND wait_until > ?1 AND job_name IN (SELECT value FROM json_each(?2))
    ORDER BY wait_until LIMIT 1
  )
);

-- name: completed_steps
SELECT name, "index", output, error FROM durably_steps WHERE run_id = ?1 AND status = 'completed';

-- name: replayed_logs
-- The run's stored log lines that a resumed attempt logs again, counted per step (NULL: lines
-- outside steps): every line outside steps, and the lines of each step's unfinished attempt.
-- A completed step replays from its checkpoint without calling its function; an attempt that
-- ended (a row of the step written after the line: failed, cancelled, or retried) is over,
-- and the step's next attempt writes lines of its own. Ids are ULIDs: one process makes them
-- in order, and an attempt's row is written after its lines.
SELECT l.step_name AS step, COUNT(*) AS n FROM durably_logs l
WHERE l.run_id = ?1
  AND (l.step_name IS NULL OR NOT EXISTS (
    SELECT 1 FROM durably_steps s
    WHERE s.run_id = ?1 AND s.name = l.step_name AND (s.status = 'completed' OR s.id > l.id)))
GROUP BY l.step_name;

-- name: pending_retries
-- Steps whose latest row is a failed attempt with a next one due (retry_at): that attempt
-- number and due time are where a resumed run picks the step up.
SELECT s.name, s.attempt, s.retry_at FROM durably_steps s
WHERE s.run_id = ?1 AND s.retry_at IS NOT NULL
  AND NOT EXISTS (
    SELECT 1 FROM durably_steps t WHERE t.run_id = ?1 AND t.name = s.name AND t.id > s.id);

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
-- ?11: the attempt (from 1); ?12: when a failed attempt's next one is due (NULL: none).
-- The fence is the run_id's value: the run's id while the lease holds, else NULL, and OR
-- IGNORE skips a row whose NOT NULL column is NULL (no row changed: the caller's refusal).
-- Not INSERT ... SELECT ... WHERE: with triggers on the table (migration 6) SQLite runs that
-- through a temporary table, about 1.7 us of a 17 us checkpoint. OR IGNORE leaves the
-- completed-step triggers' RAISE(ABORT) an error, and the engine's values are never NULL
-- otherwise (nor is a ULID id ever repeated).
INSERT OR IGNORE INTO durably_steps (
  id, run_id, name, "index", status, output, error, started_at, completed_at, attempt, retry_at
)
VALUES (
  ?1,
  (SELECT id FROM durably_runs WHERE id = ?2 AND status = 'leased' AND lease_generation = ?10),
  ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?11, ?12
);

-- name: insert_kept_step
-- A kept step of a group (the batched mode) after the group's first, fenced, insert_step in
-- the same transaction, which holds the write lock: the lease that fence saw still holds.
-- So no fence (a look-up of the run) per kept step.
-- Same parameters as insert_step (?10, the generation, is not needed here).
INSERT INTO durably_steps (
  id, run_id, name, "index", status, output, error, started_at, completed_at, attempt, retry_at
)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?11, ?12);

-- name: insert_kept_steps
-- The kept steps of a group after its first, as insert_kept_step (no fence: see there), all in
-- one statement: ?1 is a JSON array of step rows, each the array of insert_step's parameters
-- ([id, run_id, name, index, status, output, error, started_at, completed_at, generation,
-- attempt, retry_at]), inserted in array order. For a connection that binds each value
-- dearly (Connection.json_rows: the browser's bridge converts and binds every value in JS):
-- one text crosses instead of 12 values a step, and SQLite reads it. The output, itself JSON
-- text, is a JSON string there (->> gives its text back as it was).
INSERT INTO durably_steps (
  id, run_id, name, "index", status, output, error, started_at, completed_at, attempt, retry_at
)
SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5,
  value ->> 6, value ->> 7, value ->> 8, value ->> 10, value ->> 11
FROM json_each(?1);

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
    lease_owner = NULL, lease_expires_at = NULL, completed_at = ?5, updated_at = ?5,
    wait_kind = NULL, wait_name = NULL, wait_until = NULL, wait_started_at = NULL
WHERE id = ?1 AND status = 'leased' AND lease_generation = ?2;

-- name: fail_run
UPDATE durably_runs
SET status = 'failed', error = ?3, progress = COALESCE(?4, progress),
    current_step_index = COALESCE(?6, current_step_index),
    completed_step_count = COALESCE(?7, completed_step_count),
    lease_owner = NULL, lease_expires_at = NULL, completed_at = ?5, updated_at = ?5,
    wait_kind = NULL, wait_name = NULL, wait_until = NULL, wait_started_at = NULL
WHERE id = ?1 AND status = 'leased' AND lease_generation = ?2;

-- name: suspend_run
-- The lease holder puts its run to wait (fenced): no lease, no worker slot, until wait_until
-- (?5) or, for a signal wait, the signal. A signal of that name already there (sent while the
-- run was leased) makes it claimable at once (?10): no signal is missed between a check and
-- this write.
UPDATE durably_runs
SET status = 'waiting', lease_owner = NULL, lease_expires_at = NULL,
    wait_kind = ?3, wait_name = ?4, wait_started_at = ?6,
    wait_until = CASE WHEN ?3 = 'signal' AND EXISTS (
        SELECT 1 FROM durably_signals g
        WHERE g.run_id = ?1 AND g.name = ?4 AND g.received_at IS NULL) THEN ?10 ELSE ?5 END,
    progress = COALESCE(?7, progress),
    current_step_index = COALESCE(?8, current_step_index),
    completed_step_count = COALESCE(?9, completed_step_count),
    updated_at = ?10
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
    completed_at = ?2, updated_at = ?2,
    wait_kind = NULL, wait_name = NULL, wait_until = NULL, wait_started_at = NULL
WHERE id = ?1 AND status IN ('pending', 'leased', 'waiting')
RETURNING *;

-- name: retry_run
UPDATE durably_runs
SET status = 'pending', output = NULL, error = NULL, lease_owner = NULL,
    lease_expires_at = NULL, completed_at = NULL, updated_at = ?2,
    wait_kind = NULL, wait_name = NULL, wait_until = NULL, wait_started_at = NULL
WHERE id = ?1 AND status IN ('failed', 'cancelled')
RETURNING *;

-- name: insert_signal
INSERT INTO durably_signals (run_id, name, payload, created_at) VALUES (?1, ?2, ?3, ?4);

-- name: find_signal
SELECT payload, created_at, received_at FROM durably_signals WHERE run_id = ?1 AND name = ?2;

-- name: wake_for_signal
-- A run waiting for the signal ?2 becomes claimable now (?3).
UPDATE durably_runs SET wait_until = ?3, updated_at = ?3
WHERE id = ?1 AND status = 'waiting' AND wait_kind = 'signal' AND wait_name = ?2
RETURNING *;

-- name: receive_signal
UPDATE durably_signals SET received_at = ?3
WHERE run_id = ?1 AND name = ?2 AND received_at IS NULL
RETURNING payload;

-- name: completed_step
SELECT completed_at FROM durably_steps WHERE run_id = ?1 AND name = ?2 AND status = 'completed';

-- name: delete_signals
DELETE FROM durably_signals WHERE run_id = ?1;

-- name: unknown_job_runs
-- Runs no worker seems to know: of a job not in ?1, claimable since before ?2 (pending since
-- then, and past a delayed start; waiting with a wait that ended then; or leased with a lease
-- that expired then), and no live lease on any run of their job (a worker that knows the job
-- is busy with it). "Since" is updated_at for a pending run: only enqueue, retry and release
-- set it while a run is pending.
SELECT * FROM durably_runs r
WHERE r.job_name NOT IN (SELECT value FROM json_each(?1))
  AND ((r.status = 'pending' AND max(r.updated_at, COALESCE(r.wait_until, '')) <= ?2)
       OR (r.status = 'waiting' AND r.wait_until <= ?2)
       OR (r.status = 'leased' AND r.lease_expires_at <= ?2))
  AND NOT EXISTS (
    SELECT 1 FROM durably_runs o
    WHERE o.job_name = r.job_name AND o.status = 'leased' AND o.lease_expires_at > ?3)
ORDER BY r.created_at, r.id LIMIT ?4;

-- name: flag_unknown_job
-- The warning is kept in the run's error (shown by run-info, runs and the HTTP API) without
-- touching updated_at, which dates the wait; a claim or a cancel clears it.
UPDATE durably_runs SET error = ?2
WHERE id = ?1 AND status IN ('pending', 'leased', 'waiting') AND error IS NULL;

-- name: fail_unknown_job
UPDATE durably_runs
SET status = 'failed', error = ?2, lease_owner = NULL, lease_expires_at = NULL,
    completed_at = ?4, updated_at = ?4,
    wait_kind = NULL, wait_name = NULL, wait_until = NULL, wait_started_at = NULL
WHERE id = ?1
  AND ((status = 'pending' AND max(updated_at, COALESCE(wait_until, '')) <= ?3)
       OR (status = 'waiting' AND wait_until <= ?3)
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

-- name: put_schedule
-- A new schedule, or a changed one (its next tick recomputed: ?7); an unchanged definition
-- keeps its next tick, so a worker that declares its schedules at every start catches up.
INSERT INTO durably_schedules (
  name, job_name, cron, timezone, input, catch_up, next_tick_at, created_at, updated_at
) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
ON CONFLICT (name) DO UPDATE SET
  job_name = excluded.job_name, cron = excluded.cron, timezone = excluded.timezone,
  input = excluded.input, catch_up = excluded.catch_up, next_tick_at = excluded.next_tick_at,
  updated_at = excluded.updated_at
WHERE (job_name, cron, timezone, input, catch_up)
  <> (excluded.job_name, excluded.cron, excluded.timezone, excluded.input, excluded.catch_up);

-- name: get_schedule
SELECT * FROM durably_schedules WHERE name = ?1;

-- name: get_schedules
SELECT * FROM durably_schedules ORDER BY name;

-- name: delete_schedule
DELETE FROM durably_schedules WHERE name = ?1 RETURNING name;

-- name: advance_schedule
-- Compare-and-set: only the worker that still sees the tick ?2 due moves the schedule on.
UPDATE durably_schedules SET next_tick_at = ?3, last_tick_at = ?4, updated_at = ?5
WHERE name = ?1 AND next_tick_at = ?2
RETURNING name;
