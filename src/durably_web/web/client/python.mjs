// @ts-check
/**
 * The JS half of `durably_web.client` (PyScript pages, MicroPython or Pyodide), in worker mode
 * or server mode (the same adapter over ./index.mjs's `connect`, which picks the mode).
 *
 * Every value crosses the language boundary as JSON text, and every promise resolves (never
 * rejects) with `{"ok": true, "result": ...}` or `{"ok": false, "error": {error, code}}`:
 * the Python side then behaves identically in both interpreters, without relying on either
 * one's proxy conversions or exception mapping. Pushes (status changes, events,
 * wait callbacks) go through the one Python function given to `pyConnect`, called as
 * `callback(kind, json)`.
 */
import { DurablyClient } from "./client.mjs";
import { DurablyError, errorToWire } from "./errors.mjs";
import { connect } from "./index.mjs";
import { OPERATIONS } from "./protocol.mjs";
import { WorkerTransport } from "./transports/worker.mjs";

/**
 * @typedef {import("./transports/transport.js").StatusInfo} StatusInfo
 * @typedef {(...args: unknown[]) => Promise<unknown>} Method
 */

/** @param {Promise<unknown>} promise @returns {Promise<string>} */
const settle = (promise) =>
  promise.then(
    (result) => JSON.stringify({ ok: true, result: result ?? null }),
    (error) => JSON.stringify({ ok: false, error: errorToWire(error) }),
  );

/**
 * The client methods Python may call with positional JSON arguments: the operations of
 * ./protocol.mjs the client has a method for (a trigger goes through the job's handle).
 */
const METHODS = new Set(
  Object.keys(OPERATIONS).filter((name) => OPERATIONS[name].kind === "call" && typeof Object.getOwnPropertyDescriptor(DurablyClient.prototype, name)?.value === "function"),
);

/** The `{key, name}` of a client's jobs. @param {DurablyClient | null} client */
const jobList = (client) => Object.values(client?.jobs ?? {}).map(({ key, name }) => ({ key, name }));

export class PythonAdapter {
  /** @param {string} configJson @param {(kind: string, json: string) => void} callback */
  constructor(configJson, callback) {
    const config = JSON.parse(configJson);
    this.callback = callback;
    /** Once ready, over a worker or (`url` in the config) a server. @type {DurablyClient | null} */
    this.client = null;
    /** @type {Map<number, () => void>} */
    this.listeners = new Map();
    /** @type {Map<number, import("./subscription.mjs").Subscription>} */
    this.subscriptions = new Map();
    this.nextToken = 1;
    this.lastStatus = JSON.stringify({ status: "booting", attempt: 0 });
    const onStatus = (/** @type {StatusInfo} */ info) => {
      this.lastStatus = JSON.stringify({ ...info, error: info.error ? errorToWire(info.error) : undefined });
      this.callback("status", this.lastStatus);
    };
    /** Resolves with `{ok, result: {jobs}}` once the engine is ready (or the boot error). */
    this.ready = settle(
      connect({ ...config, onStatus }).then((client) => {
        this.client = client;
        return { jobs: jobList(client) };
      }),
    );
  }

  get live() {
    if (!this.client) throw new DurablyError("the engine is not ready", "closed");
    return this.client;
  }

  /** The last status change, as JSON. */
  status() {
    return this.lastStatus;
  }

  /** The jobs of the last ready worker, as JSON `[{key, name}]`. */
  jobs() {
    return JSON.stringify(jobList(this.client));
  }

  /** @param {string} method @param {string} argsJson a JSON array */
  call(method, argsJson) {
    const args = JSON.parse(argsJson);
    if (method === "trigger") return settle(Promise.resolve().then(() => this.live.job(args[0]).trigger(args[1], args[2])));
    if (method === "batchTrigger") return settle(Promise.resolve().then(() => this.live.job(args[0]).batchTrigger(args[1])));
    if (!METHODS.has(method)) return settle(Promise.reject(new DurablyError(`unknown client method ${method}`)));
    return settle(Promise.resolve().then(() => /** @type {Record<string, Method>} */ (/** @type {unknown} */ (this.live))[method](...args)));
  }

