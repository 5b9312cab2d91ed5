// @ts-check
/**
 * System `upstream`: upstream Durably 0.15.0 on Node with better-sqlite3 12, file database,
 * WAL and the stated synchronous (set on the better-sqlite3 connection before the Kysely
 * SqliteDialect is created). Upstream's own API and defaults: createDurably({dialect, jobs}),
 * defineJob, durably.jobs.x.trigger, events; pollingIntervalMs 1000, maxConcurrentRuns 1,
 * leaseMs 30000. The workloads mirror bench/systems/durably_cpython.py one for one; the
 * harness (bench/run.py) runs this once per workload and reads the one JSON line it prints.
 */
import { createDurably, defineJob } from '@coji/durably'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SqliteDialect } from 'kysely'
import { z } from 'zod'
import {
  EXPIRED,
  bulkInsertRuns,
  emit,
  now,
  openDb,
  parseCommon,
  peakRssMb,
  percentiles,
  stepValue,
} from './common.mjs'

const SYSTEM = 'upstream'
let crashAt = -1 // set in the crash phase of `resume`: the step that kills the process

const benchSteps = defineJob({
  name: 'bench-steps',
  input: z.object({ steps: z.number() }),
  run: async (step, input) => {
    for (let i = 0; i < input.steps; i++) {
      await step.run(`step-${i}`, () => {
        if (i === crashAt) process.kill(process.pid, 'SIGKILL')
        return stepValue(i)
      })
    }
    return input.steps
  },
})

/** @param {import('./common.mjs').Args} args */
function engine(args) {
  const db = openDb(join(args.dir, 'bench.db'), args.synchronous)
  const durably = createDurably({
    dialect: new SqliteDialect({ database: db }),
    jobs: { bench: benchSteps },
  })
  return { durably, db }
}

/** @param {import('./common.mjs').Args} args */
function info(args) {
  const pkg = (/** @type {string} */ name) =>
    JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), 'utf8'))
      .version
  const probe = openDb(':memory:', args.synchronous)
  const sqlite = probe.prepare('select sqlite_version() as v').get()
  probe.close()
  return {
    version: pkg('@coji/durably'),
    node: process.versions.node,
    'better-sqlite3': pkg('better-sqlite3'),
    kysely: pkg('kysely'),
    zod: pkg('zod'),
    sqlite: /** @type {any} */ (sqlite).v,
    settings: `WAL, synchronous=${args.synchronous}, wal_autocheckpoint=1000 (SQLite default)`,
    polling_interval_s: 1.0,
    max_concurrent_runs: 1,
  }
}

/** @param {import('./common.mjs').Args} args */
async function throughput(args) {
  const { runs, steps } = args.params
  const { durably } = engine(args)
  await durably.migrate()
  let completed = 0
  let failed = 0
  /** @type {(t: number) => void} */
  let resolve = () => {}
  const allDone = new Promise((r) => (resolve = r))
  const onEnd = () => {
    if (completed + failed === runs) resolve(now())
  }
  durably.on('run:complete', () => (completed++, onEnd()))
  durably.on('run:fail', () => (failed++, onEnd()))
  const started = now()
  for (let r = 0; r < runs; r++) await durably.jobs.bench.trigger({ steps })
  durably.start()
  const ended = await allDone
  await durably.stop()
  await durably.db.destroy()
  if (failed) throw new Error(`${failed} runs failed`)
  const wall = (ended - started) / 1000
  return { steps_per_s: (runs * steps) / wall, wall_s: wall, rss_peak_mb: peakRssMb() }
}

/** @param {import('./common.mjs').Args} args */
async function latency(args) {
  const samples = args.params.samples
  const gapMs = args.params.gap_ms ?? 20
  const { durably } = engine(args)
  await durably.init()
  /** @type {{start?: number, resolve?: (t: number) => void}} */
  const state = {}
  durably.on('run:leased', () => {
    if (state.start === undefined) state.start = now()
  })
  durably.on('run:complete', () => state.resolve?.(now()))
  let seed = 1
  const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647) // Park-Miller
  const toStart = []
  const toComplete = []
  const triggerCall = []
  for (let i = 0; i < samples + 2; i++) {
    // the first two warm up
    await new Promise((r) => setTimeout(r, random() * gapMs))
    state.start = undefined
    const done = new Promise((r) => (state.resolve = r))
    const t0 = now()
    await durably.jobs.bench.trigger({ steps: 1 })
    const returned = now()
    const completed = /** @type {number} */ (await done)
    if (i >= 2) {
      triggerCall.push(returned - t0)
      toStart.push(/** @type {number} */ (state.start) - t0)
      toComplete.push(completed - t0)
    }
  }
  await durably.stop()
  await durably.db.destroy()
  const [startP50, startP95] = percentiles(toStart)
  const [completeP50, completeP95] = percentiles(toComplete)
  return {
    trigger_call_p50_ms: percentiles(triggerCall)[0],
    start_p50_ms: startP50,
    start_p95_ms: startP95,
    complete_p50_ms: completeP50,
    complete_p95_ms: completeP95,
  }
}

