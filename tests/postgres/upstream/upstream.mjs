// @ts-check
/**
 * Upstream Durably 0.15 on Node over PostgreSQL, driven by tests/postgres/test_upstream.py.
 *
 *   node upstream.mjs migrate URL
 *   node upstream.mjs trigger URL '[{"job": "compat_steps", "input": {...}, "options": {...}}]'
 *   node upstream.mjs work URL RUN_ID...      run a worker until those runs are terminal
 *   node upstream.mjs read URL RUN_ID...      the runs and their steps as upstream reads them
 *
 * Each command prints one JSON value on stdout. The jobs mirror the Python side's
 * (tests/postgres/test_upstream.py): same names, same steps, outputs saying who ran them.
 */
import { createDurably, defineJob } from '@coji/durably'
import { PostgresDialect } from 'kysely'
import pg from 'pg'
import { z } from 'zod'

const [command, url, ...rest] = process.argv.slice(2)

const compatSteps = defineJob({
  name: 'compat-steps',
  input: z.object({ n: z.number(), tag: z.string() }),
  run: async (step, input) => {
    let total = 0
    for (let i = 0; i < input.n; i++) {
      total += await step.run(`step-${i}`, () => i * i)
      step.progress(i + 1, input.n)
    }
    return { total, tag: input.tag, by: 'node' }
  },
})

const compatSlow = defineJob({
  name: 'compat-slow',
  input: z.object({ tag: z.string(), holdMs: z.number() }),
  run: async (step, input) => {
    await step.run('first', () => 'node')
    await step.run('hold', () => new Promise((resolve) => setTimeout(() => resolve('held'), input.holdMs)))
    await step.run('last', () => 'node')
    return { tag: input.tag, by: 'node' }
  },
})

const pool = new pg.Pool({ connectionString: url, max: 4 })
const durably = createDurably({
  dialect: new PostgresDialect({ pool }),
  jobs: { compat_steps: compatSteps, compat_slow: compatSlow },
  pollingIntervalMs: 50,
  leaseRenewIntervalMs: 60_000,
  leaseMs: 120_000,
  preserveSteps: true,
})

/** @param {string[]} ids */
async function read(ids) {
  const runs = []
  for (const id of ids) {
    const run = await durably.storage.getRun(id)
    const steps = run ? await durably.storage.getSteps(id) : []
    runs.push({ run, steps })
  }
  return runs
}

/** @param {string[]} ids */
async function allTerminal(ids) {
  for (const id of ids) {
    const run = await durably.storage.getRun(id)
    if (!run || !['completed', 'failed', 'cancelled'].includes(run.status)) return false
  }
  return true
}

async function main() {
  await durably.migrate()
  if (command === 'migrate') return { migrated: true }
  if (command === 'trigger') {
    const ids = []
    for (const { job, input, options } of JSON.parse(rest[0])) {
      const run = await durably.jobs[job].trigger(input, options)
      ids.push(run.id)
    }
    return ids
  }
  if (command === 'work') {
    const errors = []
    durably.on('worker:error', (event) => errors.push(event.error))
    durably.start()
    const deadline = Date.now() + 60_000
    while (!(await allTerminal(rest))) {
      if (Date.now() > deadline) throw new Error(`runs not terminal in 60 s: ${errors.join('; ')}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    await durably.stop()
    return { runs: await read(rest), errors }
  }
  if (command === 'read') return await read(rest)
  throw new Error(`unknown command ${command}`)
}

try {
  process.stdout.write(JSON.stringify(await main()) + '\n')
} finally {
  await durably.db.destroy()
}
