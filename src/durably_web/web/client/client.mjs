// @ts-check
/**
 * The page's Durably (`DurablyClient`) and its job handles: every remote operation written
 * once, over a Transport (./transports/transport.d.ts) that reaches the engine.
 *
 * The client decides what to ask: the operation of ./protocol.mjs, its wire arguments
 * (./protocol.d.ts `OperationArgs`) and whether a repeat is safe (the table's `repeatable`).
 * The transport decides how: ./transports/worker.mjs (the engine in this tab's Web Worker)
 * or ./transports/http.mjs (a server). Results are the engine's wire form (camelCase) over
 * every transport; timeouts are milliseconds. `connect()` in ./index.mjs builds one.
 */
import { NotFoundError, ValidationError } from "./errors.mjs";
import { EVENT_TYPES, EventHub } from "./events.mjs";
import { checkJson } from "./json.mjs";
import { OPERATIONS } from "./protocol.mjs";
import { Subscription, followRun } from "./subscription.mjs";

export { EVENT_TYPES };

/**
 * @typedef {import("./protocol.js").OperationArgs} OperationArgs
 * @typedef {import("./protocol.js").WorkerResults} WorkerResults
 * @typedef {import("./protocol.js").Run} Run
 * @typedef {import("./protocol.js").TriggerItem} TriggerItem
 * @typedef {import("./transports/transport.js").Transport} Transport
 * @typedef {import("./transports/transport.js").CallName} CallName
 * @typedef {import("./transports/transport.js").StatusInfo} StatusInfo
 * @typedef {import("./transports/transport.js").ReadyInfo} ReadyInfo
 * @typedef {{ idempotencyKey?: string, concurrencyKey?: string, labels?: Record<string, string>,
 *             coalesce?: "skip" }} TriggerOptions
 * @typedef {{ timeout?: number, onProgress?: (progress: import("./protocol.js").Progress) => void,
 *             onLog?: (log: import("./protocol.js").LogWriteEvent) => void }} WaitOptions
 * @typedef {{ listen?: string[], onStatus?: (info: StatusInfo) => void }} ClientOptions
 *   listen: event types to listen for from the start (events before the first `on()` handler
 *   of their type are kept for it; see ./events.mjs)
 */

/**
 * Whether a request may be sent again after its transport lost the engine: the operation's
 * `repeatable` in ./protocol.mjs; `idempotency-key`: only when the trigger (every item of a
 * batch) carries one.
 * @template {CallName} K
 * @param {K} op @param {OperationArgs[K]} args
 */
export function repeatable(op, args) {
  const rule = OPERATIONS[op].repeatable;
  if (rule !== "idempotency-key") return rule === "always";
  const fields = /** @type {{items?: unknown}} */ (args);
  /** @type {unknown[]} */
  const items = Array.isArray(fields.items) ? fields.items : [args];
  return items.every((item) => Boolean(item && typeof item === "object" && "idempotencyKey" in item && item.idempotencyKey));
}

/** The trigger options a caller gave, without the unset ones. @param {TriggerOptions} [options] */
function triggerOptions(options = {}) {
  /** @type {TriggerOptions} */
  const out = {};
  if (options.idempotencyKey != null) out.idempotencyKey = options.idempotencyKey;
  if (options.concurrencyKey != null) out.concurrencyKey = options.concurrencyKey;
  if (options.labels != null) out.labels = options.labels;
  if (options.coalesce != null) out.coalesce = options.coalesce;
  return out;
}

/**
 * A batch item as given (an input, or `{input, options}`) on the wire (`{input, ...options}`),
 * its input checked (./json.mjs).
 * @param {unknown} item @param {string} name the job's name, for the error message @param {number} index
 * @returns {TriggerItem}
 */
function batchItem(item, name, index) {
  const wrapped = item && typeof item === "object" && !Array.isArray(item) && "input" in item && Object.keys(item).every((k) => k === "input" || k === "options");
  const { input, options } = wrapped ? /** @type {{input: unknown, options?: TriggerOptions}} */ (item) : { input: item, options: undefined };
  checkJson(input, `input for job '${name}' at index ${index}`);
  return { input, ...triggerOptions(options) };
}

