// @ts-check
/**
 * Upstream Durably 0.15.0 in Chromium, as its docs set it up for browsers: SQLocal on OPFS
 * through its Kysely dialect (`new SQLocalKysely(...).dialect`), `createDurably({dialect,
 * jobs})`, `defineJob`, `durably.jobs.x.trigger`, events (`run:leased`, `run:complete`),
 * `getRuns`. Durably and Kysely run on this page's main thread; SQLocal runs sqlite-wasm in
 * its own worker (sqlocal-worker.js, on sqlite-wasm's "opfs" VFS, which needs
 * cross-origin isolation), so every query is a message round trip to that worker.
 *
 * Bundled by build.mjs into dist/ (bench/systems/chromium.py serves this directory with
 * COOP/COEP). The driver sets `window.__benchConfig = {workload, synchronous, params}`
 * before load and reads console lines `__bench__ <JSON>`: `{type: "stage", name}`,
 * `{type: "crashing"}` (resume, first load: the job now hangs inside step `crash_after` and
 * the driver navigates away, killing the page and SQLocal's worker), then
 * `{type: "done", metrics, info}` or `{type: "error", message}`. The workloads mirror
 * bench/upstream_node/bench.mjs one for one; `floor` is the raw SQLocal commit rate (one
 * INSERT per transaction, autocommit) and `start` is navigation → `init()` done.
 */
import { createDurably, defineJob } from "@coji/durably";
import { SQLocalKysely } from "sqlocal/kysely";
import { z } from "zod";

const config = /** @type {any} */ (window).__benchConfig;
const phase = new URL(location.href).searchParams.get("phase");
const DATABASE = "bench.sqlite3";
const EXPIRED = "2000-01-01T00:00:00.000Z";
/** @param {Record<string, any>} message */
const report = (message) => console.log(`__bench__ ${JSON.stringify(message)}`);
/** @param {string} name */
const stage = (name) => report({ type: "stage", name });
const now = () => performance.now();
let crashAt = -1;

const benchSteps = defineJob({
  name: "bench-steps",
  input: z.object({ steps: z.number() }),
  run: async (step, input) => {
    for (let i = 0; i < input.steps; i++) {
      await step.run(`step-${i}`, () => {
        if (i === crashAt) {
          report({ type: "crashing" });
          return new Promise(() => {}); // never checkpointed: the driver kills the page now
        }
        return { i, ok: true };
      });
    }
    return input.steps;
  },
});

/** The same settings as every other system: WAL (exclusive locking: no shared memory on OPFS) and the stated synchronous. */
function pragmas() {
  const sync = config.synchronous === "FULL" ? "FULL" : "NORMAL";
  return ["PRAGMA locking_mode = EXCLUSIVE", "PRAGMA journal_mode = WAL", `PRAGMA synchronous = ${sync}`];
}

/** A SQLocal client on OPFS whose worker is our bundle of SQLocal's worker. @param {string} path */
function openClient(path) {
  return new SQLocalKysely({
    databasePath: path,
    processor: new Worker(new URL("./sqlocal-worker.js", import.meta.url), { type: "module" }),
    onInit: () => pragmas().map((sql) => ({ sql, params: [] })),
  });
}

/** @param {any} client */
function engine(client) {
  return createDurably({ dialect: client.dialect, jobs: { bench: benchSteps } });
}

/** @param {any} client */
async function settings(client) {
  const [row] = await client.sql("SELECT sqlite_version() AS v");
  const [mode] = await client.sql("PRAGMA journal_mode");
  const [sync] = await client.sql("PRAGMA synchronous");
  const [locking] = await client.sql("PRAGMA locking_mode");
  return {
    sqlite: row.v,
    settings: `OPFS ("opfs" VFS via SQLocal), journal_mode=${mode.journal_mode}, locking_mode=${locking.locking_mode}, synchronous=${sync.synchronous}; wal_autocheckpoint=1000 (SQLite default)`,
  };
}

/** @param {any} client */
async function throughput(client) {
  const { runs, steps } = config.params;
  const durably = engine(client);
  await durably.migrate();
  let completed = 0;
  let failed = 0;
  /** @type {(t: number) => void} */
  let resolve = () => {};
  const allDone = new Promise((r) => (resolve = r));
  const onEnd = () => {
    if (completed + failed === runs) resolve(now());
  };
  durably.on("run:complete", () => (completed++, onEnd()));
  durably.on("run:fail", () => (failed++, onEnd()));
  stage("workload");
  const started = now();
  for (let r = 0; r < runs; r++) await durably.jobs.bench.trigger({ steps });
  durably.start();
  const ended = /** @type {number} */ (await allDone);
  stage("workload-done");
  await durably.stop();
  if (failed) throw new Error(`${failed} runs failed`);
  const wall = (ended - started) / 1000;
  return { steps_per_s: (runs * steps) / wall, wall_s: wall };
}

/** @param {number[]} samples @returns {[number, number]} */
function percentiles(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  const p50 = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  return [p50, s[Math.max(0, Math.ceil(0.95 * n) - 1)]];
}

