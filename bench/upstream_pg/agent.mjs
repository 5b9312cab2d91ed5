// @ts-check
/**
 * The `upstream_pg` agent: upstream Durably 0.15.0 on Node over PostgreSQL, kysely's
 * PostgresDialect on a `pg` Pool, one role per process. Spawned by bench/systems/pg_suite.py,
 * which documents the protocol (roles; JSON lines on stdin and stdout). Upstream's own API
 * and defaults: createDurably({dialect, jobs}), defineJob, durably.jobs.bench.trigger, events
 * (`run:leased`, `run:complete`, `run:fail`); pollingIntervalMs 1000, leaseMs 30000; the
 * worker's maxConcurrentRuns is the workload's concurrency. The Pool's size is pg's default
 * (10), as the other systems' pools.
 *
 *   node agent.mjs --role client|worker|crash|resume --url URL [--concurrency C] [--params J]
 */
import { createDurably, defineJob } from '@coji/durably'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { PostgresDialect } from 'kysely'
import pg from 'pg'
import { z } from 'zod'

const { values } = parseArgs({
  options: {
    role: { type: 'string' },
    url: { type: 'string' },
    concurrency: { type: 'string', default: '1' },
    params: { type: 'string', default: '{}' },
  },
})
const role = String(values.role)
const params = JSON.parse(String(values.params))
let crashAt = -1 // set by the crash role: the step that kills the process

const benchSteps = defineJob({
  name: 'bench-steps',
  input: z.object({ steps: z.number(), sleep_ms: z.number().optional() }),
  run: async (step, input) => {
    const sleepMs = input.sleep_ms ?? 0
    for (let i = 0; i < input.steps; i++) {
      await step.run(`step-${i}`, async () => {
        if (sleepMs) await new Promise((resolve) => setTimeout(resolve, sleepMs))
        if (i === crashAt) process.kill(process.pid, 'SIGKILL')
        return { i, ok: true }
      })
    }
    return input.steps
  },
})

/** Build the engine; each role does (resume inside its clock) and destroys it at its end. */
function engine() {
  return createDurably({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: String(values.url) }) }),
    jobs: { bench: benchSteps },
    maxConcurrentRuns: Number(values.concurrency),
  })
}

/** This machine's wall clock in seconds, sub-millisecond (Date.now() has whole ms). */
function wallClock() {
  return (performance.timeOrigin + performance.now()) / 1000
}

/** @param {Record<string, any>} message */
function say(message) {
  process.stdout.write(JSON.stringify(message) + '\n')
}

/** @param {string} kind @param {string} runId @param {Record<string, any>} [extra] */
function event(kind, runId, extra = {}) {
  say({ event: kind, run: runId, t: wallClock(), ...extra })
}

function info() {
  const pkg = (/** @type {string} */ name) =>
    JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), 'utf8'))
      .version
  return { version: pkg('@coji/durably'), node: process.versions.node, pg: pkg('pg'), kysely: pkg('kysely') }
}

/** Each command line on stdin, parsed; the iteration ends when stdin closes. */
async function* commands() {
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim()) yield JSON.parse(line)
  }
}

async function client() {
  const durably = engine()
  await durably.migrate()
  say({ ready: info() })
  for await (const command of commands()) {
    const t0 = wallClock()
    const ids = []
    for (let i = 0; i < command.count; i++) ids.push((await durably.jobs.bench.trigger(command.input)).id)
    say({ triggered: ids, t0, t1: wallClock() })
  }
  await durably.db.destroy()
}

async function worker() {
  const durably = engine()
  durably.on('run:leased', (e) => event('start', e.runId))
  durably.on('run:complete', (e) => event('complete', e.runId))
  durably.on('run:fail', (e) => event('fail', e.runId, { error: e.error }))
  await durably.migrate()
  say({ ready: info() })
  for await (const command of commands()) {
    if (command.own_runs) throw new Error('upstream workers run triggered runs, not their own')
    durably.start()
  }
  await durably.stop()
  await durably.db.destroy()
  say({ bye: { rss_peak_mb: process.resourceUsage().maxRSS / 1024 } })
}

async function crash() {
  crashAt = params.crash_after
  const durably = engine()
  await durably.migrate()
  await durably.jobs.bench.trigger({ steps: params.steps })
  await durably.processOne()
  throw new Error('the crash phase did not crash')
}

async function resume() {
  const { steps, crash_after: crashAfter } = params
  /** @type {{claimed?: number}} */
  const marks = {}
  const started = performance.now()
  const durably = engine()
  const completed = new Promise((resolve, reject) => {
    durably.on('run:complete', () => resolve(performance.now()))
    durably.on('run:fail', (e) => reject(new Error(e.error)))
  })
  durably.on('run:leased', () => {
    marks.claimed ??= performance.now()
  })
  await durably.init()
  const ended = /** @type {number} */ (await completed)
  await durably.stop()
  await durably.db.destroy()
  say({
    result: {
      resume_s: (ended - started) / 1000,
      claim_to_complete_s: (ended - /** @type {number} */ (marks.claimed)) / 1000,
      replayed_steps: crashAfter,
      new_steps: steps - crashAfter,
    },
    info: info(),
  })
}

/** @type {Record<string, () => Promise<void>>} */
const ROLES = { client, worker, crash, resume }
if (!(role in ROLES)) throw new Error(`unknown role ${role}`)
await ROLES[role]()
// The pool and the worker's timers are closed above; exit explicitly all the same so a stray
// timer in the library cannot keep the process (and the harness) waiting.
process.exit(0)
