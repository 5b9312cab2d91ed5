// @ts-check
/**
 * What the Node system scripts share with bench/systems/benchlib.py: the command line, the
 * one-line JSON result, percentiles, peak RSS, the queries data set (same formula as Python).
 */
import Database from 'better-sqlite3'
import { parseArgs } from 'node:util'

/** A lease expiry in the past, written to "expire" a crashed worker's lease. */
export const EXPIRED = '2000-01-01T00:00:00.000Z'
export const QUERY_JOB = 'bench-query'
const BASE_MS = Date.UTC(2026, 0, 1)

/**
 * @typedef {{workload: string, synchronous: 'FULL' | 'NORMAL', dir: string,
 *            params: Record<string, any>, phase: string}} Args
 */

/**
 * Parse `--workload --synchronous --dir --params [--phase]`.
 * @param {string[]} workloads
 * @returns {Args}
 */
export function parseCommon(workloads) {
  const { values } = parseArgs({
    options: {
      workload: { type: 'string' },
      synchronous: { type: 'string' },
      dir: { type: 'string' },
      params: { type: 'string', default: '{}' },
      phase: { type: 'string', default: 'measure' },
    },
  })
  const workload = String(values.workload)
  if (!workloads.includes(workload)) throw new Error(`unknown workload ${workload}`)
  const synchronous = values.synchronous === 'NORMAL' ? 'NORMAL' : 'FULL'
  if (values.synchronous !== synchronous) throw new Error('--synchronous must be FULL or NORMAL')
  if (!values.dir) throw new Error('--dir is required')
  return {
    workload,
    synchronous,
    dir: values.dir,
    params: JSON.parse(String(values.params)),
    phase: String(values.phase),
  }
}

/**
 * Open better-sqlite3 with the benchmark's durability settings (WAL + the stated synchronous).
 * @param {string} path
 * @param {string} synchronous
 */
export function openDb(path, synchronous) {
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.pragma(`synchronous = ${synchronous}`)
  return db
}

/**
 * Print the one result line the harness reads.
 * @param {Args} args
 * @param {string} system
 * @param {Record<string, number>} metrics
 * @param {Record<string, any>} info
 */
export function emit(args, system, metrics, info) {
  const line = {
    system,
    workload: args.workload,
    synchronous: args.synchronous,
    params: args.params,
    metrics,
    info,
  }
  process.stdout.write(JSON.stringify(line) + '\n')
}

/** @param {number} i */
export function stepValue(i) {
  return { i, ok: true }
}

/**
 * (p50, p95) of the samples; the median averages the middle pair, p95 is nearest-rank.
 * @param {number[]} samples
 * @returns {[number, number]}
 */
export function percentiles(samples) {
  const s = [...samples].sort((a, b) => a - b)
  const n = s.length
  const p50 = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
  return [p50, s[Math.max(0, Math.ceil(0.95 * n) - 1)]]
}

/** Peak resident set size of this process so far, in MiB (maxRSS is KiB). */
export function peakRssMb() {
  return process.resourceUsage().maxRSS / 1024
}

export function now() {
  return performance.now()
}

/** @param {number} ms */
function iso(ms) {
  return new Date(ms).toISOString()
}

/**
 * Insert `count` runs and their labels into upstream's schema in one transaction; the same
 * rows, in the same mix, as benchlib.dataset_rows in Python.
 * @param {import('better-sqlite3').Database} db
 * @param {number} count
 */
export function bulkInsertRuns(db, count) {
  const insertRun = db.prepare(
    `INSERT INTO durably_runs ("id", "job_name", "input", "status", "labels",
       "current_step_index", "completed_step_count", "output", "error", "started_at",
       "completed_at", "created_at", "updated_at") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
  )
  const insertLabel = db.prepare('INSERT INTO durably_run_labels (run_id, key, value) VALUES (?, ?, ?)')
  db.transaction(() => {
    for (let i = 0; i < count; i++) {
      const h = (i * 2654435761) % 4294967296 // exact: i * K < 2^53
      const bucket = h % 100
      const status = bucket < 5 ? 'failed' : bucket < 10 ? 'pending' : 'completed'
      const org = `org-${Math.floor(h / 256) % 10}`
      const id = `01BENCH${String(i).padStart(19, '0')}`
      const created = iso(BASE_MS + i * 1000)
      const done = status === 'pending' ? null : iso(BASE_MS + i * 1000 + 500)
      const steps = status === 'pending' ? 0 : 3
      insertRun.run(
        id,
        QUERY_JOB,
        JSON.stringify({ n: i }),
        status,
        JSON.stringify({ org }),
        steps,
        steps,
        status === 'completed' ? '{"ok":true}' : null,
        status === 'failed' ? 'boom' : null,
        done,
        done,
        created,
        done ?? created,
      )
      insertLabel.run(id, 'org', org)
    }
  })()
}
