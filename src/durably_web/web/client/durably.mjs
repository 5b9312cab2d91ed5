// @ts-check
/**
 * The page's Durably (`DurablyClient`) and its job handles, over an EngineLink.
 *
 * Values are upstream Durably's wire form (camelCase); timeouts are milliseconds. Created by
 * `connect()` in ./index.mjs, the module pages import.
 */
import { ValidationError, errorFromWire } from "./errors.mjs";
import { EVENT_TYPES, EventHub } from "./events.mjs";
import { checkJson } from "./json.mjs";
import { EngineLink } from "./link.mjs";
import { Subscription, followRun } from "./subscription.mjs";

export { EVENT_TYPES };

/**
 * @typedef {import("./link.mjs").StatusInfo} StatusInfo
 * @typedef {{ idempotencyKey?: string, concurrencyKey?: string, labels?: Record<string, string>,
 *             coalesce?: "skip" }} TriggerOptions
 * @typedef {{ timeout?: number, onProgress?: (progress: any) => void, onLog?: (log: any) => void }} WaitOptions
 * @typedef {{
 *   jobs?: string | null, worker?: string, packages?: string[], database?: string,
 *   durability?: "NORMAL" | "FULL", options?: Record<string, unknown>,
 *   readyTimeout?: number, pingInterval?: number, missedPings?: number, maxAttempts?: number,
 *   onStatus?: (info: StatusInfo) => void, listen?: string[], url?: string,
 * }} ConnectOptions
 *   url: a server's Durably endpoint (server-connected mode, ./http.mjs) instead of a worker;
 *   listen: event types to listen for from the start (events before the first `on()` handler
 *   of their type are kept for it; see ./events.mjs)
 */

/** @param {any} item @returns {{input: any, options?: TriggerOptions}} */
const batchItem = (item) =>
  item && typeof item === "object" && !Array.isArray(item) && "input" in item && Object.keys(item).every((k) => k === "input" || k === "options")
    ? item
    : { input: item };

/**
 * Batch items as `{input, options}`, each input checked (./json.mjs).
 * @param {any[]} items @param {string} name the job's name, for the error message
 */
export const checkedItems = (items, name) =>
  items.map((item, index) => {
    const normal = batchItem(item);
    checkJson(normal.input, `input for job '${name}' at index ${index}`);
    return normal;
  });

/** A job registered in the worker: `client.jobs.<key>`. (Server mode: HttpJobHandle in ./http.mjs.) */
export class JobHandle {
  /** @param {DurablyClient} client @param {string} key @param {string} name */
  constructor(client, key, name) {
    this.client = client;
    this.key = key;
    this.name = name;
  }

  /** Create a run (validated in the worker). @param {any} input @param {TriggerOptions} [options] */
  async trigger(input, options = {}) {
    checkJson(input, `input for job '${this.name}'`);
    // Only a trigger carrying an idempotency key may be sent again after a worker restart.
    return this.client.link.request({ type: "trigger", jobName: this.key, input, ...options }, { retry: Boolean(options.idempotencyKey) });
  }

  /** Trigger, then wait for the run to complete; resolves with the completed run. @param {any} input @param {TriggerOptions & WaitOptions} [options] */
  async triggerAndWait(input, options = {}) {
    const { timeout, onProgress, onLog, ...triggerOptions } = options;
    /** @type {any} */
    let run = null;
    const start = async () => (run = await this.trigger(input, triggerOptions)).id;
    const fresh = () => run?.disposition === "created"; // the listeners saw all of this run
    const done = await followRun(/** @type {any} */ (this.client), start, { timeout, onProgress, onLog }, "triggerAndWait", fresh);
    return { ...done, disposition: run.disposition };
  }