/** Child process: run the long job until it kills itself inside step `crash_after`. */
async function crashPhase(/** @type {import('./common.mjs').Args} */ args) {
  crashAt = args.params.crash_after
  const { durably } = engine(args)
  await durably.migrate()
  await durably.jobs.bench.trigger({ steps: args.params.steps })
  await durably.processOne()
  throw new Error('the crash phase did not crash')
}

/** @param {import('./common.mjs').Args} args */
async function resume(args) {
  const { steps, crash_after: crashAfter } = args.params
  const child = spawnSync(
    process.execPath,
    [
      fileURLToPath(import.meta.url),
      '--workload', args.workload,
      '--synchronous', args.synchronous,
      '--dir', args.dir,
      '--params', JSON.stringify(args.params),
      '--phase', 'crash',
    ],
    { encoding: 'utf8' },
  )
  if (child.signal !== 'SIGKILL') {
    throw new Error(`crash phase ended ${child.status ?? child.signal}: ${child.stderr.slice(-2000)}`)
  }
  const raw = openDb(join(args.dir, 'bench.db'), args.synchronous)
  const row = /** @type {{n: number}} */ (
    raw.prepare("SELECT COUNT(*) AS n FROM durably_steps WHERE status = 'completed'").get()
  )
  if (row.n !== crashAfter) throw new Error(`expected ${crashAfter} checkpoints, found ${row.n}`)
  raw.prepare("UPDATE durably_runs SET lease_expires_at = ? WHERE status = 'leased'").run(EXPIRED)
  raw.close()

  /** @type {{claimed?: number}} */
  const marks = {}
  const started = now()
  const { durably } = engine(args)
  const completed = new Promise((resolve, reject) => {
    durably.on('run:complete', () => resolve(now()))
    durably.on('run:fail', (e) => reject(new Error(e.error)))
  })
  durably.on('run:leased', () => {
    marks.claimed ??= now()
  })
  await durably.init()
  const ended = /** @type {number} */ (await completed)
  await durably.stop()
  await durably.db.destroy()
  return {
    resume_s: (ended - started) / 1000,
    claim_to_complete_s: (ended - /** @type {number} */ (marks.claimed)) / 1000,
    replayed_steps: crashAfter,
    new_steps: steps - crashAfter,
  }
}

/** @param {import('./common.mjs').Args} args */
async function queries(args) {
  const { runs, calls } = args.params
  const setup = engine(args)
  await setup.durably.migrate()
  bulkInsertRuns(setup.db, runs)
  await setup.durably.db.destroy()

  const { durably } = engine(args)
  await durably.migrate()
  /** @type {Record<string, object>} */
  const filters = { all: {}, status: { status: 'failed' }, label: { labels: { org: 'org-3' } } }
  /** @type {Record<string, number>} */
  const metrics = {}
  for (const [name, filter] of Object.entries(filters)) {
    const timings = []
    for (let i = 0; i < calls + 3; i++) {
      // the first three warm up
      const t0 = now()
      const found = await durably.getRuns({ ...filter, limit: 50 })
      const elapsed = now() - t0
      if (found.length !== 50) throw new Error(`getRuns returned ${found.length} runs, not 50`)
      if (i >= 3) timings.push(elapsed)
    }
    ;[metrics[`${name}_p50_ms`], metrics[`${name}_p95_ms`]] = percentiles(timings)
  }
  await durably.db.destroy()
  return metrics
}

/** @type {Record<string, (args: import('./common.mjs').Args) => Promise<Record<string, number>>>} */
const WORKLOADS = { throughput, latency, resume, queries }

const args = parseCommon(Object.keys(WORKLOADS))
if (args.phase === 'crash') {
  await crashPhase(args)
} else {
  const metrics = await WORKLOADS[args.workload](args)
  emit(args, SYSTEM, metrics, info(args))
}
// Kysely pools and the worker's timers are closed above; exit explicitly all the same so a
// stray timer in the library cannot keep the process (and the harness) waiting.
process.exit(0)
