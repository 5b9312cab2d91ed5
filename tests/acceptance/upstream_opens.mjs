// @ts-check
/**
 * Open a durably_web database in upstream Durably 0.15 on Node and use it as upstream would.
 *
 *   node upstream_opens.mjs DB_FILE
 *
 * Run from a copy beside a `node_modules` that is bench/upstream_node's (its npm ci pins
 * @coji/durably 0.15.0, kysely, zod and better-sqlite3). Upstream migrates (a no-op or its own steps), lists the runs, triggers and
 * processes a run of its own job `upstream-echo`, then processes until idle. Prints one JSON
 * line: the runs upstream saw before and after, by id, status and job.
 */
import { createDurably, defineJob } from '@coji/durably'
import Database from 'better-sqlite3'
import { SqliteDialect } from 'kysely'
import { z } from 'zod'

const [file] = process.argv.slice(2)
if (!file) throw new Error('usage: upstream_opens.mjs DB_FILE')

const echo = defineJob({
  name: 'upstream-echo',
  input: z.object({ n: z.number() }),
  run: async (/** @type {any} */ step, /** @type {{n: number}} */ input) =>
    step.run('echo', () => ({ n: input.n })),
})
const db = new Database(file)
db.pragma('journal_mode = WAL')
const durably = createDurably({ dialect: new SqliteDialect({ database: db }), jobs: { echo } })
await durably.migrate()
const summary = (/** @type {any[]} */ runs) =>
  runs.map((r) => ({ id: r.id, status: r.status, jobName: r.jobName })).sort((a, b) => (a.id < b.id ? -1 : 1))
const before = summary(await durably.getRuns())
const own = await durably.jobs.echo.trigger({ n: 7 })
let processed = 0
while (await durably.processOne()) processed += 1
const after = summary(await durably.getRuns())
const mine = await durably.getRun(own.id)
await durably.stop()
await durably.db.destroy()
console.log(JSON.stringify({ before, after, processed, own: { status: mine?.status, output: mine?.output } }))
