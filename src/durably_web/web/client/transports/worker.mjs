// @ts-check
/**
 * The worker transport: the engine in a Web Worker of this tab (role "leader"). It owns the
 * tab lock, the boot, the requests, the watchdog and the restarts (docs/browser-protocol.md).
 *
 * - Ownership: the Web Lock `durably-web:<database>` is taken with `ifAvailable` before any
 *   worker starts and held until `close()`; without it `start()` fails with ConflictError
 *   `open_in_another_tab` (only one engine per origin can own the OPFS pool).
 * - Boot: `{type: "init", config}` is posted at once, its `listen` the event types the client
 *   wants at that moment, so the engine forwards the events of runs it reclaims at boot; the
 *   worker answers with `stage` messages, then `ready` or `boot-error`. A boot error is final
 *   (no restart): it names a cause a restart cannot fix.
 * - Requests are JSON text `{type, id, ...arguments}` (../protocol.d.ts `WorkerRequest`), the
 *   id written last so the host can answer even a request it cannot parse; each gets one
 *   `response`. Requests made while the worker (re)starts wait for it.
 * - Watchdog: a worker not ready within `readyTimeout`, or that leaves `missedPings` pings in
 *   a row unanswered (one is sent every `pingInterval`), is terminated and started again, at
 *   most `maxAttempts` times in a row; then the transport fails. Counting unanswered pings, not
 *   elapsed time, keeps a hidden tab (whose timers are throttled) from killing a live worker.
 * - After a restart, repeatable requests in flight are sent again; the others reject with
 *   `worker_restarted`, because the dead worker may or may not have applied them. Every open
 *   subscription is opened again (the new worker starts it from the run's current state), and
 *   the event types the client listens for are in the new worker's init config.
 */
import { ConflictError, DurablyError, errorFromWire } from "../errors.mjs";
import { TERMINAL } from "../subscription.mjs";

/**
 * @typedef {import("./transport.js").Transport} Transport
 * @typedef {import("./transport.js").TransportHooks} TransportHooks
 * @typedef {import("./transport.js").Status} Status
 * @typedef {import("./transport.js").StatusInfo} StatusInfo
 * @typedef {import("./transport.js").ReadyInfo} ReadyInfo
 * @typedef {import("./transport.js").SubscriptionSink} SubscriptionSink
 * @typedef {import("./transport.js").CallName} CallName
 * @typedef {import("../protocol.js").OperationArgs} OperationArgs
 * @typedef {import("../protocol.js").WorkerResults} WorkerResults
 * @typedef {import("../protocol.js").WireEvent} WireEvent
 * @typedef {import("../protocol.js").WireError} WireError
 * @typedef {{ type: string, [field: string]: unknown }} Message
 * @typedef {{ message: Message, repeatable: boolean, sent: boolean,
 *             resolve: (value: unknown) => void, reject: (error: DurablyError) => void }} Pending
 * What the worker sends: its boot messages, then ../protocol.d.ts's answers and pushes.
 * @typedef {{ type: "stage", name: string, t: number }
 *   | { type: "ready", jobs: import("../protocol.js").Job[], workerId: string, marks: Record<string, number> }
 *   | { type: "boot-error", error: WireError }
 *   | import("../protocol.js").WorkerResponse
 *   | import("../protocol.js").WorkerPush} FromWorker
 * @typedef {{ runId: string, sink: SubscriptionSink, wireId: string }} Entry
 * @typedef {{
 *   jobsUrl: string | null, packages?: string[], database?: string,
 *   durability?: "NORMAL" | "FULL", options?: Record<string, unknown>,
 * }} EngineConfig
 *   what the worker boots with (its init config, with `listen` added at each start)
 * @typedef {{
 *   workerUrl: string, config: EngineConfig, readyTimeout?: number, pingInterval?: number,
 *   missedPings?: number, maxAttempts?: number,
 * }} WorkerTransportOptions
 *   readyTimeout / pingInterval: ms (30 s / 2 s); missedPings (3): unanswered pings in a row
 *   before a restart; maxAttempts (3): starts in a row before the transport fails
 */

/** @type {TransportHooks} */
const NO_HOOKS = { status: () => {}, ready: () => {}, event: () => {}, listening: () => [] };

