// @ts-check
/**
 * durably_web on a page: the engine runs in a Web Worker (Pyodide, SQLite on OPFS); this
 * client gives the page the interface of a local Durably over docs/browser-protocol.md.
 *
 *     import { connect } from "./client.mjs";
 *     const durably = await connect({ jobs: "./jobs.py", onStatus: (s) => show(s) });
 *     const run = await durably.jobs.import_csv.trigger({ rows: 100 });
 *     for await (const event of durably.subscribe(run.id)) console.log(event.type);
 *
 * Values are upstream Durably's wire form (camelCase). Timeouts are milliseconds, as in
 * upstream's JS API. Errors are DurablyError subclasses with `code` and `statusCode`.
 * The client class is in ./client/durably.mjs; the worker lifecycle (tab lock, watchdog,
 * restarts) in ./client/link.mjs; run subscriptions and waiting in ./client/subscription.mjs.
 */
import { DurablyClient } from "./client/durably.mjs";

export * from "./client/errors.mjs";
export { DurablyClient, EVENT_TYPES, JobHandle } from "./client/durably.mjs";
export { Subscription } from "./client/subscription.mjs";

/**
 * @typedef {import("./client/durably.mjs").ConnectOptions} ConnectOptions
 * @typedef {import("./client/link.mjs").StatusInfo} StatusInfo
 */

/**
 * Start the engine worker for this page and wait until it is ready.
 *
 * @param {ConnectOptions} [options]
 *   jobs: URL of the job module (a .py file), relative to the page; worker: the worker script
 *   (default: worker.mjs beside this file); packages: extra wheels; database: the OPFS file
 *   (default "/durably.db"); durability: "NORMAL" (WAL) or "FULL"; options: create_durably
 *   options; readyTimeout / pingInterval (ms), missedPings, maxAttempts: the watchdog;
 *   onStatus: called with every status change and boot stage.
 * @returns {Promise<DurablyClient>}
 * @throws {import("./client/errors.mjs").DurablyError} ConflictError `open_in_another_tab`,
 *   or the boot error (`opfs_unavailable`, `job_module_failed`, ...).
 */
export async function connect(options = {}) {
  const database = options.database ?? "/durably.db";
  const early = preconnected.get(database);
  if (!early) {
    const started = boot(options);
    started.stopRecording();
    return started.ready;
  }
  preconnected.delete(database);
  early.stopRecording();
  if (options.onStatus) {
    for (const info of early.statuses) options.onStatus(info);
    early.client.statusHandlers.add(options.onStatus);
  }
  return early.ready;
}

/**
 * Start the engine now, before the page's code is ready to call `connect()` (e.g. while
 * PyScript loads): the worker boots in parallel, and the first `connect()` for the same
 * database takes this boot over (its status handler first gets the statuses so far). The
 * options given here are the ones used.
 * @param {ConnectOptions} [options]
 */
export function preconnect(options = {}) {
  const started = boot(options);
  preconnected.set(started.client.link.options.config.database, started);
}

/** @type {Map<string, ReturnType<typeof boot>>} */
const preconnected = new Map();

/** Create the client and start its worker. @param {ConnectOptions} options */
function boot(options) {
  const base = globalThis.document?.baseURI ?? globalThis.location?.href;
  const client = new DurablyClient({
    ...options,
    database: options.database ?? "/durably.db",
    jobsUrl: options.jobs ? new URL(options.jobs, base).href : null,
    workerUrl: new URL(options.worker ?? "./worker.mjs", options.worker ? base : import.meta.url).href,
  });
  /** @type {StatusInfo[]} */
  const statuses = [];
  const record = (/** @type {StatusInfo} */ info) => void statuses.push(info);
  client.statusHandlers.add(record);
  // A reload or navigation ends this page's engine at once, so the next page's worker can
  // open the database without waiting for this one to be collected.
  const onPageHide = () => client.close("the page was hidden (pagehide)");
  globalThis.addEventListener?.("pagehide", onPageHide);
  const ready = client.link.start().then(
    () => client,
    (error) => {
      globalThis.removeEventListener?.("pagehide", onPageHide);
      throw error;
    },
  );
  ready.catch(() => {}); // a preconnect nobody takes over must not be an unhandled rejection
  return { client, statuses, ready, stopRecording: () => void client.statusHandlers.delete(record) };
}