/** A job of the engine: `client.jobs.<key>`. */
export class JobHandle {
  /** @param {DurablyClient} client @param {string} key @param {string} name */
  constructor(client, key, name) {
    this.client = client;
    this.key = key;
    this.name = name;
  }

  /**
   * Create a run (validated by the engine); resolves with the run and its `disposition`.
   * @param {unknown} input @param {TriggerOptions} [options] @returns {Promise<Run>}
   */
  async trigger(input, options = {}) {
    checkJson(input, `input for job '${this.name}'`);
    return this.client.call("trigger", { jobName: this.name, input, ...triggerOptions(options) });
  }

  /**
   * Trigger, then wait for the run to complete; resolves with the completed run.
   * @param {unknown} input @param {TriggerOptions & WaitOptions} [options] @returns {Promise<Run>}
   */
  async triggerAndWait(input, options = {}) {
    const { timeout, onProgress, onLog, ...rest } = options;
    /** @type {Run["disposition"]} */
    let disposition;
    const start = async () => {
      const run = await this.trigger(input, rest);
      disposition = run.disposition;
      return run.id;
    };
    const fresh = () => disposition === "created"; // the listeners saw all of this run
    const done = await followRun(this.client, start, { timeout, onProgress, onLog }, "triggerAndWait", fresh);
    return { ...done, disposition };
  }

  /**
   * Create several runs, all or nothing.
   * @param {unknown[]} items inputs, or `{input, options}` @returns {Promise<Run[]>}
   */
  async batchTrigger(items) {
    if (!Array.isArray(items)) throw new ValidationError(`items must be a list of inputs, got ${typeof items}`);
    return this.client.call("batchTrigger", { jobName: this.name, items: items.map((item, i) => batchItem(item, this.name, i)) });
  }
}

/** The page's Durably: a local instance's methods, answered by the engine a transport reaches. */
export class DurablyClient {
  /** @param {Transport} transport @param {ClientOptions} [options] */
  constructor(transport, options = {}) {
    this.transport = transport;
    /** @type {Record<string, JobHandle>} */
    this.jobs = {};
    /** False when the engine cannot list its jobs (upstream's server): `job(name)` makes handles. */
    this.listed = true;
    this.hub = new EventHub({ listen: options.listen ?? [], onChange: () => this.transport.listen(this.hub.types()) });
    /** @type {Set<(info: StatusInfo) => void>} */
    this.statusHandlers = new Set();
    if (options.onStatus) this.statusHandlers.add(options.onStatus);
    /** @type {StatusInfo} */
    this.statusInfo = { status: "booting", role: transport.role, attempt: 0, at: performance.now() };
    /** @type {ReadyInfo | null} */
    this.readyInfo = null;
  }

  /** Start the transport; resolves with this client once the engine is ready. @returns {Promise<this>} */
  async start() {
    await this.transport.start({
      status: (info) => this.setStatus(info),
      ready: (info) => this.onReady(info),
      event: (event) => this.hub.deliver(event),
      listening: () => this.hub.types(),
    });
    return this;
  }

  /** "booting" | "ready" | "restarting" | "failed" | "closed" */
  get status() {
    return this.statusInfo.status;
  }

  /**
   * Where the engine runs: "leader" (this tab's worker), "follower" (another tab's: calls,
   * subscriptions and events go through that tab; this tab leads when it goes away), "server".
   */
  get role() {
    return this.statusInfo.role;
  }

  /** The boot marks (ms since the worker started) of the last ready worker; {} for a server. */
  get marks() {
    return this.readyInfo?.marks ?? {};
  }

  /** @param {StatusInfo} info */
  setStatus(info) {
    this.statusInfo = info;
    for (const handler of [...this.statusHandlers]) handler(info);
  }