/** @implements {Transport} */
export class WorkerTransport {
  /** @param {WorkerTransportOptions} options */
  constructor(options) {
    const { jobsUrl, packages = [], database = "/durably.db", durability = "NORMAL", options: engineOptions = {} } = options.config;
    this.workerUrl = options.workerUrl;
    /** @type {EngineConfig} */
    this.config = { jobsUrl, packages, database, durability, options: engineOptions };
    this.lockName = `durably-web:${database}`;
    this.readyTimeout = options.readyTimeout ?? 30_000;
    this.pingInterval = options.pingInterval ?? 2_000;
    this.missedPings = options.missedPings ?? 3;
    this.maxAttempts = options.maxAttempts ?? 3;
    /** @type {"leader"} */
    this.role = "leader";
    this.hooks = NO_HOOKS;
    /** @type {Status} */
    this.status = "booting";
    /** The running worker (tests may terminate it behind the transport's back). @type {Worker | null} */
    this.worker = null;
    /** Starts in a row (reset once a worker stays healthy). */
    this.attempt = 0;
    this.starts = 0;
    /** @type {Map<number, Pending>} */
    this.pending = new Map();
    /** Open subscriptions by the id of their current subscribe request. @type {Map<string, Entry>} */
    this.subscriptions = new Map();
    this.nextId = 1;
    this.unanswered = 0;
    /** The event types the worker forwards (sorted, joined). */
    this.listening = "";
    /** @type {ReadyInfo | null} */
    this.ready = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.readyTimer = undefined;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.pingTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.healthyTimer = undefined;
    /** @type {() => void} */
    this.releaseLock = () => {};
    /** @type {Promise<unknown>} */
    this.lockReleased = Promise.resolve();
    /** @type {{resolve: (info: ReadyInfo) => void, reject: (error: DurablyError) => void} | null} */
    this.firstReady = null;
  }

  /** Take the tab lock and boot the worker; resolves at the first `ready`. @param {TransportHooks} hooks @returns {Promise<ReadyInfo>} */
  async start(hooks) {
    this.hooks = hooks;
    await this.acquireLock();
    return new Promise((resolve, reject) => {
      this.firstReady = { resolve, reject };
      this.spawn();
    });
  }

  async acquireLock() {
    const locks = globalThis.navigator?.locks;
    if (!locks?.request) {
      throw this.fail(new DurablyError("This browser has no Web Locks API (navigator.locks), which durably_web needs to keep two tabs from opening one database; use a current browser over https or localhost.", "web_locks_unavailable"));
    }
    /** @type {Promise<void>} */
    const held = new Promise((resolve) => (this.releaseLock = resolve));
    const granted = await new Promise((resolve, reject) => {
      // The request's promise settles once the lock is released again (close()).
      this.lockReleased = locks.request(this.lockName, { ifAvailable: true }, (lock) => {
        resolve(Boolean(lock));
        return lock ? held : undefined;
      });
      this.lockReleased.catch(reject);
    });
    if (!granted) {
      const error = new ConflictError(`The database ${JSON.stringify(this.config.database)} is open in another tab of this site. Only one tab at a time can run the engine: close the other tab (or use it), then reload this one.`, "open_in_another_tab");
      this.setStatus("open-in-another-tab", { error });
      this.endSubscriptions(error);
      this.rejectAll(error);
      throw error;
    }
  }

  spawn() {
    this.attempt += 1;
    this.starts += 1;
    this.unanswered = 0;
    this.ready = null;
    this.setStatus(this.starts === 1 ? "booting" : "restarting", { stage: "worker" });
    const worker = new Worker(this.workerUrl, { type: "module" }); // Pyodide needs a module worker
    this.worker = worker;
    worker.onmessage = (event) => this.receive(worker, event.data);
    worker.onerror = (event) => {
      event.preventDefault?.();
      if (worker !== this.worker) return;
      const detail = event.message ? `: ${event.message}` : "";
      if (this.ready) this.restart(`the worker crashed${detail}`);
      else this.bootFailed(new DurablyError(`The engine worker ${this.workerUrl} failed to load${detail}. Check that \`durably-web build\` has run and that the server serves the site it built.`, "worker_failed"));
    };
    // Each start (a restart too) listens from the first event on: the new engine reclaims the
    // interrupted runs at once, before a `listen` request could reach it.
    const listen = this.hooks.listening();
    this.listening = listen.join(",");
    worker.postMessage({ type: "init", config: { ...this.config, listen } });
    this.readyTimer = setTimeout(() => this.restart(`the worker did not report ready within ${this.readyTimeout} ms`), this.readyTimeout);
  }

