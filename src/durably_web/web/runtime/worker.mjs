// @ts-check
/**
 * The durably_web engine worker (a module worker: Pyodide needs one).
 *
 * Boot order matters: the OPFS VFS is installed FIRST, then Pyodide boots. Installing the
 * opfs-sahpool VFS while Pyodide was booting made createSyncAccessHandle() hang on ~12% of
 * loads. The engine's tar, the build id, the snapshot lookup, the job module, the stdlib zip
 * and Pyodide's wasm are fetched while the VFS installs, and the wasm compiled
 * (./prefetch.mjs); Pyodide is instantiated and loaded (or restored from a memory snapshot)
 * only once it is open (./boot.mjs). A reloaded page can find the old worker still holding the access
 * handles for ~2 s, so the install is retried (without `preserveOnInitFailure` a failed
 * attempt would delete the pool's files): see ./opfs.mjs. After `ready`, following a normal
 * boot, a short-lived worker makes a snapshot for the next boot (./snapshot_worker.mjs) and
 * this one stores it (./snapshot.mjs), under the build id: the sha256 of the site's manifest
 * (served by the service worker offline).
 *
 * Messages to the page: {type: "stage", name, t}, then {type: "ready", jobs, workerId, marks}
 * or {type: "boot-error", error: {error, code}}; after that, JSON text from the
 * Python host (see src/durably_web/browser/host.py). The page sends {type: "init", config}
 * once, then JSON text requests.
 */
import sqlite3InitModule from "../vendor/sqlite-wasm/index.mjs";
import { checkOpfs, configureSqlite, installVfs } from "./opfs.mjs";
import { bootInterpreter } from "./boot.mjs";
import { VENDOR_URL } from "./engine_site.mjs";
import { isQuotaError, startEngine, wireError } from "./runtime.mjs";
import { cacheStore, sha256Hex } from "./snapshot.mjs";
import { createBridge } from "./sqlite_bridge.mjs";
// What ./boot.mjs imports, listed here too so that the browser requests it with the modules
// above (one round trip less before Pyodide's downloads start: bench/BOOT-NOTES.md).
import "./boot_files.mjs";
import "./prefetch.mjs";

// The opfs-sahpool VFS turns a failed write into a bare SQLITE_IOERR and reports the cause
// (a QuotaExceededError, say) only to sqlite3's error logger: keep the last one, so the bridge
// can say "storage quota exceeded" instead of "disk I/O error".
/** @type {any} */
let vfsFault = null;
configureSqlite((...args) => {
  vfsFault = args.find((arg) => arg instanceof Error) ?? vfsFault;
  console.error(...args);
});
const takeFault = () => {
  const fault = vfsFault;
  vfsFault = null;
  return fault ? { full: isQuotaError(fault), message: String(fault.message ?? fault) } : null;
};

const MANIFEST = new URL("../manifest.json", import.meta.url).href; // its sha256: the build id
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

/**
 * Load sqlite-wasm and install the OPFS VFS (retried while another worker holds it; a stuck
 * install fails the boot with `boot_stuck`, and the page starts a new worker at once).
 */
async function openVfs() {
  const sqlite3 = await sqlite3InitModule();
  stage("sqlite");
  const { pool, attempt } = await installVfs(sqlite3);
  marks.vfsAttempts = attempt;
  stage("vfs");
  return { sqlite3, pool };
}

/** The build id: the sha256 of the site's manifest (a failure means: no snapshot). */
async function buildId() {
  const response = await fetch(MANIFEST);
  if (!response.ok) throw new Error(`GET ${MANIFEST}: HTTP ${response.status}`);
  return sha256Hex(await response.arrayBuffer());
}

async function main() {
  checkOpfs();
  const vfs = openVfs();
  // Pyodide's files are fetched meanwhile; Pyodide itself loads once the VFS is open.
  // The page's job module is fetched now too, and imported in the boot (so that a snapshot
  // holds it) unless the page asks for extra packages, which install after the boot.
  const jobModule = configReady.then(async (c) => {
    if (c.packages?.length || (c.jobsSource == null && !c.jobsUrl)) return null;
    return { url: c.jobsUrl || "jobs.py", source: c.jobsSource ?? (await fetchText(c.jobsUrl)) };
  });
  jobModule.catch(() => {}); // startEngine fetches it again and reports the error
  // No snapshot for a page that asks for extra packages: they install after the boot, and a
  // restored interpreter loading them is untested (their extensions land at heap addresses).
  const build = configReady.then((c) => (c.packages?.length ? null : buildId()));
  build.catch((error) => console.warn("durably_web: no build id, so no boot snapshot:", error));
  const snapshots = cacheStore(MANIFEST);
  const booting = bootInterpreter(VENDOR_URL, { before: vfs, build, snapshots, jobs: jobModule, marks });
  booting.catch(() => {}); // reported below, unless the VFS failed first
  const { sqlite3, pool } = await vfs;
  const config = await configReady;
  const { pyodide, snapshot, save } = await booting;
  marks[`snapshot-${snapshot}`] = performance.now();
  stage("pyodide");
  takeFault(); // what the VFS install's retries logged is not a write's fault
  const bridge = createBridge(sqlite3, (filename) => new pool.OpfsSAHPoolDb(filename), takeFault);
  const prefetched = async (/** @type {string} */ url) => (url === config.jobsUrl && (await jobModule.catch(() => null))?.source) || fetchText(url);
  host = await startEngine({ pyodide, bridge, post: (text) => postMessage(text), config, fetchText: prefetched });
  stage("engine");
  const jobs = host.jobs();
  const workerId = host.durably.worker_id;
  postMessage({ type: "ready", jobs: jobs.toJs({ dict_converter: Object.fromEntries }), workerId, marks });
  jobs.destroy();
  for (const text of early.splice(0)) host.receive(text);
  // Off the critical path: after a normal boot, another worker makes a snapshot for the next
  // boot, stored here. If that fails, this engine goes on and the next boot is a normal one.
  save().catch((error) => console.warn("durably_web: cannot make or store the boot snapshot:", error));
}

main().catch((error) => postMessage({ type: "boot-error", error: wireError(error) }));