  /** Create several runs in one transaction. @param {any[]} items inputs, or `{input, options}` */
  async batchTrigger(items) {
    const normal = checkedItems(items, this.name);
    const retry = normal.every((item) => Boolean(item.options?.idempotencyKey));
    const wire = normal.map(({ input, options }) => ({ input, ...options }));
    return this.client.link.request({ type: "batchTrigger", jobName: this.key, items: wire }, { retry });
  }
}

/** The page's Durably: the same methods as a local instance, answered by the worker. */
export class DurablyClient {
  /** @param {ConnectOptions & {jobsUrl: string | null, workerUrl: string, database: string}} options */
  constructor(options) {
    /** @type {Record<string, JobHandle>} */
    this.jobs = {};
    this.hub = new EventHub({ listen: options.listen ?? [], onChange: () => this.syncListen() });
    /** @type {Set<(info: StatusInfo) => void>} */
    this.statusHandlers = new Set();
    if (options.onStatus) this.statusHandlers.add(options.onStatus);
    /** @type {Map<string, Subscription>} */
    this.subscriptions = new Map();
    /** @type {StatusInfo} */
    this.statusInfo = { status: "booting", attempt: 0, at: performance.now() };
    this.listening = "";
    this.link = new EngineLink({
      workerUrl: options.workerUrl,
      lockName: `durably-web:${options.database}`,
      config: {
        jobsUrl: options.jobsUrl,
        packages: options.packages ?? [],
        database: options.database,
        durability: options.durability ?? "NORMAL",
        options: options.options ?? {},
      },
      readyTimeout: options.readyTimeout ?? 30_000,
      pingInterval: options.pingInterval ?? 2_000,
      missedPings: options.missedPings ?? 3,
      maxAttempts: options.maxAttempts ?? 3,
      onStatus: (info) => this.setStatus(info),
      onPush: (message) => this.onPush(message),
      listenTypes: () => {
        const types = this.hub.types();
        this.listening = types.join(",");
        return types;
      },
      onReady: (info, restarted) => this.onReady(info, restarted),
    });
  }

  /** "booting" | "ready" | "restarting" | "failed" | "open-in-another-tab" | "closed" */
  get status() {
    return this.statusInfo.status;
  }

  /** The worker's boot marks (ms since the worker started) of the last ready worker. */
  get marks() {
    return this.link.ready?.marks ?? {};
  }

  /** @param {StatusInfo} info */
  setStatus(info) {
    this.statusInfo = info;
    for (const handler of this.statusHandlers) handler(info);
  }

  /** @param {import("./link.mjs").ReadyInfo} info @param {boolean} restarted */
  onReady(info, restarted) {
    for (const { key, name } of info.jobs) {
      if (!this.jobs[key]) this.jobs[key] = new JobHandle(this, key, name);
    }
    if (restarted) {
      this.listening = "";
      this.syncListen();
      for (const sub of [...this.subscriptions.values()]) this.openSubscription(sub);
    }
  }

  /** @param {any} message */
  onPush(message) {
    if (message.type === "events") {
      for (const event of message.events) this.hub.deliver(event);
    } else if (message.type === "subscription") {
      this.subscriptions.get(message.id)?.push(message.event);
    } else if (message.type === "subscription-end") {
      const sub = this.subscriptions.get(message.id);
      if (sub) sub.end(message.error ? errorFromWire(message.error) : null);
    }
  }

  /**
   * Call `handler` for each engine event of `type` (or "*"), or for each status change
   * (`"status"`: booting, ready, restarting, failed, ...). Returns a function that removes it.
   * Events of a `connect({listen})` type that arrived before the first handler for their type
   * are delivered to it first.
   * @param {string} type @param {(event: any) => void} handler
   */
  on(type, handler) {
    if (type === "status") {
      if (typeof handler !== "function") throw new ValidationError(`event handler must be a function, got ${typeof handler}`);
      this.statusHandlers.add(handler);
      return () => void this.statusHandlers.delete(handler);
    }
    // Checked in the hub: one unknown type would make the worker refuse every later `listen`.
    return this.hub.on(type, handler);
  }

