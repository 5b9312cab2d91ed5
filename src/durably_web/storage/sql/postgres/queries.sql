-- Every query the PostgreSQL store runs. Each starts at a "-- name: <name>" line and runs to the
-- next. Parameters are psycopg's named placeholders, %(name)s.
--
-- Writes by a lease holder are fenced by "status = 'leased' AND lease_generation = %(generation)s"
-- and are single statements (writable CTEs), so each is atomic and one round trip, and a retry
-- after a lost connection is harmless: inserted rows carry ids made before the first attempt and
-- skip a row that is already there (ON CONFLICT (id) DO NOTHING).
--
-- {logs} stands for the "logs" fragment below: the pending log lines, written only if the
-- statement's "fence" CTE let the write through. Each such query also exists without them (the
-- "no_logs" fragment in place of {logs}), sent when there are no lines: most checkpoints have
-- none, and a statement without seven empty arrays to send and unnest costs less.
--
-- {lease} stands for the "lease" fragment below: what a claim sets on the run it leases (the
-- claim of the next run and the lease of a chosen one say it once). {claimable} and
-- {claim_order} are the claim's conditions and order, shared by claim_candidate and claim_fast.
--
-- Notifications (delivered when the transaction commits): %(ready_channel)s carries the job name
-- of a run that became claimable, %(run_channel)s the id of a run whose state changed; each
-- after %(origin)s and a space, the sending store's token, so a store ignores its own.

-- name: logs
logs AS (
  INSERT INTO durably_logs (id, run_id, step_name, level, message, data, created_at)
  SELECT l.id, l.run_id, l.step_name, l.level, l.message, l.data, l.created_at
  FROM unnest(%(log_ids)s::text[], %(log_run_ids)s::text[], %(log_steps)s::text[],
              %(log_levels)s::text[], %(log_messages)s::text[], %(log_data)s::text[],
              %(log_times)s::text[])
       AS l(id, run_id, step_name, level, message, data, created_at)
  WHERE EXISTS (SELECT 1 FROM fence)
  ON CONFLICT (id) DO NOTHING
)

-- name: no_logs
no_logs AS (SELECT 1)

-- name: lease
SET status = 'leased',
      lease_owner = %(owner)s,
      lease_expires_at = %(expires)s,
      lease_generation = lease_generation + 1,
      error = NULL,
      started_at = COALESCE(started_at, %(now)s),
      updated_at = %(now)s,
      wait_until = CASE WHEN wait_kind IS NULL THEN NULL ELSE wait_until END

-- name: claimable
-- The runs a claim may take (see claim_candidate), as conditions on "r".
((r.status = 'pending' AND (r.wait_until IS NULL OR r.wait_until <= %(now)s))
   OR (r.status = 'waiting' AND r.wait_until <= %(now)s)
   OR (r.status = 'leased' AND r.lease_expires_at IS NOT NULL
       AND r.lease_expires_at <= %(now)s))
  AND r.job_name = ANY(%(jobs)s::text[])
  AND (%(run_id)s::text IS NULL OR r.id = %(run_id)s::text)
  AND (r.concurrency_key IS NULL OR NOT EXISTS (
    SELECT 1 FROM durably_runs a
    WHERE a.concurrency_key = r.concurrency_key AND a.id <> r.id AND a.status = 'leased'
      AND a.lease_expires_at IS NOT NULL AND a.lease_expires_at > %(now)s))

-- name: claim_order
-- Ready since, oldest first; migration 4's index is on exactly this expression.
CASE WHEN r.status = 'leased' THEN r.created_at
     ELSE COALESCE(r.wait_until, r.created_at) END, r.id