  /** @param {ReadyInfo} info */
  onReady(info) {
    this.readyInfo = info;
    this.listed = info.jobs !== null;
    for (const { key, name } of info.jobs ?? []) {
      if (!this.jobs[key]) this.jobs[key] = new JobHandle(this, key, name);
    }
  }

  /**
   * The handle of a job by key or name. An engine that cannot list its jobs (upstream's
   * server) gets a handle for any name; otherwise an unknown job is a NotFoundError.
   * @param {string} key @returns {JobHandle}
   */
  job(key) {
    const handle = this.jobs[key] ?? Object.values(this.jobs).find((h) => h.name === key);
    if (handle) return handle;
    if (!this.listed) return new JobHandle(this, key, key);
    throw new NotFoundError(`Unknown job: ${key}`);
  }

  /**
   * Send one operation of ./protocol.mjs through the transport.
   * @template {CallName} K
   * @param {K} op @param {OperationArgs[K]} args
   * @returns {Promise<WorkerResults[K]>}
   */
  call(op, args) {
    return this.transport.request(op, args, { repeatable: repeatable(op, args) });
  }

  /**
   * Call `handler` for each engine event of `type` (or "*"), or for each status change
   * (`"status"`). Returns a function that removes it. Events of a `connect({listen})` type
   * that arrived before the first handler for their type are delivered to it first.
   * @param {string} type @param {(event: any) => void} handler
   */
  on(type, handler) {
    if (type !== "status") return this.hub.on(type, handler); // checks the type: see ./events.mjs
    if (typeof handler !== "function") throw new ValidationError(`event handler must be a function, got ${typeof handler}`);
    this.statusHandlers.add(handler);
    return () => void this.statusHandlers.delete(handler);
  }

  /** Iterate over a run's events: its current state first, ending after a terminal event. @param {string} runId */
  subscribe(runId) {
    return new Subscription(runId, (sink) => this.transport.subscribe(runId, sink));
  }

  /** The run, or null. @param {string} runId */
  getRun(runId) {
    return this.call("getRun", { runId });
  }

  /** Runs, newest first. @param {OperationArgs["getRuns"]} [filter] */
  getRuns(filter = {}) {
    return this.call("getRuns", filter);
  }

  /** @param {string} runId */
  getSteps(runId) {
    return this.call("getSteps", { runId });
  }

  /** @param {string} runId */
  getLogs(runId) {
    return this.call("getLogs", { runId });
  }

  /** Cancel a pending or running run. @param {string} runId */
  cancel(runId) {
    return this.call("cancel", { runId });
  }

  /** Re-run a failed or cancelled run in place (completed steps replay). @param {string} runId */
  retry(runId) {
    return this.call("retry", { runId });
  }

  /** A new run with the same input. @param {string} runId */
  retrigger(runId) {
    return this.call("retrigger", { runId });
  }

  /** Delete a finished run with its steps and logs; resolves with what it was. @param {string} runId */
  deleteRun(runId) {
    return this.call("deleteRun", { runId });
  }

  /**
   * Delete terminal runs finished before `olderThan` ("7d", "12h", a Date or ISO text).
   * @param {{olderThan: string | Date, limit?: number}} options
   */
  purgeRuns({ olderThan, limit = 500 }) {
    return this.call("purgeRuns", { olderThan: olderThan instanceof Date ? olderThan.toISOString() : olderThan, limit });
  }

  /**
   * Resolve with the completed run; reject if it fails, is cancelled or `timeout` ms pass.
   * @param {string} runId @param {WaitOptions} [options]
   */
  waitForRun(runId, options = {}) {
    return followRun(this, async () => runId, options);
  }

  /** Resolves once the events the engine sent about `runId` before now reached the handlers. @param {string} runId */
  settle(runId) {
    return this.transport.settle(runId);
  }

  /**
   * Let go of the engine (a leader tab: stop its worker and hand the database to another tab).
   * @returns {Promise<void>} settles once the database may be opened again
   */
  close(reason = "the client was closed") {
    return this.transport.close(reason);
  }
}