  /**
   * Forward events of `type` to Python as `callback("event", json)`; returns JSON
   * `{ok, result: token}` (the token for `off`) or the error (an unknown type).
   * @param {string} type
   */
  on(type) {
    try {
      const token = this.nextToken++;
      this.listeners.set(token, this.live.on(type, (event) => this.callback("event", JSON.stringify({ token, event }))));
      return JSON.stringify({ ok: true, result: token });
    } catch (error) {
      return JSON.stringify({ ok: false, error: errorToWire(error) });
    }
  }

  /** @param {number} token */
  off(token) {
    this.listeners.get(token)?.();
    this.listeners.delete(token);
  }

  /** Start following a run; read it with `next(id)`. @param {string} runId */
  subscribe(runId) {
    const id = this.nextToken++;
    this.subscriptions.set(id, this.live.subscribe(runId));
    return id;
  }

  /** The next event: `{ok, result: {done, value}}`. @param {number} id */
  next(id) {
    const sub = this.subscriptions.get(id);
    if (!sub) return settle(Promise.resolve({ done: true }));
    return settle(
      sub.next().then(
        (step) => {
          if (step.done) this.subscriptions.delete(id);
          return { done: Boolean(step.done), value: step.value ?? null };
        },
        (error) => {
          this.subscriptions.delete(id);
          throw error;
        },
      ),
    );
  }

  /** @param {number} id */
  unsubscribe(id) {
    this.subscriptions.get(id)?.return();
    this.subscriptions.delete(id);
  }

  /**
   * Wait for a run; progress and logs are pushed as `callback("wait", {token, kind, value})`.
   * @param {string} runId @param {number} timeoutMs 0 for none @param {number} token
   */
  wait(runId, timeoutMs, token) {
    const push = (/** @type {string} */ kind) => (/** @type {unknown} */ value) => this.callback("wait", JSON.stringify({ token, kind, value }));
    return settle(
      Promise.resolve().then(() =>
        this.live.waitForRun(runId, { timeout: timeoutMs > 0 ? timeoutMs : undefined, onProgress: push("progress"), onLog: push("log") }),
      ),
    );
  }

  /**
   * Trigger and wait (progress and logs pushed as for `wait`).
   * @param {string} job @param {string} inputJson @param {string} optionsJson
   * @param {number} timeoutMs 0 for none @param {number} token
   */
  triggerAndWait(job, inputJson, optionsJson, timeoutMs, token) {
    const push = (/** @type {string} */ kind) => (/** @type {any} */ value) => this.callback("wait", JSON.stringify({ token, kind, value }));
    const options = { ...JSON.parse(optionsJson), timeout: timeoutMs > 0 ? timeoutMs : undefined, onProgress: push("progress"), onLog: push("log") };
    return settle(Promise.resolve().then(() => this.live.job(job).triggerAndWait(JSON.parse(inputJson), options)));
  }

  /** Test hook: kill the worker without telling the client (the watchdog must notice). */
  killWorker() {
    const transport = this.client?.transport;
    if (transport instanceof WorkerTransport) transport.worker?.terminate();
  }

  /** Stop the engine; resolves (`{ok}` JSON) once the database is released. */
  close() {
    return settle(this.client ? this.client.close() : Promise.resolve());
  }
}

/**
 * Start the engine for a Python page, or connect to a server. `configJson` holds `connect()`'s
 * options (url, or jobs, worker, packages, database, durability, options, readyTimeout,
 * pingInterval, ...; listen).
 * @param {string} configJson @param {(kind: string, json: string) => void} callback
 */
export function pyConnect(configJson, callback) {
  return new PythonAdapter(configJson, callback);
}
