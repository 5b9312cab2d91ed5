// @ts-check
/**
 * The OPFS side of a worker's boot: check that the browser gives this worker OPFS, then
 * install sqlite-wasm's opfs-sahpool VFS, retried while a previous worker (a page reloaded a
 * moment ago, a killed worker) still holds the pool's access handles, and given up when an
 * attempt never settles (./timeouts.mjs `vfsStep`: Chromium sometimes leaves an access-handle
 * request pending for good; only a new worker gets past it, see bench/BOOT-NOTES.md).
 *
 * Used by ./worker.mjs (the engine worker) and bench/browser/worker.mjs (the benchmark
 * worker, which must boot exactly as the product does). Install the VFS before Pyodide boots:
 * installing it while Pyodide was booting made createSyncAccessHandle() hang on ~12% of loads.
 */
import { BootError, isQuotaError } from "./runtime.mjs";
import { TIMEOUTS, within } from "./timeouts.mjs";

/** The pool every durably_web engine worker of an origin uses. */
export const POOL = { name: "durably-sahpool", directory: ".durably-sahpool" };

/**
 * Set sqlite-wasm's configuration for this worker (`globalThis.sqlite3ApiConfig`, read when
 * `sqlite3InitModule()` runs): `error` logs its errors, and its "opfs" and "opfs-wl" VFSes
 * stay off. The engine uses opfs-sahpool only; on a cross-origin-isolated page each of the
 * other two would start a worker of its own (fetching sqlite3-opfs-async-proxy.js, twice)
 * while the init the engine waits for is still running.
 * @param {(...args: any[]) => void} [error]
 */
export function configureSqlite(error = console.error) {
  /** @type {any} */ (globalThis).sqlite3ApiConfig = { error, disable: { vfs: { opfs: true, "opfs-wl": true } } };
}

const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Throw BootError `opfs_unavailable` unless this worker can open OPFS sync access handles. */
export function checkOpfs() {
  const storage = /** @type {any} */ (navigator).storage;
  const handle = /** @type {any} */ (globalThis).FileSystemFileHandle;
  if (!storage?.getDirectory || typeof handle?.prototype?.createSyncAccessHandle !== "function") {
    throw new BootError(
      "opfs_unavailable",
      "This browser gives no access to the Origin Private File System (OPFS) here, so runs " +
        "cannot be stored across reloads. Use a current Chromium, Firefox or Safari over https " +
        "or localhost, outside private browsing.",
    );
  }
}

/**
 * Files the pool keeps free beyond those in use. It never grows by itself (6 slots by
 * default) and a WAL database holds two (db and -wal): without free slots, opening a third
 * database in a profile fails SQLITE_CANTOPEN.
 */
const SPARE_FILES = 8;

/**
 * Install the opfs-sahpool VFS with {@link SPARE_FILES} free files, retrying every `delayMs`
 * up to `attempts` times while another worker holds the pool. Fails with BootError
 * `quota_exceeded` or `opfs_busy`, or `boot_stuck` when an attempt (or the pool's growth)
 * does not settle within `TIMEOUTS.vfsStep`: a retry in this worker cannot help then
 * (sqlite-wasm keeps the pending install for the worker's life, and the handles it already
 * got stay held), the page ends this worker and starts another.
 * @param {any} sqlite3 @returns {Promise<{ pool: any, attempt: number }>}
 */
export async function installVfs(sqlite3, attempts = 40, delayMs = 250) {
  const { pool, attempt } = await acquirePool(sqlite3, attempts, delayMs);
  const growing = pool.reserveMinimumCapacity(pool.getFileCount() + SPARE_FILES);
  await within(growing, TIMEOUTS.vfsStep, "adding free files to the OPFS pool");
  return { pool, attempt };
}

/** @param {any} sqlite3 @param {number} attempts @param {number} delayMs */
async function acquirePool(sqlite3, attempts, delayMs) {
  for (let attempt = 1; ; attempt++) {
    try {
      const installing = sqlite3.installOpfsSAHPoolVfs({
        ...POOL,
        forceReinitIfPreviouslyFailed: true, // else the first failure is cached for good
        preserveOnInitFailure: true, // else a failed attempt deletes the pool's files
      });
      const pool = await within(installing, TIMEOUTS.vfsStep, `installing the OPFS pool (attempt ${attempt})`);
      return { pool, attempt };
    } catch (error) {
      if (error instanceof BootError) throw error; // stuck: see installVfs
      const text = String(/** @type {any} */ (error)?.message ?? error);
      if (isQuotaError(error)) throw new BootError("quota_exceeded", `storage quota exceeded opening the database: ${text}`);
      if (attempt >= attempts) {
        throw new BootError("opfs_busy", `the database is held by another worker (open in another tab?): ${text}`);
      }
      await sleep(delayMs);
    }
  }
}