  /** @param {Worker} worker @param {unknown} data JSON text (objects while booting) */
  receive(worker, data) {
    if (worker !== this.worker) return; // a message from a worker already replaced
    this.unanswered = 0;
    /** @type {FromWorker} */
    const message = typeof data === "string" ? JSON.parse(data) : data;
    switch (message?.type) {
      case "stage":
        return this.setStatus(this.status, { stage: message.name });
      case "ready":
        return this.onReady(message);
      case "boot-error":
        return this.bootFailed(errorFromWire(message.error));
      case "response":
        return this.answer(message);
      case "events":
        for (const event of message.events) this.hooks.event(event);
        return;
      case "subscription":
        return this.pushed(message.id, message.event);
      case "subscription-end": {
        const entry = this.subscriptions.get(message.id);
        this.subscriptions.delete(message.id);
        return entry?.sink.end(message.error ? errorFromWire(message.error) : null);
      }
      default:
        console.warn("durably_web: an unknown message from the engine worker", message);
    }
  }

  /** @param {import("../protocol.js").WorkerResponse} message */
  answer(message) {
    const pending = message.id === null ? undefined : this.pending.get(message.id);
    if (!pending || message.id === null) return;
    this.pending.delete(message.id);
    if (message.ok) pending.resolve(message.result);
    else pending.reject(errorFromWire(message.error));
  }

  /** @param {string} id @param {WireEvent} event */
  pushed(id, event) {
    const entry = this.subscriptions.get(id);
    if (!entry) return;
    if (TERMINAL.has(event.type)) this.subscriptions.delete(id); // the worker ends it itself
    entry.sink.event(event);
  }

  /** @param {ReadyInfo} info */
  onReady(info) {
    clearTimeout(this.readyTimer);
    this.ready = { jobs: info.jobs, workerId: info.workerId, marks: info.marks };
    this.pingTimer = setInterval(() => this.ping(), this.pingInterval);
    // The attempt counter resets once a worker has stayed healthy for a while, so a worker
    // that dies every few seconds still ends in "failed" instead of restarting forever.
    this.healthyTimer = setTimeout(() => (this.attempt = 0), Math.max(this.readyTimeout, 10 * this.pingInterval));
    this.setStatus("ready", { marks: info.marks });
    this.hooks.ready(this.ready);
    this.listen(this.hooks.listening()); // what changed while the worker booted
    for (const entry of [...this.subscriptions.values()]) this.open(entry);
    for (const [id, pending] of this.pending) {
      if (!pending.sent) this.post(id, pending);
    }
    this.firstReady?.resolve(this.ready);
    this.firstReady = null;
  }

  ping() {
    if (this.unanswered >= this.missedPings) {
      this.restart(`the worker left ${this.unanswered} pings unanswered`);
      return;
    }
    this.unanswered += 1;
    this.send({ type: "ping" }, false).catch(() => {});
  }

  /** Terminate the worker and start a new one (or fail after `maxAttempts`). @param {string} reason */
  restart(reason) {
    if (this.final()) return;
    this.stopWorker();
    for (const [id, pending] of this.pending) {
      if (pending.repeatable) pending.sent = false;
      else {
        this.pending.delete(id);
        pending.reject(new DurablyError(`The engine worker restarted (${reason}) while this ${pending.message.type} request was in flight; it may or may not have been applied. Check the run's state before repeating it (a trigger with an idempotencyKey is sent again by itself).`, "worker_restarted"));
      }
    }
    if (this.attempt >= this.maxAttempts) {
      this.fail(new DurablyError(`The engine worker failed ${this.attempt} times in a row (last: ${reason}); giving up. Reload the page to try again.`, "worker_failed"));
      return;
    }
    console.warn(`durably_web: restarting the engine worker: ${reason}`);
    this.spawn();
  }

  /** @param {DurablyError} error */
  bootFailed(error) {
    this.stopWorker();
    this.fail(error);
  }

  /** Enter the final "failed" state: reject everything, end every subscription. @param {DurablyError} error */
  fail(error) {
    this.stopWorker();
    this.releaseLock();
    this.setStatus("failed", { error });
    this.endSubscriptions(error);
    this.rejectAll(error);
    return error;
  }

  /** @param {DurablyError | null} error */
  endSubscriptions(error) {
    const entries = [...this.subscriptions.values()];
    this.subscriptions.clear();
    for (const entry of entries) entry.sink.end(error);
  }

