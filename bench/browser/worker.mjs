// @ts-check
/**
 * The durably_web benchmark worker: the product worker's boot (_durably/runtime/worker.mjs:
 * sqlite-wasm, then the OPFS VFS with the same retries, then Pyodide from _durably/vendor with
 * pydantic and the durably-web wheel, then the bridge), after which it runs one workload of
 * bench_jobs.py in this worker, or the raw commit floor: a plain JS loop through the same bridge.
 *
 * Served at /bench/worker.mjs by bench/systems/chromium.py's server, in the demo's built site
 * (so ../_durably/ is the site's runtime, client and vendored files). The page sends
 * {type: "run", config: {workload, synchronous, params}}; the worker posts
 * {type: "stage", name, t} (t: epoch ms), then {type: "result", metrics, info} or
 * {type: "error", message}; in the resume workload's first phase
 * {type: "crashing"} when it reaches the step where the page is to terminate it.
 */
import sqlite3InitModule from "../_durably/vendor/sqlite-wasm/index.mjs";
import { configureSqlite, installVfs } from "../_durably/runtime/opfs.mjs";
import { bootPyodide } from "../_durably/runtime/runtime.mjs";
import { createBridge } from "../_durably/runtime/sqlite_bridge.mjs";

const VENDOR = new URL("../_durably/vendor/", import.meta.url).href;
configureSqlite(); // as the product worker: no "opfs"/"opfs-wl" VFS beside the pool
/** Python modules written into HOME: bench_jobs.py imports bench_workloads.py (bench/systems/). */
const MODULES = ["bench_jobs.py", "bench_workloads.py"];
const HOME = "/home/pyodide/bench";
const epoch = () => performance.timeOrigin + performance.now();
/** @param {string} name */
const stage = (name) => postMessage({ type: "stage", name, t: epoch() });

/** @type {(config: any) => void} */
let receiveConfig = () => {};
const configReady = new Promise((resolve) => (receiveConfig = resolve));
self.onmessage = (event) => {
  if (event.data?.type === "run") receiveConfig(event.data.config);
};

/**
 * The floor: `rows` INSERTs in autocommit mode (each its own transaction, committed by
 * SQLite), through the bridge the engine uses, with the engine's pragmas, into a fresh file.
 * @param {any} bridge @param {string[]} pragmas @param {number} rows
 */
function rawFloor(bridge, pragmas, rows) {
  const handle = bridge.open("/floor.db");
  for (const pragma of pragmas) bridge.exec(handle, pragma);
  bridge.exec(handle, "CREATE TABLE steps (id INTEGER PRIMARY KEY, name TEXT NOT NULL, output TEXT)");
  const insert = bridge.prepare(handle, "INSERT INTO steps (name, output) VALUES (?, ?)");
  stage("workload");
  const started = performance.now();
  for (let i = 0; i < rows; i++) bridge.run(handle, insert, `step-${i}`, JSON.stringify({ i, ok: true }));
  const wall = (performance.now() - started) / 1000;
  stage("workload-done");
  bridge.close(handle);
  return { steps_per_s: rows / wall, wall_s: wall };
}

/**
 * Probe (params.engine_sql; not a harness system): the engine's own fenced checkpoint INSERT
 * on the engine's schema, in a plain JS loop through the same bridge: the "same-SQL floor".
 * @param {any} bridge @param {any} bench @param {string[]} pragmas @param {string} sync @param {number} rows
 */
async function engineSqlFloor(bridge, bench, pragmas, sync, rows) {
  const setup = JSON.parse(await bench.engine_sql_setup(bridge, sync, "/sqlfloor.db"));
  const handle = bridge.open("/sqlfloor.db");
  for (const pragma of pragmas) bridge.exec(handle, pragma);
  const insert = bridge.prepare(handle, setup.sql);
  const id = (/** @type {number} */ i) => `01JBENCH${String(i).padStart(18, "0")}`;
  stage("workload");
  const started = performance.now();
  for (let i = 0; i < rows; i++) {
    const at = new Date().toISOString();
    const output = JSON.stringify({ i, ok: true });
    bridge.run(handle, insert, id(i), setup.run_id, `step-${i}`, i, "completed", output, undefined, at, at, setup.generation);
  }
  const wall = (performance.now() - started) / 1000;
  stage("workload-done");
  bridge.close(handle);
  return { steps_per_s: rows / wall, wall_s: wall };
}

async function main() {
  const sqlite3 = /** @type {any} */ (await sqlite3InitModule());
  stage("sqlite");
  const { pool, attempt } = await installVfs(sqlite3); // with the product's free files
  stage("vfs");
  const config = await configReady;
  const sources = MODULES.map((name) => fetch(new URL(`./${name}`, import.meta.url)).then((response) => response.text()));
  const pyodide = await bootPyodide(VENDOR);
  stage("pyodide");
  pyodide.FS.mkdirTree(HOME);
  for (const [i, name] of MODULES.entries()) pyodide.FS.writeFile(`${HOME}/${name}`, await sources[i]);
  pyodide.runPython(`import sys\nif ${JSON.stringify(HOME)} not in sys.path: sys.path.insert(0, ${JSON.stringify(HOME)})`);
  const bench = pyodide.pyimport("bench_jobs");
  const bridge = createBridge(sqlite3, (filename) => new pool.OpfsSAHPoolDb(filename));
  // Read by the benchmark driver through CDP: every WebAssembly memory of this worker.
  /** @type {any} */ (globalThis).__benchWasmBytes = () =>
    pyodide._module.HEAP8.buffer.byteLength + sqlite3.wasm.heap8u().byteLength;
  pyodide.registerJsModule("durably_sqlite", bridge);
  const pragmas = bench.pragmas(config.synchronous).toJs();
  stage("ready");
  /** @type {Record<string, any>} */
  let metrics;
  const rows = config.params.runs * config.params.steps;
  if (config.workload === "floor" && config.params.engine_sql) {
    metrics = await engineSqlFloor(bridge, bench, pragmas, config.synchronous, rows);
  } else if (config.workload === "floor") {
    metrics = rawFloor(bridge, pragmas, rows);
  } else {
    const hooks = {
      stage,
      crashing: () => postMessage({ type: "crashing", t: epoch() }),
    };
    metrics = JSON.parse(await bench.run_workload(bridge, JSON.stringify(config), hooks));
  }
  const versions = pyodide.runPython(
    "import sys, importlib.metadata as m; f'{sys.version.split()[0]} {m.version(\"durably-web\")}'",
  );
  const [python, version] = String(versions).split(" ");
  const info = {
    version,
    pyodide: pyodide.version,
    python,
    sqlite: sqlite3.version.libVersion,
    settings: `OPFS (opfs-sahpool VFS), ${pragmas.join("; ")}; wal_autocheckpoint=1000 (SQLite default)`,
    vfs_attempts: attempt,
    pyodide_wasm_mb: pyodide._module.HEAP8.buffer.byteLength / 2 ** 20,
    sqlite_wasm_mb: sqlite3.wasm.heap8u().byteLength / 2 ** 20,
  };
  postMessage({ type: "result", metrics, info });
}

main().catch((error) => postMessage({ type: "error", message: `${error?.message ?? error}\n${error?.stack ?? ""}` }));
