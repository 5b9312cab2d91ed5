// @ts-check
/**
 * durably_web on a page, with the interface of a local Durably, in one of two modes:
 *
 * - worker mode (`connect({jobs})`): the engine runs in a Web Worker of this page (Pyodide,
 *   SQLite on OPFS), over docs/browser-protocol.md;
 * - server mode (`connect({url})`): the engine runs in a server (durably_web.server, or
 *   upstream Durably's handler), over HTTP and server-sent events (docs/server.md).
 *
 *     import { connect } from "./_durably/client/index.mjs";
 *     const durably = await connect({ jobs: "./jobs.py", onStatus: (s) => show(s) });
 *     // or: const durably = await connect({ url: "/api/durably" });
 *     const run = await durably.jobs.import_csv.trigger({ rows: 100 });
 *     for await (const event of durably.subscribe(run.id)) console.log(event.type);
 *
 * Values are upstream Durably's wire form (camelCase). Timeouts are milliseconds, as in
 * upstream's JS API. Errors are DurablyError subclasses with `code` and `statusCode`.
 * Both modes are one client (./client.mjs: DurablyClient, JobHandle) over a transport:
 * ./transports/worker.mjs (leader and follower tabs, watchdog, restarts) or ./transports/http.mjs (fetch,
 * EventSource); the interface between them is ./transports/transport.d.ts. `on()` handlers
 * are in ./events.mjs, run subscriptions and waiting in ./subscription.mjs, the operations'
 * table and wire types in ./protocol.mjs and ./protocol.d.ts (generated from Python). The
 * engine worker is the site's ../runtime/worker.mjs.
 */
import { DurablyClient } from "./client.mjs";
import { HttpTransport } from "./transports/http.mjs";
import { WorkerTransport } from "./transports/worker.mjs";
// The modules the ones above import, listed here too so that the browser requests the whole
// graph in one round trip after this file (not three levels, one after the other): the
// engine worker, and with it Pyodide's downloads, starts that much sooner (bench/BOOT-NOTES.md).
import "./events.mjs";
import "./json.mjs";
import "./protocol.mjs";
import "./transports/engine_worker.mjs";
import "./transports/tab_server.mjs";
import "./transports/tabs.mjs";

export * from "./errors.mjs";
export { DurablyClient, EVENT_TYPES, JobHandle } from "./client.mjs";
export { Subscription } from "./subscription.mjs";
export { HttpTransport, WorkerTransport };

/**
 * @typedef {import("./transports/transport.js").StatusInfo} StatusInfo
 * @typedef {import("./transports/transport.js").Transport} Transport
 * @typedef {{
 *   jobs?: string | null, worker?: string, packages?: string[], database?: string,
 *   durability?: "NORMAL" | "FULL", options?: Record<string, unknown>,
 *   readyTimeout?: number, pingInterval?: number, missedPings?: number, maxAttempts?: number,
 *   onStatus?: (info: StatusInfo) => void, listen?: string[], url?: string,
 * }} ConnectOptions
 */

/**
 * Start the engine worker for this page and wait until it is ready, or (with `url`) connect
 * to a server's Durably endpoint. Both give the same client interface.
 *
 * @param {ConnectOptions} [options]
 *   url: a server's Durably endpoint, relative to the page (`"/api/durably"`): server mode,
 *   no worker (only `listen` and `onStatus` apply then);
 *   jobs: URL of the job module (a .py file), relative to the page; worker: the worker script
 *   (default: worker.mjs beside this file); packages: extra wheels; database: the OPFS file
 *   (default "/durably.db"); durability: "NORMAL" (WAL) or "FULL"; options: create_durably
 *   options; readyTimeout / pingInterval (ms), missedPings, maxAttempts: the watchdog;
 *   onStatus: called with every status change and boot stage; listen: event types to listen
 *   for from the start (the worker forwards them from its boot on, so a run it reclaims at
 *   boot reaches the page; events that arrive before a handler are kept for the first one).
 * @returns {Promise<DurablyClient>}
 *   In worker mode every tab of the site may connect to one database: the first runs the
 *   engine worker (role "leader"), the others forward through it (role "follower") and one
 *   of them leads when it goes away (docs/browser-client.md, "Several tabs").
 * @throws {import("./errors.mjs").DurablyError} the boot error (`opfs_unavailable`,
 *   `job_module_failed`, `leader_unreachable`, ...); in server mode the server's error or
 *   `network_error`.
 */
export async function connect(options = {}) {
  if (options.url) {
    const transport = new HttpTransport({ url: new URL(options.url, pageUrl()).href });
    return new DurablyClient(transport, { listen: options.listen, onStatus: options.onStatus }).start();
  }
  const database = options.database ?? "/durably.db";
  const early = preconnected.get(database);
  if (!early) {
    const started = boot(options);
    started.stopRecording();
    return started.ready;
  }
  preconnected.delete(database);
  early.stopRecording();
  if (options.listen?.length) early.client.hub.addListen(options.listen);
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
  if (options.url) return; // server mode: nothing to boot, connect() is quick
  preconnected.set(options.database ?? "/durably.db", boot(options));
}

/** @type {Map<string, ReturnType<typeof boot>>} */
const preconnected = new Map();

/** The page's URL, against which the options' URLs are resolved. */
const pageUrl = () => globalThis.document?.baseURI ?? globalThis.location?.href;

/** Create the client over a worker transport and start it. @param {ConnectOptions} options */
function boot(options) {
  const transport = new WorkerTransport({
    workerUrl: new URL(options.worker ?? "../runtime/worker.mjs", options.worker ? pageUrl() : import.meta.url).href,
    config: {
      jobsUrl: options.jobs ? new URL(options.jobs, pageUrl()).href : null,
      packages: options.packages,
      database: options.database,
      durability: options.durability,
      options: options.options,
    },
    readyTimeout: options.readyTimeout,
    pingInterval: options.pingInterval,
    missedPings: options.missedPings,
    maxAttempts: options.maxAttempts,
  });
  const client = new DurablyClient(transport, { listen: options.listen, onStatus: options.onStatus });
  /** @type {StatusInfo[]} */
  const statuses = [];
  const record = (/** @type {StatusInfo} */ info) => void statuses.push(info);
  client.statusHandlers.add(record);
  // A reload or navigation ends this page's engine at once, so the next page's worker can
  // open the database without waiting for this one to be collected.
  const onPageHide = () => client.close("the page was hidden (pagehide)");
  globalThis.addEventListener?.("pagehide", onPageHide);
  const ready = client.start().catch((error) => {
    globalThis.removeEventListener?.("pagehide", onPageHide);
    throw error;
  });
  ready.catch(() => {}); // a preconnect nobody takes over must not be an unhandled rejection
  return { client, statuses, ready, stopRecording: () => void client.statusHandlers.delete(record) };
}
