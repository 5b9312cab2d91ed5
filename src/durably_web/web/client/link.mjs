// @ts-check
/**
 * The page's link to the engine worker: tab ownership, boot, requests, watchdog, restarts.
 *
 * - Ownership: the Web Lock `durably-web:<database>` is taken with `ifAvailable` before any
 *   worker starts and held until `close()`; without it `start()` fails with ConflictError
 *   `open_in_another_tab` (only one engine per origin can own the OPFS pool).
 * - Boot: `{type: "init", config}` is posted at once, its `listen` the event types the page
 *   wants at that moment (`listenTypes()`), so the engine forwards the events of runs it
 *   reclaims at boot; the worker answers with `stage` messages, then `ready` or `boot-error`
 *   (docs/browser-protocol.md). A boot error is final (no restart): it names a cause a
 *   restart cannot fix.
 * - Requests are JSON text `{type, id, ...}` with a pending map; each gets one `response`.
 * - Watchdog: a worker not ready within `readyTimeout`, or that leaves `missedPings` pings in
 *   a row unanswered (one is sent every `pingInterval`), is terminated and started again, at
 *   most `maxAttempts` times in a row; then the link fails. Counting unanswered pings, not
 *   elapsed time, keeps a hidden tab (whose timers are throttled) from killing a live worker.
 * - After a restart, requests marked `retry` are sent again; the others in flight are
 *   rejected with `worker_restarted`, because the dead worker may or may not have applied them.
 */
import { ConflictError, DurablyError, errorFromWire } from "./errors.mjs";

/** @typedef {"booting" | "ready" | "restarting" | "failed" | "open-in-another-tab" | "closed"} Status */
/**
 * @typedef {{ status: Status, stage?: string, attempt: number, error?: DurablyError,
 *             marks?: Record<string, number>, at: number }} StatusInfo
 *   `at`: when it happened (`performance.now()` of the page)
 * @typedef {{ jobs: {key: string, name: string}[], workerId: string, marks: Record<string, number> }} ReadyInfo
 * @typedef {{ message: Record<string, any>, retry: boolean, sent: boolean,
 *             resolve: (value: any) => void, reject: (error: any) => void }} Pending
 * @typedef {{ workerUrl: string, config: Record<string, any>, lockName: string,
 *             readyTimeout: number, pingInterval: number, missedPings: number, maxAttempts: number,
 *             onStatus: (info: StatusInfo) => void, onPush: (message: any) => void,
 *             listenTypes: () => string[],
 *             onReady: (info: ReadyInfo, restarted: boolean) => void }} LinkOptions
 */

export class EngineLink {
  /** @param {LinkOptions} options */
  constructor(options) {
    this.options = options;
    /** @type {Status} */
    this.status = "booting";
    /** @type {Worker | null} */
    this.worker = null;
    this.attempt = 0;
    this.starts = 0;
    /** @type {Map<number, Pending>} */
    this.pending = new Map();
    this.nextId = 1;
    this.unanswered = 0;
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
    /** @type {{resolve: (info: ReadyInfo) => void, reject: (error: any) => void} | null} */
    this.firstReady = null;
  }

  /** Take the tab lock and boot the worker; resolves at the first `ready`. @returns {Promise<ReadyInfo>} */
  async start() {
    await this.acquireLock();
    return new Promise((resolve, reject) => {
      this.firstReady = { resolve, reject };
      this.spawn();
    });
  }

  async acquireLock() {
    const locks = /** @type {any} */ (globalThis.navigator)?.locks;
    if (!locks?.request) {
      throw this.fail(new DurablyError("This browser has no Web Locks API (navigator.locks), which durably_web needs to keep two tabs from opening one database; use a current browser over https or localhost.", "web_locks_unavailable"));
    }
    /** @type {Promise<void>} */
    const held = new Promise((resolve) => (this.releaseLock = resolve));
    const granted = await new Promise((resolve, reject) => {
      // The request's promise settles once the lock is released again (close()).
      this.lockReleased = locks.request(this.options.lockName, { ifAvailable: true }, (/** @type {any} */ lock) => {
        resolve(Boolean(lock));
        return lock ? held : undefined;
      });
      this.lockReleased.catch(reject);
    });
    if (!granted) {
      const error = new ConflictError(`The database ${JSON.stringify(this.options.config.database)} is open in another tab of this site. Only one tab at a time can run the engine: close the other tab (or use it), then reload this one.`, "open_in_another_tab");
      this.setStatus("open-in-another-tab", { error });
      throw error;
    }
  }

  spawn() {
    this.attempt += 1;
    this.starts += 1;
    this.unanswered = 0;
    this.ready = null;
    this.setStatus(this.starts === 1 ? "booting" : "restarting", { stage: "worker" });
    const worker = new Worker(this.options.workerUrl, { type: "module" }); // Pyodide needs a module worker
    this.worker = worker;
    worker.onmessage = (event) => this.receive(worker, event.data);
    worker.onerror = (event) => {
      event.preventDefault?.();
      if (worker !== this.worker) return;
      const detail = event.message ? `: ${event.message}` : "";
      if (this.ready) this.restart(`the worker crashed${detail}`);
      else this.bootFailed(new DurablyError(`The engine worker ${this.options.workerUrl} failed to load${detail}. Check that \`durably-web build\` has run and that the server serves the site it built.`, "worker_failed"));
    };
    // Each start (a restart too) listens from the first event on: the new engine reclaims the
    // interrupted runs at once, before the page could send a `listen` request.
    worker.postMessage({ type: "init", config: { ...this.options.config, listen: this.options.listenTypes() } });
    this.readyTimer = setTimeout(() => this.restart(`the worker did not report ready within ${this.options.readyTimeout} ms`), this.options.readyTimeout);
  }

