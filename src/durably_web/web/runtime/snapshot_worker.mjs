// @ts-check
/**
 * A short-lived worker that makes the engine worker's memory snapshot off the critical path.
 *
 * After a normal boot, once its engine is ready, the engine worker (./boot.mjs
 * `makeInWorker`) starts this worker and posts it a `SnapshotRequest`: the snapshot's key, the
 * job module, and the files its own boot used (the engine tar's files and compiled extension,
 * Pyodide's compiled wasm and stdlib zip: nothing is fetched or compiled again). This worker
 * boots Pyodide from them the same way (./boot.mjs `makeSnapshot`: the extensions load at the
 * same addresses), imports the engine and the job module, takes the snapshot and posts back
 * `{bytes}` (transferred) or `{error}`; the engine worker stores it and ends this worker. It
 * opens no database: the OPFS pool belongs to the engine worker.
 */
import { makeSnapshot } from "./boot.mjs";
import { VENDOR_URL } from "./engine_site.mjs";

self.onmessage = async ({ data }) => {
  try {
    const bytes = await makeSnapshot(VENDOR_URL, data);
    postMessage({ bytes }, [bytes.buffer]);
  } catch (error) {
    postMessage({ error: String(/** @type {any} */ (error)?.message ?? error) });
  }
};
