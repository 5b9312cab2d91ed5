// @ts-check
/**
 * Test-only module worker: runs the engine's test suite (tests/pyodide/runner.py) on Pyodide
 * with every database on OPFS through the opfs-sahpool VFS and the real bridge.
 *
 * Served at /tests/ beside a built site (playwright_tests/site.py mounts it). Same boot order
 * as the site's _durably/runtime/worker.mjs: sqlite-wasm, then the VFS (before Pyodide:
 * installing it while Pyodide boots can hang createSyncAccessHandle()), then Pyodide from
 * _durably/vendor with pydantic and the durably-web wheel from our lock. The test inputs come
 * from ./assets/ (staged by the Playwright test into .build/test-assets, never part of the
 * product build): index.json, the pytest wheels, and tests.zip (the repository's tests/).
 *
 * Query string of the worker URL (the page passes its own): `backends` (comma-separated
 * names from BACKENDS in runner.py; default "opfs,opfs-full"), `k` (run only ids containing
 * it), `timeout` (seconds per test).
 *
 * Posts {type: "stage", name, ms}, {type: "test", name, index} as each test starts, then
 * {type: "done", summary: <JSON text>, marks, poolFiles} or {type: "error", message, stack}.
 */
import { bootPyodide } from "../_durably/runtime/runtime.mjs";
import { createBridge } from "../_durably/runtime/sqlite_bridge.mjs";
import sqlite3InitModule from "../_durably/vendor/sqlite-wasm/index.mjs";

const VENDOR = new URL("../_durably/vendor/", import.meta.url).href; // absolute: a relative lockFileURL fails here
const ASSETS = new URL("./assets/", import.meta.url).href;
const HOME = "/home/pyodide/durably"; // tests/ is unpacked here
const WHEELS = "/home/pyodide/test-wheels";
const POOL = { name: "durably-test-sahpool", directory: ".durably-test-sahpool" }; // not the app's pool
const CAPACITY = 16; // each test's database (+ journal) is deleted after it; trap: 6 by default

const params = new URL(self.location.href).searchParams;
const started = performance.now();
/** @type {Record<string, number>} */
const marks = {};
/** @param {string} name */
const stage = (name) => {
  marks[name] = Math.round(performance.now() - started);
  postMessage({ type: "stage", name, ms: marks[name] });
};

/** @param {string} url */
async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function main() {
  const sqlite3 = /** @type {any} */ (await sqlite3InitModule());
  const pool = await sqlite3.installOpfsSAHPoolVfs({
    ...POOL,
    clearOnInit: true, // a test pool: leftovers of an aborted run go
    forceReinitIfPreviouslyFailed: true,
    preserveOnInitFailure: true,
  });
  await pool.reserveMinimumCapacity(CAPACITY);
  stage("vfs");

  const index = fetch(`${ASSETS}index.json`).then((r) => r.json()); // in parallel with the boot
  const pyodide = await bootPyodide(VENDOR);
  stage("pyodide");

  const { wheels, tests } = await index;
  pyodide.FS.mkdirTree(WHEELS);
  await Promise.all(
    wheels.map(async (/** @type {string} */ name) => {
      pyodide.FS.writeFile(`${WHEELS}/${name}`, await fetchBytes(`${ASSETS}wheels/${name}`));
    }),
  );
  pyodide.FS.mkdirTree(HOME);
  pyodide.unpackArchive(await fetchBytes(`${ASSETS}${tests}`), "zip", { extractDir: HOME });
  stage("assets");

  const bridge = createBridge(sqlite3, (/** @type {string} */ filename) => new pool.OpfsSAHPoolDb(filename));
  pyodide.registerJsModule("durably_sqlite", bridge);
  let count = 0;
  const host = {
    /** @param {string} name */
    testStarted(name) {
      postMessage({ type: "test", name, index: count++ });
    },
    /** Remove a database and its journals from the pool. @param {string} filename */
    deleteDatabase(filename) {
      let deleted = 0;
      for (const suffix of ["", "-journal", "-wal", "-shm"]) {
        if (pool.unlink(filename + suffix)) deleted++;
      }
      return deleted;
    },
  };
  const runSuite = pyodide.runPython(`
import sys
sys.path.insert(0, ${JSON.stringify(HOME)})
from tests.pyodide.bootstrap import install_wheels
install_wheels(${JSON.stringify(WHEELS)})
from tests.pyodide.runner import run_suite
run_suite
`);
  stage("ready");
  const config = {
    root: HOME,
    backends: (params.get("backends") || "opfs,opfs-full").split(","),
    match: params.get("k"),
    timeout: Number(params.get("timeout") || 60),
  };
  const summary = await runSuite(bridge, host, JSON.stringify(config));
  runSuite.destroy();
  stage("done");
  postMessage({ type: "done", summary, marks, poolFiles: pool.getFileNames() });
}

main().catch((error) => postMessage({ type: "error", message: String(error?.message ?? error), stack: String(error?.stack ?? "") }));