-- name: schema_versions_exists
-- Read from pg_class with the statement's snapshot, not with to_regclass: to_regclass looks the
-- name up in this backend's catalog cache, which can still say "no such table" after the
-- migration lock was taken while another process created it (then the migration ran twice and
-- its version's insert failed: seen with three workers starting at once).
SELECT EXISTS (
  SELECT 1 FROM pg_catalog.pg_class c
  WHERE c.relname = 'durably_schema_versions' AND pg_catalog.pg_table_is_visible(c.oid)
) AS exists;

-- name: migration_lock
-- Two-key advisory locks live in another key space than the one-key locks upstream takes on
-- hashtext(concurrency_key): the two never collide.
SELECT pg_advisory_xact_lock(1685418593, 1);

-- name: current_version
SELECT COALESCE(MAX(version), 0) AS version FROM durably_schema_versions;

-- name: record_version
INSERT INTO durably_schema_versions (version, applied_at) VALUES (%(version)s, %(applied_at)s);

-- name: find_by_idempotency_key
SELECT * FROM durably_runs WHERE job_name = %(job_name)s AND idempotency_key = %(key)s;

-- name: find_pending_by_concurrency_key
SELECT * FROM durably_runs
WHERE job_name = %(job_name)s AND concurrency_key = %(key)s AND status = 'pending'
ORDER BY created_at, id LIMIT 1;

-- name: insert_run
-- A conflict on either unique index (idempotency key; one pending run per concurrency key) with a
-- run another transaction committed meanwhile inserts nothing: the store then looks again.
-- run_at: a delayed run's start (trigger's delay), NULL to start at once.
INSERT INTO durably_runs (
  id, job_name, input, status, idempotency_key, concurrency_key, labels,
  current_step_index, completed_step_count, lease_generation, created_at, updated_at, wait_until
) VALUES (
  %(id)s, %(job_name)s, %(input)s, 'pending', %(idempotency_key)s, %(concurrency_key)s,
  %(labels)s, 0, 0, 0, %(now)s, %(now)s, %(run_at)s
)
ON CONFLICT DO NOTHING
RETURNING *;

-- name: insert_labels
INSERT INTO durably_run_labels (run_id, key, value)
SELECT %(run_id)s, l.key, l.value FROM unnest(%(keys)s::text[], %(values)s::text[]) AS l(key, value);

-- name: notify_created
-- Runs a trigger created: their jobs have claimable runs, and the runs changed (were created).
SELECT (SELECT count(pg_notify(%(ready_channel)s, %(origin)s::text || ' ' || j.name))
        FROM unnest(%(jobs)s::text[]) AS j(name)) AS jobs,
       (SELECT count(pg_notify(%(run_channel)s, %(origin)s::text || ' ' || r.id))
        FROM unnest(%(ids)s::text[]) AS r(id)) AS runs;

-- name: claim_candidate
-- Upstream's claim (ADR-0001): the claimable run ready longest, locked with SKIP LOCKED so
-- concurrent claimers take different rows. Claimable: pending (a delayed one once its start
-- came), waiting with its wait over (wait_until passed, or a signal set it to the time it
-- arrived), or leased with an expired lease (its worker is gone); of a job this worker knows;
-- its concurrency key neither skipped by this claim nor held by a live lease. Ready since:
-- created_at, or wait_until for a run that waited or was delayed.
SELECT id, concurrency_key FROM durably_runs r
WHERE {claimable}
  AND (r.concurrency_key IS NULL OR NOT (r.concurrency_key = ANY(%(skip)s::text[])))
ORDER BY {claim_order}
FOR UPDATE SKIP LOCKED
LIMIT 1;

-- name: claim_fast
-- The same candidate as claim_candidate (without skipped keys), leased in the same statement
-- when it has no concurrency key: one round trip for most claims. One row always comes back:
-- the leased run's columns (id NULL when nothing was leased) and how many candidates were
-- found; a keyed candidate is left to the claim transaction.
WITH candidate AS (
  SELECT id, concurrency_key FROM durably_runs r
  WHERE {claimable}
  ORDER BY {claim_order}
  FOR UPDATE SKIP LOCKED
  LIMIT 1
), leased AS (
  UPDATE durably_runs
  {lease}
  FROM candidate
  WHERE durably_runs.id = candidate.id AND candidate.concurrency_key IS NULL
  RETURNING durably_runs.*
)
SELECT leased.*, (SELECT count(*) FROM candidate) AS candidates,
       CASE WHEN leased.id IS NOT NULL
            THEN pg_notify(%(run_channel)s, %(origin)s::text || ' ' || leased.id) END AS notified
