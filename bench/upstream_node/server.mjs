// @ts-check
/**
 * The baseline server of bench/server_load.py: upstream Durably 0.15.0's own HTTP/SSE handler,
 * `createDurablyHandler(durably)` (default options: sseThrottleMs 100, no auth), mounted on
 * Node's `node:http` server, engine worker in the same process (like `durably-web serve-api`).
 *
 *   node server.mjs --db FILE --port N [--synchronous NORMAL|FULL]
 *
 * The database is a file opened with better-sqlite3 in WAL mode with the stated synchronous
 * (default NORMAL, durably_web's default), before Kysely's SqliteDialect is created, as in
 * bench.mjs. The engine uses upstream's defaults (pollingIntervalMs 1000, maxConcurrentRuns 1,
 * leaseMs 30000). It serves the jobs of bench/systems/server_jobs.py, same names and steps.
 *
 * The handler speaks the fetch API (Request in, Response out); the adapter below turns an
 * IncomingMessage into a Request (body buffered, aborted when the client goes away), writes
 * a JSON answer in one piece, and streams an SSE body chunk by chunk, headers flushed at once
 * (a stream may not write anything for a while), cancelling the body's reader when the
 * client disconnects so the handler's subscriptions are released.
 */
import { createDurably, createDurablyHandler, defineJob } from '@coji/durably'
import { existsSync } from 'node:fs'
import http from 'node:http'
import { parseArgs } from 'node:util'
import { SqliteDialect } from 'kysely'
import { z } from 'zod'
import { openDb } from './common.mjs'

const GATE_POLL_MS = 5

const noop = defineJob({
  name: 'bench-noop',
  input: z.object({}),
  run: async (step) => step.run('noop', () => ({ ok: true })),
})

const sse = defineJob({
  name: 'bench-sse',
  input: z.object({ steps: z.number(), gate: z.string() }),
  run: async (step, input) => {
    await step.run('gate', async () => {
      while (!existsSync(input.gate)) await new Promise((r) => setTimeout(r, GATE_POLL_MS))
      return true
    })
    for (let i = 0; i < input.steps; i++) {
      await step.run(`step-${i}`, () => ({ i }))
      step.progress(i + 1, input.steps)
    }
    return input.steps
  },
})

const { values } = parseArgs({
  options: {
    db: { type: 'string' },
    port: { type: 'string' },
    synchronous: { type: 'string', default: 'NORMAL' },
  },
})
if (!values.db || !values.port) throw new Error('usage: server.mjs --db FILE --port N')
const synchronous = values.synchronous === 'FULL' ? 'FULL' : 'NORMAL'
if (values.synchronous !== synchronous) throw new Error('--synchronous must be FULL or NORMAL')
const port = Number(values.port)

const db = openDb(values.db, synchronous)
const durably = createDurably({
  dialect: new SqliteDialect({ database: db }),
  jobs: { noop, sse },
})
await durably.init() // migrate, then start the worker
const handler = createDurablyHandler(durably)

/**
 * Serve one request through the fetch-API handler.
 * @param {http.IncomingMessage} req
 * @param {http.ServerResponse} res
 */
async function serve(req, res) {
  const aborted = new AbortController()
  res.on('close', () => aborted.abort())
  const headers = new Headers()
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    headers.append(req.rawHeaders[i], req.rawHeaders[i + 1])
  }
  /** @type {RequestInit} */
  const init = { method: req.method, headers, signal: aborted.signal }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    const chunks = []
    for await (const chunk of req) chunks.push(chunk)
    init.body = Buffer.concat(chunks)
  }
  const request = new Request(`http://${req.headers.host ?? `127.0.0.1:${port}`}${req.url}`, init)
  const response = await handler.handle(request, '')
  const headersOut = Object.fromEntries(response.headers)
  if (!response.body || !response.headers.get('content-type')?.startsWith('text/event-stream')) {
    // JSON and errors: buffered, sent with a Content-Length in one write
    const body = Buffer.from(await response.arrayBuffer())
    res.writeHead(response.status, { ...headersOut, 'content-length': String(body.length) })
    res.end(body)
    return
  }
  res.writeHead(response.status, headersOut)
  res.flushHeaders()
  const reader = response.body.getReader()
  let gone = false
  res.on('close', () => {
    gone = true
    reader.cancel().catch(() => {})
  })
  while (!gone) {
    const { done, value } = await reader.read()
    if (done) break
    if (!res.write(value) && !gone) {
      await new Promise((resolve) => {
        res.once('drain', resolve)
        res.once('close', resolve)
      })
    }
  }
  if (!gone) res.end()
}

const server = http.createServer((req, res) => {
  serve(req, res).catch((error) => {
    console.error('server.mjs: request failed:', error)
    if (!res.headersSent) {
      res.writeHead(500, { 'content-type': 'text/plain' })
      res.end(String(error))
    } else {
      res.destroy()
    }
  })
})
server.listen(port, '127.0.0.1', () => {
  console.error(`upstream Durably handler at http://127.0.0.1:${port}/`)
})

const shutdown = () => {
  server.close()
  server.closeAllConnections()
  // Stop the worker, but never wait long: the harness has its measurements already.
  Promise.race([durably.stop(), new Promise((r) => setTimeout(r, 2000))]).finally(() =>
    process.exit(0),
  )
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