  /** @param {Worker} worker @param {any} data */
  receive(worker, data) {
    if (worker !== this.worker) return; // a message from a worker already replaced
    this.unanswered = 0;
    const message = typeof data === "string" ? JSON.parse(data) : data;
    switch (message?.type) {
      case "stage":
        return this.setStatus(this.status, { stage: message.name });
      case "ready":
        return this.onReady(message);
      case "boot-error":
        return this.bootFailed(errorFromWire(message.error));
      case "response": {
        const pending = this.pending.get(message.id);
        if (!pending) return;
        this.pending.delete(message.id);
        if (message.ok) pending.resolve(message.result);
        else pending.reject(errorFromWire(message.error));
        return;
      }
      default:
        return this.options.onPush(message);
    }
  }

  /** @param {ReadyInfo} info */
  onReady(info) {
    clearTimeout(this.readyTimer);
    const restarted = this.starts > 1;
    this.ready = { jobs: info.jobs, workerId: info.workerId, marks: info.marks };
    this.pingTimer = setInterval(() => this.ping(), this.options.pingInterval);
    // The attempt counter resets once a worker has stayed healthy for a while, so a worker
    // that dies every few seconds still ends in "failed" instead of restarting forever.
    this.healthyTimer = setTimeout(() => (this.attempt = 0), Math.max(this.options.readyTimeout, 10 * this.options.pingInterval));
    this.setStatus("ready", { marks: info.marks });
    this.options.onReady(this.ready, restarted);
    for (const [id, pending] of this.pending) {
      if (!pending.sent) this.post(id, pending);
    }
    this.firstReady?.resolve(this.ready);
    this.firstReady = null;
  }

  ping() {
    if (this.unanswered >= this.options.missedPings) {
      this.restart(`the worker left ${this.unanswered} pings unanswered`);
      return;
    }
    this.unanswered += 1;
    this.request({ type: "ping" }, { retry: false }).catch(() => {});
  }

  /** Terminate the worker and start a new one (or fail after `maxAttempts`). @param {string} reason */
  restart(reason) {
    if (this.status === "failed" || this.status === "closed") return;
    this.stopWorker();
    for (const [id, pending] of this.pending) {
      if (pending.retry) pending.sent = false;
      else {
        this.pending.delete(id);
        pending.reject(new DurablyError(`The engine worker restarted (${reason}) while this ${pending.message.type} request was in flight; it may or may not have been applied. Check the run's state before repeating it (a trigger with an idempotencyKey is retried automatically).`, "worker_restarted"));
      }
    }
    if (this.attempt >= this.options.maxAttempts) {
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

  /** Enter the final "failed" state: reject everything. @param {DurablyError} error */
  fail(error) {
    this.stopWorker();
    this.releaseLock();
    this.setStatus("failed", { error });
    this.rejectAll(error);
    return error;
  }

  /** @param {DurablyError} error */
  rejectAll(error) {
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
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

  /**
   * Send a request; resolves with its result or rejects with a DurablyError.
   * @param {Record<string, any>} message `{type, ...fields}` (the id is added)
   * @param {{retry?: boolean, id?: number}} [options] retry: resend after a worker restart
   * @returns {Promise<any>}
   */
  request(message, { retry = true, id = this.allocateId() } = {}) {
    if (this.status === "failed" || this.status === "closed" || this.status === "open-in-another-tab") {
      return Promise.reject(new DurablyError(`the durably_web client is ${this.status}`, "closed"));
    }
    return new Promise((resolve, reject) => {
      const pending = { message, retry, sent: false, resolve, reject };
      this.pending.set(id, pending);
      if (this.ready) this.post(id, pending);
    });
  }

  allocateId() {
    return this.nextId++;
  }

  /** @param {number} id @param {Pending} pending */
  post(id, pending) {
    pending.sent = true;
    this.worker?.postMessage(JSON.stringify({ ...pending.message, id }));
  }

  /**
   * Stop the worker, release the tab lock; pending requests reject with `closed`.
   * @returns {Promise<void>} settles once another client may open the database
   */
  async close(reason = "the client was closed") {
    if (this.status !== "closed") {
      this.stopWorker();
      this.releaseLock();
      this.setStatus("closed", {});
      this.rejectAll(new DurablyError(reason, "closed"));
    }
    await this.lockReleased.catch(() => {});
  }

  /** @param {Status} status @param {Partial<StatusInfo>} extra */
  setStatus(status, extra) {
    this.status = status;
    this.options.onStatus({ status, attempt: this.attempt, at: performance.now(), ...extra });
  }
}
