// @ts-check
/**
 * System `raw_node`: the commit floor on Node, one INSERT + COMMIT per row in a plain
 * better-sqlite3 loop. Same settings as the engines (WAL, the stated synchronous, SQLite's
 * default wal_autocheckpoint). Only the `throughput` workload: runs × steps rows, each an
 * INSERT in autocommit mode (its own transaction, committed by SQLite: the cheapest durable
 * commit), each holding the JSON of one benchmark step value.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { emit, now, openDb, parseCommon, peakRssMb, stepValue } from './common.mjs'

const args = parseCommon(['throughput'])
const rows = args.params.runs * args.params.steps
const db = openDb(join(args.dir, 'bench.db'), args.synchronous)
db.exec('CREATE TABLE steps (id INTEGER PRIMARY KEY, name TEXT NOT NULL, output TEXT)')
const insert = db.prepare('INSERT INTO steps (name, output) VALUES (?, ?)')
const started = now()
for (let i = 0; i < rows; i++) insert.run(`step-${i}`, JSON.stringify(stepValue(i)))
const wall = (now() - started) / 1000
const sqlite = /** @type {{v: string}} */ (db.prepare('select sqlite_version() as v').get()).v
db.close()
const version = JSON.parse(
  readFileSync(new URL('./node_modules/better-sqlite3/package.json', import.meta.url), 'utf8'),
).version
emit(
  args,
  'raw_node',
  { steps_per_s: rows / wall, wall_s: wall, rss_peak_mb: peakRssMb() },
  {
    node: process.versions.node,
    'better-sqlite3': version,
    sqlite,
    settings: `WAL, synchronous=${args.synchronous}, wal_autocheckpoint=1000 (SQLite default)`,
  },
)