  /** Tell the worker which event types to forward: those handled here and the `listen` ones. */
  syncListen() {
    const types = this.hub.types();
    const key = types.join(",");
    if (key === this.listening) return;
    this.listening = key;
    this.link.request({ type: "listen", events: types }).catch((error) => console.error("durably_web: listen failed", error));
  }

  /** Iterate over a run's events: its current state first, ending after a terminal event. @param {string} runId */
  subscribe(runId) {
    return new Subscription(runId, (sub) => this.openSubscription(sub), (sub, active) => this.closeSubscription(sub, active));
  }

  /** @param {Subscription} sub */
  openSubscription(sub) {
    if (sub.wireId) this.subscriptions.delete(sub.wireId);
    const id = this.link.allocateId();
    sub.wireId = String(id);
    this.subscriptions.set(sub.wireId, sub);
    this.link.request({ type: "subscribe", runId: sub.runId }, { id, retry: false }).catch((error) => {
      // After a restart the subscription is opened again under a new id; other errors end it.
      if (error?.code !== "worker_restarted" && sub.wireId === String(id)) sub.end(error);
    });
  }

  /** @param {Subscription} sub @param {boolean} active */
  closeSubscription(sub, active) {
    if (this.subscriptions.get(sub.wireId) !== sub) return;
    this.subscriptions.delete(sub.wireId);
    if (active && this.link.ready) this.link.request({ type: "unsubscribe", subscription: sub.wireId }).catch(() => {});
  }

  /** @param {string} runId */
  getRun(runId) {
    return this.link.request({ type: "getRun", runId });
  }

  /** @param {{status?: string, jobName?: string, labels?: Record<string, string>, limit?: number, offset?: number}} [filter] */
  getRuns(filter = {}) {
    return this.link.request({ type: "getRuns", ...filter });
  }

  /** @param {string} runId */
  getSteps(runId) {
    return this.link.request({ type: "getSteps", runId });
  }

  /** @param {string} runId */
  getLogs(runId) {
    return this.link.request({ type: "getLogs", runId });
  }

  /** @param {string} runId */
  cancel(runId) {
    return this.link.request({ type: "cancel", runId }, { retry: false });
  }

  /** Re-run a failed or cancelled run in place (completed steps replay). @param {string} runId */
  retry(runId) {
    return this.link.request({ type: "retry", runId }, { retry: false });
  }

  /** A new run with the same input. @param {string} runId */
  retrigger(runId) {
    return this.link.request({ type: "retrigger", runId }, { retry: false });
  }

  /** @param {string} runId */
  deleteRun(runId) {
    return this.link.request({ type: "deleteRun", runId }, { retry: false });
  }

  /** Delete terminal runs finished before `olderThan` ("7d", "12h", a Date or ISO text). @param {{olderThan: string | Date, limit?: number}} options */
  purgeRuns({ olderThan, limit = 500 }) {
    const cutoff = olderThan instanceof Date ? olderThan.toISOString() : olderThan;
    return this.link.request({ type: "purgeRuns", olderThan: cutoff, limit });
  }

  /** Resolve with the completed run; reject if it fails, is cancelled or `timeout` ms pass. @param {string} runId @param {WaitOptions} [options] */
  waitForRun(runId, options = {}) {
    return followRun(this, async () => runId, options);
  }

  /**
   * Resolve once the events the worker sent before now have been delivered to the `on()`
   * handlers: a ping round trip (the worker answers after flushing its event batch).
   * @param {string} _runId
   */
  async settle(_runId) {
    await this.link.request({ type: "ping" }).catch(() => {});
  }

  /**
   * Stop the worker and release the database for another tab.
   * @returns {Promise<void>} settles once the database may be opened again
   */
  close(reason = "the client was closed") {
    for (const sub of [...this.subscriptions.values()]) sub.end(null);
    return this.link.close(reason);
  }
}