FROM (SELECT 1) AS one LEFT JOIN leased ON TRUE;

-- name: concurrency_lock
-- The lock upstream's claim takes on the key, so upstream's workers and this engine exclude each
-- other; but tried, not waited for: a claimer that skips a key keeps its lock until it commits,
-- so two claimers waiting on each other's keys would deadlock. A key another claimer is
-- deciding right now is skipped by this claim.
SELECT pg_try_advisory_xact_lock(hashtext(%(key)s)) AS locked;

-- name: concurrency_holder
SELECT 1 AS held FROM durably_runs
WHERE concurrency_key = %(key)s AND id <> %(id)s AND status = 'leased'
  AND lease_expires_at IS NOT NULL AND lease_expires_at > %(now)s
LIMIT 1;

-- name: lease_run
WITH leased AS (
  UPDATE durably_runs
  {lease}
  WHERE id = %(id)s
  RETURNING *
)
SELECT leased.*, pg_notify(%(run_channel)s, %(origin)s::text || ' ' || id) AS notified FROM leased;

-- name: completed_steps
SELECT name, "index", output, error FROM durably_steps
WHERE run_id = %(run_id)s AND status = 'completed';

-- name: replayed_logs
-- As the SQLite query of that name: per step (NULL: outside steps), the lines a resumed attempt
-- logs again: every line outside steps, and the lines of each step's unfinished attempt. Ids
-- are ULIDs, so "a row of the step written after the line" compares ids (COLLATE "C": byte
-- order, as ULIDs sort, whatever the database's collation).
SELECT l.step_name AS step, COUNT(*) AS n FROM durably_logs l
WHERE l.run_id = %(run_id)s
  AND (l.step_name IS NULL OR NOT EXISTS (
    SELECT 1 FROM durably_steps s
    WHERE s.run_id = %(run_id)s AND s.name = l.step_name
      AND (s.status = 'completed' OR s.id COLLATE "C" > l.id COLLATE "C")))
GROUP BY l.step_name;

-- name: pending_retries
-- Steps whose latest row is a failed attempt with a next one due (retry_at).
SELECT s.name, s.attempt, s.retry_at FROM durably_steps s
WHERE s.run_id = %(run_id)s AND s.retry_at IS NOT NULL
  AND NOT EXISTS (
    SELECT 1 FROM durably_steps t
    WHERE t.run_id = %(run_id)s AND t.name = s.name AND t.id COLLATE "C" > s.id COLLATE "C");

-- name: next_wake
-- The earliest time after now at which a run of these jobs becomes claimable: the end of a
-- wait, or a delayed run's start. The worker's own timer sleeps until then.
SELECT MIN(wait_until) AS due FROM durably_runs
WHERE status IN ('waiting', 'pending') AND wait_until > %(now)s
  AND job_name = ANY(%(jobs)s::text[]);

-- name: run_state
SELECT status, lease_generation FROM durably_runs WHERE id = %(run_id)s;

-- name: step_exists
SELECT 1 AS found FROM durably_steps WHERE id = %(id)s;

-- name: write_step
-- FOR SHARE holds the run row until commit: a claim (which updates the row) waits for this
-- checkpoint, so the next holder's replay sees it, and a checkpoint never lands after a reclaim.
WITH fence AS (
  SELECT id FROM durably_runs
  WHERE id = %(run_id)s AND status = 'leased' AND lease_generation = %(generation)s
  FOR SHARE
), step AS (
  INSERT INTO durably_steps (
    id, run_id, name, "index", status, output, error, started_at, completed_at, attempt, retry_at
  )
  SELECT %(id)s, fence.id, %(name)s, %(index)s, %(status)s, %(output)s, %(error)s,
         %(started_at)s, %(now)s, %(attempt)s, %(retry_at)s
  FROM fence
  ON CONFLICT (id) DO NOTHING
  RETURNING id
), {logs}
SELECT EXISTS (SELECT 1 FROM fence) AS fenced, EXISTS (SELECT 1 FROM step) AS written;

-- name: touch_run
-- Progress and step counters ride along lazily (with the next flush or the outcome).
WITH fence AS (
  UPDATE durably_runs
  SET progress = COALESCE(%(progress)s, progress),
      current_step_index = COALESCE(%(step_index)s, current_step_index),
      completed_step_count = COALESCE(%(step_count)s, completed_step_count),
      updated_at = %(now)s
  WHERE id = %(run_id)s AND status = 'leased' AND lease_generation = %(generation)s
  RETURNING id
), {logs}
SELECT id, CASE WHEN %(progress)s::text IS NOT NULL
                THEN pg_notify(%(run_channel)s, %(origin)s::text || ' ' || id) END
FROM fence;

-- name: renew_lease
UPDATE durably_runs SET lease_expires_at = %(expires)s, updated_at = %(now)s
WHERE id = %(run_id)s AND status = 'leased' AND lease_generation = %(generation)s;

-- name: complete_run
WITH fence AS (
  UPDATE durably_runs
  SET status = 'completed', output = %(output)s, error = NULL,
      progress = COALESCE(%(progress)s, progress),
      current_step_index = COALESCE(%(step_index)s, current_step_index),
      completed_step_count = COALESCE(%(step_count)s, completed_step_count),
      lease_owner = NULL, lease_expires_at = NULL, completed_at = %(now)s, updated_at = %(now)s,
      wait_kind = NULL, wait_name = NULL, wait_until = NULL, wait_started_at = NULL
  WHERE id = %(run_id)s AND status = 'leased' AND lease_generation = %(generation)s
  RETURNING id
), steps_gone AS (
  DELETE FROM durably_steps WHERE %(delete_steps)s AND run_id IN (SELECT id FROM fence)
), logs_gone AS (
  DELETE FROM durably_logs WHERE %(delete_steps)s AND run_id IN (SELECT id FROM fence)
), signals_gone AS (
  DELETE FROM durably_signals WHERE %(delete_steps)s AND run_id IN (SELECT id FROM fence)
), {logs}
SELECT id, pg_notify(%(run_channel)s, %(origin)s::text || ' ' || id) FROM fence;

-- name: fail_run
WITH fence AS (
  UPDATE durably_runs
  SET status = 'failed', error = %(error)s,
      progress = COALESCE(%(progress)s, progress),
      current_step_index = COALESCE(%(step_index)s, current_step_index),
      completed_step_count = COALESCE(%(step_count)s, completed_step_count),
      lease_owner = NULL, lease_expires_at = NULL, completed_at = %(now)s, updated_at = %(now)s,
      wait_kind = NULL, wait_name = NULL, wait_until = NULL, wait_started_at = NULL
  WHERE id = %(run_id)s AND status = 'leased' AND lease_generation = %(generation)s
  RETURNING id
), {logs}
SELECT id, pg_notify(%(run_channel)s, %(origin)s::text || ' ' || id) FROM fence;

-- name: release_lease
-- Give an interrupted run back: pending again, unless another run of its job already waits
-- under the same concurrency key (one pending run per key); then an expired lease, which the
-- next claim takes just the same. The advisory lock on the key orders this against claims.
WITH fence AS (
  UPDATE durably_runs
  SET status = CASE WHEN %(keep_leased)s THEN 'leased' ELSE 'pending' END,
      lease_expires_at = CASE WHEN %(keep_leased)s THEN %(now)s END,
      lease_owner = NULL,
      progress = COALESCE(%(progress)s, progress),
      current_step_index = COALESCE(%(step_index)s, current_step_index),
      completed_step_count = COALESCE(%(step_count)s, completed_step_count),
      updated_at = %(now)s
  WHERE id = %(run_id)s AND status = 'leased' AND lease_generation = %(generation)s
  RETURNING id, job_name
), {logs}
SELECT id, pg_notify(%(run_channel)s, %(origin)s::text || ' ' || id),
       pg_notify(%(ready_channel)s, %(origin)s::text || ' ' || job_name)
FROM fence;

-- name: pending_with_same_key
SELECT 1 AS found FROM durably_runs p, durably_runs r
WHERE r.id = %(run_id)s AND r.concurrency_key IS NOT NULL AND p.job_name = r.job_name
  AND p.concurrency_key = r.concurrency_key AND p.status = 'pending' AND p.id <> r.id;

-- name: expire_leases
WITH expired AS (
  UPDATE durably_runs SET lease_expires_at = %(now)s, updated_at = %(now)s
  WHERE status = 'leased' AND (lease_expires_at IS NULL OR lease_expires_at > %(now)s)
  RETURNING id, job_name
)
SELECT id, pg_notify(%(ready_channel)s, %(origin)s::text || ' ' || job_name) FROM expired;

-- name: cancel_run
WITH cancelled AS (
  UPDATE durably_runs
  SET status = 'cancelled', lease_owner = NULL, lease_expires_at = NULL, error = NULL,
      completed_at = %(now)s, updated_at = %(now)s,
      wait_kind = NULL, wait_name = NULL, wait_until = NULL, wait_started_at = NULL
  WHERE id = %(run_id)s AND status IN ('pending', 'leased', 'waiting')
  RETURNING *
)
SELECT cancelled.*, pg_notify(%(run_channel)s, %(origin)s::text || ' ' || id) AS notified FROM cancelled;

-- name: retry_run
WITH retried AS (
  UPDATE durably_runs
  SET status = 'pending', output = NULL, error = NULL, lease_owner = NULL,
      lease_expires_at = NULL, completed_at = NULL, updated_at = %(now)s,
      wait_kind = NULL, wait_name = NULL, wait_until = NULL, wait_started_at = NULL
  WHERE id = %(run_id)s AND status IN ('failed', 'cancelled')
  RETURNING *
)
SELECT retried.*, pg_notify(%(run_channel)s, %(origin)s::text || ' ' || id) AS notified,
       pg_notify(%(ready_channel)s, %(origin)s::text || ' ' || job_name) AS ready
FROM retried;

-- name: unknown_job_runs
-- Runs no worker seems to know: of a job not in %(known)s, claimable since before %(since)s
-- (pending since then and past a delayed start, waiting with a wait that ended then, or leased
-- with a lease that expired then), and no live lease on any run of their job. "Waiting since" is updated_at for a pending run: only enqueue, retry and
-- release set it while a run is pending.
SELECT * FROM durably_runs r
WHERE NOT (r.job_name = ANY(%(known)s::text[]))
  AND ((r.status = 'pending' AND GREATEST(r.updated_at, COALESCE(r.wait_until, '')) <= %(since)s)
       OR (r.status = 'waiting' AND r.wait_until <= %(since)s)
       OR (r.status = 'leased' AND r.lease_expires_at <= %(since)s))
  AND NOT EXISTS (
    SELECT 1 FROM durably_runs o
    WHERE o.job_name = r.job_name AND o.status = 'leased' AND o.lease_expires_at > %(now)s)
ORDER BY r.created_at, r.id LIMIT %(limit)s;

-- name: flag_unknown_job
-- The warning is kept in the run's error without touching updated_at, which dates the wait; a
-- claim or a cancel clears it.
UPDATE durably_runs SET error = %(warning)s
WHERE id = %(run_id)s AND status IN ('pending', 'leased', 'waiting') AND error IS NULL;

-- name: fail_unknown_job
WITH failed AS (
  UPDATE durably_runs
  SET status = 'failed', error = %(error)s, lease_owner = NULL, lease_expires_at = NULL,
      completed_at = %(now)s, updated_at = %(now)s,
      wait_kind = NULL, wait_name = NULL, wait_until = NULL, wait_started_at = NULL
  WHERE id = %(run_id)s
    AND ((status = 'pending' AND GREATEST(updated_at, COALESCE(wait_until, '')) <= %(since)s)
         OR (status = 'waiting' AND wait_until <= %(since)s)
         OR (status = 'leased' AND lease_expires_at <= %(since)s))
    AND NOT EXISTS (
      SELECT 1 FROM durably_runs o
      WHERE o.job_name = durably_runs.job_name AND o.status = 'leased'
        AND o.lease_expires_at > %(now)s)
  RETURNING *
)
SELECT failed.*, pg_notify(%(run_channel)s, %(origin)s::text || ' ' || id) AS notified FROM failed;

-- name: get_run
SELECT * FROM durably_runs WHERE id = %(run_id)s;

-- name: lock_run
SELECT * FROM durably_runs WHERE id = %(run_id)s FOR UPDATE;

-- name: list_runs
-- The filters placeholder is replaced by the filter_* fragments below joined with AND (or TRUE); their
-- positional parameters come first, then limit (NULL: no limit) and offset.
SELECT * FROM durably_runs r WHERE {filters}
ORDER BY r.created_at DESC, r.id DESC LIMIT %s OFFSET %s;

-- name: filter_status
r.status = %s

-- name: filter_statuses
r.status = ANY(%s::text[])

-- name: filter_job
r.job_name = %s

-- name: filter_jobs
r.job_name = ANY(%s::text[])

-- name: filter_label
EXISTS (SELECT 1 FROM durably_run_labels l WHERE l.run_id = r.id AND l.key = %s AND l.value = %s)

-- name: get_steps
SELECT * FROM durably_steps WHERE run_id = %(run_id)s ORDER BY "index", started_at, id;

-- name: get_logs
SELECT * FROM durably_logs WHERE run_id = %(run_id)s ORDER BY created_at, id;

-- name: purge_candidates
SELECT id FROM durably_runs
WHERE status IN ('completed', 'failed', 'cancelled') AND completed_at < %(before)s
ORDER BY completed_at LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: delete_runs
-- Cascade by hand, as upstream does (its schema has no foreign keys).
WITH steps_gone AS (DELETE FROM durably_steps WHERE run_id = ANY(%(ids)s::text[])),
     logs_gone AS (DELETE FROM durably_logs WHERE run_id = ANY(%(ids)s::text[])),
     labels_gone AS (DELETE FROM durably_run_labels WHERE run_id = ANY(%(ids)s::text[])),
     signals_gone AS (DELETE FROM durably_signals WHERE run_id = ANY(%(ids)s::text[])),
     runs_gone AS (DELETE FROM durably_runs WHERE id = ANY(%(ids)s::text[]) RETURNING id)
SELECT id, pg_notify(%(run_channel)s, %(origin)s::text || ' ' || id) FROM runs_gone;

-- name: suspend_run
-- The lease holder puts its run to wait (fenced): no lease, no worker slot, until wait_until
-- or, for a signal wait, the signal. A signal of that name already there makes it claimable at
-- once. Other workers hear of it (ready: they look at their next wake-up again).
WITH fence AS (
  UPDATE durably_runs
  SET status = 'waiting', lease_owner = NULL, lease_expires_at = NULL,
      wait_kind = %(kind)s, wait_name = %(wait_name)s, wait_started_at = %(since)s,
      wait_until = CASE WHEN %(kind)s = 'signal' AND EXISTS (
          SELECT 1 FROM durably_signals g
          WHERE g.run_id = %(run_id)s AND g.name = %(wait_name)s AND g.received_at IS NULL)
        THEN %(now)s ELSE %(until)s END,
      progress = COALESCE(%(progress)s, progress),
      current_step_index = COALESCE(%(step_index)s, current_step_index),
      completed_step_count = COALESCE(%(step_count)s, completed_step_count),
      updated_at = %(now)s
  WHERE id = %(run_id)s AND status = 'leased' AND lease_generation = %(generation)s
  RETURNING id, job_name, wait_until
), {logs}
SELECT id, pg_notify(%(run_channel)s, %(origin)s::text || ' ' || id),
       CASE WHEN wait_until IS NOT NULL
            THEN pg_notify(%(ready_channel)s, %(origin)s::text || ' ' || job_name) END
FROM fence;

-- name: lock_leased_run
-- await_signal's fence: the run row locked for the transaction, if this lease still holds it.
SELECT id FROM durably_runs
WHERE id = %(run_id)s AND status = 'leased' AND lease_generation = %(generation)s
FOR UPDATE;

-- name: receive_signal
UPDATE durably_signals SET received_at = %(now)s
WHERE run_id = %(run_id)s AND name = %(name)s AND received_at IS NULL
RETURNING payload;

-- name: insert_signal
INSERT INTO durably_signals (run_id, name, payload, created_at)
VALUES (%(run_id)s, %(name)s, %(payload)s, %(now)s);

-- name: find_signal
SELECT payload, created_at, received_at FROM durably_signals
WHERE run_id = %(run_id)s AND name = %(name)s;

-- name: completed_step
SELECT completed_at FROM durably_steps
WHERE run_id = %(run_id)s AND name = %(name)s AND status = 'completed';

-- name: wake_for_signal
-- A run waiting for the signal becomes claimable now; its job's workers hear of it at commit.
WITH woken AS (
  UPDATE durably_runs SET wait_until = %(now)s, updated_at = %(now)s
  WHERE id = %(run_id)s AND status = 'waiting' AND wait_kind = 'signal' AND wait_name = %(name)s
  RETURNING *
)
SELECT woken.*, pg_notify(%(run_channel)s, %(origin)s::text || ' ' || id) AS notified,
       pg_notify(%(ready_channel)s, %(origin)s::text || ' ' || job_name) AS ready
FROM woken;

-- name: put_schedule
-- A new schedule, or a changed one (its next tick recomputed); an unchanged definition keeps
-- its next tick, so a worker that declares its schedules at every start catches up.
INSERT INTO durably_schedules (
  name, job_name, cron, timezone, input, catch_up, next_tick_at, created_at, updated_at
) VALUES (
  %(name)s, %(job_name)s, %(cron)s, %(timezone)s, %(input)s, %(catch_up)s, %(next_tick)s,
  %(now)s, %(now)s
)
ON CONFLICT (name) DO UPDATE SET
  job_name = excluded.job_name, cron = excluded.cron, timezone = excluded.timezone,
  input = excluded.input, catch_up = excluded.catch_up, next_tick_at = excluded.next_tick_at,
  updated_at = excluded.updated_at
WHERE (durably_schedules.job_name, durably_schedules.cron, durably_schedules.timezone,
       durably_schedules.input, durably_schedules.catch_up)
  IS DISTINCT FROM (excluded.job_name, excluded.cron, excluded.timezone, excluded.input,
                    excluded.catch_up);

-- name: notify_schedule
-- Workers of the job look at their next tick again.
SELECT pg_notify(%(ready_channel)s, %(origin)s::text || ' ' || %(job_name)s::text) AS notified;

-- name: get_schedule
SELECT * FROM durably_schedules WHERE name = %(name)s;

-- name: get_schedules
SELECT * FROM durably_schedules ORDER BY name COLLATE "C";

-- name: delete_schedule
DELETE FROM durably_schedules WHERE name = %(name)s RETURNING name;

-- name: next_schedule_tick
SELECT MIN(next_tick_at) AS due FROM durably_schedules WHERE job_name = ANY(%(jobs)s::text[]);

-- name: advance_schedule
-- Compare-and-set: only the worker that still sees the tick due moves the schedule on. A
-- concurrent one waits for the row, then finds next_tick_at changed and updates nothing.
UPDATE durably_schedules
SET next_tick_at = %(next_tick)s, last_tick_at = %(last_tick)s, updated_at = %(now)s
WHERE name = %(name)s AND next_tick_at = %(tick)s
RETURNING name;
