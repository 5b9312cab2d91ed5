// @ts-check
/**
 * The durably_web engine worker (a module worker: Pyodide needs one).
 *
 * Boot order matters: the OPFS VFS is installed FIRST, then Pyodide boots. Installing the
 * opfs-sahpool VFS while Pyodide was booting made createSyncAccessHandle() hang on ~12% of
 * loads. A reloaded page can find the old worker still holding the access handles for ~2 s,
 * so the install is retried (without `preserveOnInitFailure` a failed attempt would delete
 * the pool's files): see ./opfs.mjs.
 *
 * Messages to the page: {type: "stage", name, t}, then {type: "ready", jobs, workerId, marks}
 * or {type: "boot-error", error: {error, code}}; after that, JSON text from the
 * Python host (see src/durably_web/browser/host.py). The page sends {type: "init", config}
 * once, then JSON text requests.
 */
import sqlite3InitModule from "../vendor/sqlite-wasm/index.mjs";
import { checkOpfs, installVfs } from "./opfs.mjs";
import { bootPyodide, isQuotaError, startEngine, wireError } from "./runtime.mjs";
import { createBridge } from "./sqlite_bridge.mjs";

// The opfs-sahpool VFS turns a failed write into a bare SQLITE_IOERR and reports the cause
// (a QuotaExceededError, say) only to sqlite3's error logger: keep the last one, so the bridge
// can say "storage quota exceeded" instead of "disk I/O error".
/** @type {any} */
let vfsFault = null;
/** @type {any} */ (globalThis).sqlite3ApiConfig = {
  error: (/** @type {any[]} */ ...args) => {
    vfsFault = args.find((arg) => arg instanceof Error) ?? vfsFault;
    console.error(...args);
  },
};
const takeFault = () => {
  const fault = vfsFault;
  vfsFault = null;
  return fault ? { full: isQuotaError(fault), message: String(fault.message ?? fault) } : null;
};

const VENDOR = new URL("../vendor/", import.meta.url).href; // the site's _durably/vendor/
/** @type {Record<string, number>} */
const marks = { workerStart: performance.now() };
/** @param {string} name */
const stage = (name) => {
  marks[name] = performance.now();
  postMessage({ type: "stage", name, t: marks[name] });
};

/** @type {(config: any) => void} */
let receiveConfig = () => {};
const configReady = new Promise((resolve) => (receiveConfig = resolve));
/** @type {any} */
let host = null;
/** @type {string[]} */
const early = [];

self.onmessage = (event) => {
  const data = event.data;
  if (typeof data === "string") {
    if (host) host.receive(data);
    else early.push(data);
  } else if (data?.type === "init") {
    receiveConfig(data.config ?? {});
  }
};

/** @param {string} url */
async function fetchText(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return response.text();
}

async function main() {
  checkOpfs();
  const sqlite3 = await sqlite3InitModule();
  stage("sqlite");
  const { pool, attempt } = await installVfs(sqlite3);
  marks.vfsAttempts = attempt;
  // The pool never grows by itself (6 slots by default) and a WAL database holds two (db and
  // -wal): keep free slots, or opening a third database in a profile fails SQLITE_CANTOPEN.
  await pool.reserveMinimumCapacity(pool.getFileCount() + 8);
  stage("vfs");
  const config = await configReady;
  const pyodide = await bootPyodide(VENDOR);
  stage("pyodide");
  takeFault(); // what the VFS install's retries logged is not a write's fault
  const bridge = createBridge(sqlite3, (filename) => new pool.OpfsSAHPoolDb(filename), takeFault);
  host = await startEngine({ pyodide, bridge, post: (text) => postMessage(text), config, fetchText });
  stage("engine");
  const jobs = host.jobs();
  const workerId = host.durably.worker_id;
  postMessage({ type: "ready", jobs: jobs.toJs({ dict_converter: Object.fromEntries }), workerId, marks });
  jobs.destroy();
  for (const text of early.splice(0)) host.receive(text);
}

main().catch((error) => postMessage({ type: "boot-error", error: wireError(error) }));