  /** @param {DurablyError} error */
  rejectAll(error) {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const { reject } of pending) reject(error);
    this.firstReady?.reject(error);
    this.firstReady = null;
  }

  stopWorker() {
    clearTimeout(this.readyTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.healthyTimer);
    this.worker?.terminate();
    this.worker = null;
    this.ready = null;
  }

  /** No engine any more: every request rejects. */
  final() {
    return this.status === "failed" || this.status === "closed" || this.status === "open-in-another-tab";
  }

  /**
   * @template {CallName} K
   * @param {K} op @param {OperationArgs[K]} args @param {{repeatable: boolean}} options
   * @returns {Promise<WorkerResults[K]>}
   */
  request(op, args, { repeatable }) {
    return /** @type {Promise<WorkerResults[K]>} */ (this.send({ type: op, ...args }, repeatable));
  }

  /**
   * Send a message `{type, ...fields}` (the id is added); resolves with its result.
   * @param {Message} message @param {boolean} repeatable send again after a restart
   * @param {number} [id]
   * @returns {Promise<unknown>}
   */
  send(message, repeatable, id = this.nextId++) {
    if (this.final()) return Promise.reject(new DurablyError(`the durably_web client is ${this.status}`, "closed"));
    return new Promise((resolve, reject) => {
      const pending = { message, repeatable, sent: false, resolve, reject };
      this.pending.set(id, pending);
      if (this.ready) this.post(id, pending);
    });
  }

  /** @param {number} id @param {Pending} pending */
  post(id, pending) {
    pending.sent = true;
    this.worker?.postMessage(JSON.stringify({ ...pending.message, id })); // id last: see above
  }

  /** Tell the worker which event types to forward (the next start's init config has them too). @param {string[]} types */
  listen(types) {
    const key = types.join(",");
    if (!this.ready || key === this.listening) return;
    this.listening = key;
    // Not repeatable: after a restart the init config carries the types wanted then.
    this.send({ type: "listen", events: types }, false).catch((error) => {
      if (error?.code !== "worker_restarted" && error?.code !== "closed") console.error("durably_web: listen failed", error);
    });
  }

  /** @param {string} runId @param {SubscriptionSink} sink */
  subscribe(runId, sink) {
    if (this.final()) {
      sink.end(new DurablyError(`the durably_web client is ${this.status}`, "closed"));
      return () => {};
    }
    const entry = { runId, sink, wireId: "" };
    this.open(entry);
    return () => {
      if (this.subscriptions.get(entry.wireId) !== entry) return; // ended already
      this.subscriptions.delete(entry.wireId);
      if (this.ready) this.send({ type: "unsubscribe", subscription: entry.wireId }, false).catch(() => {});
    };
  }

  /** Send the subscribe request of `entry` (again after a restart, under a new id). @param {Entry} entry */
  open(entry) {
    this.subscriptions.delete(entry.wireId);
    const id = this.nextId++;
    entry.wireId = String(id);
    this.subscriptions.set(entry.wireId, entry);
    this.send({ type: "subscribe", runId: entry.runId }, false, id).catch((error) => {
      // After a restart it is opened again under a new id; other errors end it.
      if (error?.code === "worker_restarted" || this.subscriptions.get(entry.wireId) !== entry) return;
      this.subscriptions.delete(entry.wireId);
      entry.sink.end(error);
    });
  }

  /** Resolves once the events the worker sent before now were delivered: a ping round trip. @param {string} _runId */
  async settle(_runId) {
    await this.send({ type: "ping" }, true).catch(() => {});
  }

  /**
   * Stop the worker, release the tab lock; pending requests reject with `closed`, open
   * subscriptions end.
   * @returns {Promise<void>} settles once another client may open the database
   */
  async close(reason = "the client was closed") {
    if (this.status !== "closed") {
      this.stopWorker();
      this.releaseLock();
      this.setStatus("closed", {});
      this.endSubscriptions(null);
      this.rejectAll(new DurablyError(reason, "closed"));
    }
    await this.lockReleased.catch(() => {});
  }

  /** @param {Status} status @param {Partial<StatusInfo>} extra */
  setStatus(status, extra) {
    this.status = status;
    this.hooks.status({ status, role: this.role, attempt: this.attempt, at: performance.now(), ...extra });
  }
}