/** @param {any} client */
async function latency(client) {
  const samples = config.params.samples;
  const gapMs = config.params.gap_ms ?? 20;
  const durably = engine(client);
  await durably.init();
  /** @type {{start?: number, resolve?: (t: number) => void}} */
  const state = {};
  durably.on("run:leased", () => {
    if (state.start === undefined) state.start = now();
  });
  durably.on("run:complete", () => state.resolve?.(now()));
  let seed = 1;
  const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647; // Park-Miller
  const toStart = [];
  const toComplete = [];
  const triggerCall = [];
  for (let i = 0; i < samples + 2; i++) {
    await new Promise((r) => setTimeout(r, random() * gapMs)); // the first two warm up
    state.start = undefined;
    const done = new Promise((r) => (state.resolve = r));
    const t0 = now();
    await durably.jobs.bench.trigger({ steps: 1 });
    const returned = now();
    const completed = /** @type {number} */ (await done);
    if (i >= 2) {
      triggerCall.push(returned - t0);
      toStart.push(/** @type {number} */ (state.start) - t0);
      toComplete.push(completed - t0);
    }
  }
  await durably.stop();
  const [startP50, startP95] = percentiles(toStart);
  const [completeP50, completeP95] = percentiles(toComplete);
  return {
    trigger_call_p50_ms: percentiles(triggerCall)[0],
    start_p50_ms: startP50,
    start_p95_ms: startP95,
    complete_p50_ms: completeP50,
    complete_p95_ms: completeP95,
  };
}

/** Resume, first load: run the long job until it hangs inside step `crash_after`. @param {any} client */
async function crash(client) {
  crashAt = config.params.crash_after;
  const durably = engine(client);
  await durably.migrate();
  await durably.jobs.bench.trigger({ steps: config.params.steps });
  await durably.processOne();
  throw new Error("the crash phase did not crash");
}

/** Resume, second load: check the checkpoints, expire the lease in SQL, then time it. @param {any} client */
async function resume(client) {
  const { steps, crash_after: crashAfter } = config.params;
  const [row] = await client.sql("SELECT COUNT(*) AS n FROM durably_steps WHERE status = 'completed'");
  if (Number(row.n) !== crashAfter) throw new Error(`expected ${crashAfter} checkpoints, found ${row.n}`);
  await client.sql("UPDATE durably_runs SET lease_expires_at = ? WHERE status = 'leased'", EXPIRED);
  /** @type {{claimed?: number}} */
  const marks = {};
  stage("workload");
  const started = now();
  const durably = engine(client);
  const completed = new Promise((resolve, reject) => {
    durably.on("run:complete", () => resolve(now()));
    durably.on("run:fail", (e) => reject(new Error(e.error)));
  });
  durably.on("run:leased", () => {
    marks.claimed ??= now();
  });
  await durably.init();
  const ended = /** @type {number} */ (await completed);
  await durably.stop();
  return {
    resume_s: (ended - started) / 1000,
    claim_to_complete_s: (ended - /** @type {number} */ (marks.claimed)) / 1000,
    fresh_to_complete_s: ended / 1000,
    replayed_steps: crashAfter,
    new_steps: steps - crashAfter,
  };
}

/** @param {any} client */
async function queries(client) {
  const { runs, calls } = config.params;
  const durably = engine(client);
  await durably.migrate();
  const t0 = now();
  await client.batch(() => config.params.dataset_sql.map((/** @type {string} */ sql) => ({ sql, params: [] })));
  const insertS = (now() - t0) / 1000;
  const summary = Object.values((await client.sql(config.params.summary_sql))[0]).map((v) =>
    typeof v === "bigint" ? Number(v) : v,
  );
  /** @type {Record<string, object>} */
  const filters = { all: {}, status: { status: "failed" }, label: { labels: { org: "org-3" } } };
  /** @type {Record<string, any>} */
  const metrics = { bulk_insert_s: insertS, summary };
  for (const [name, filter] of Object.entries(filters)) {
    const timings = [];
    for (let i = 0; i < calls + 3; i++) {
      const t0 = now(); // the first three warm up
      const found = await durably.getRuns({ ...filter, limit: 50 });
      const elapsed = now() - t0;
      if (found.length !== 50) throw new Error(`getRuns returned ${found.length} runs, not 50`);
      if (i >= 3) timings.push(elapsed);
    }
    [metrics[`${name}_p50_ms`], metrics[`${name}_p95_ms`]] = percentiles(timings);
  }
  return metrics;
}

/** The floor: one INSERT per transaction (autocommit), each a round trip to SQLocal's worker. @param {any} client */
async function floor(client) {
  const rows = config.params.runs * config.params.steps;
  await client.sql("CREATE TABLE steps (id INTEGER PRIMARY KEY, name TEXT NOT NULL, output TEXT)");
  stage("workload");
  const started = now();
  for (let i = 0; i < rows; i++) {
    await client.sql("INSERT INTO steps (name, output) VALUES (?, ?)", `step-${i}`, JSON.stringify({ i, ok: true }));
  }
  const wall = (now() - started) / 1000;
  stage("workload-done");
  return { steps_per_s: rows / wall, wall_s: wall };
}

/** Navigation → a started engine on a migrated OPFS database. */
async function start() {
  const client = openClient(DATABASE);
  const durably = engine(client);
  await durably.init();
  return { ready_ms: now() };
}

/** @type {Record<string, (client: any) => Promise<Record<string, any>>>} */
const WORKLOADS = { throughput, latency, queries, floor };

async function main() {
  if (config.workload === "start") {
    report({ type: "done", metrics: await start(), info: {} });
    return;
  }
  const client = openClient(config.workload === "floor" ? "floor.sqlite3" : DATABASE);
  const info = await settings(client);
  let metrics;
  if (config.workload === "resume") metrics = await (phase === "resume" ? resume : crash)(client);
  else metrics = await WORKLOADS[config.workload](client);
  report({ type: "done", metrics, info });
}

main().catch((error) => report({ type: "error", message: String(error?.stack ?? error) }));
