// @ts-check
/**
 * The engine's Web Worker in the leader tab: its boot, its watchdog and its restarts
 * (docs/browser-protocol.md). ./worker.mjs owns it while its tab holds the lead lock and
 * gets everything else (answers, pushes) through the `EngineOwner` interface.
 *
 * - Boot: `{type: "init", config}` is posted at once, its `listen` the event types wanted
 *   at that moment (the owner's and the followers'), so the engine forwards the events of
 *   runs it reclaims at boot; the worker answers with `stage` messages, then `ready` or
 *   `boot-error`. A boot error is final (no restart): it names a cause a restart cannot fix;
 *   except {@link BOOT_STUCK}: a boot stage that never finished (an OPFS access-handle request
 *   Chromium left pending, bench/BOOT-NOTES.md), for which the worker is restarted at once
 *   (counted like the watchdog's restarts) instead of after `readyTimeout`.
 * - Requests are JSON text `{type, ...arguments, id}` (../protocol.d.ts `WorkerRequest`), the
 *   id written last so the host can answer even a request it cannot parse.
 * - Watchdog: a worker not ready within `readyTimeout`, or that leaves `missedPings` pings in
 *   a row unanswered (one is sent every `pingInterval`), is terminated and started again, at
 *   most `maxAttempts` times in a row; then the owner fails. Any message counts as an
 *   answer. Counting unanswered pings, not elapsed time, keeps a hidden tab (whose timers are
 *   throttled) from killing a live worker. The watchdog's pings use negative ids, which no
 *   request of the owner has.
 */
import { DurablyError, errorFromWire } from "../errors.mjs";

/** The boot error of a stage that never finished (../../runtime/timeouts.mjs): restart at once. */
const BOOT_STUCK = "boot_stuck";

/**
 * @typedef {import("./transport.js").ReadyInfo} ReadyInfo
 * @typedef {import("../protocol.js").WireError} WireError
 * @typedef {{ type: string, [field: string]: unknown }} Message
 * What the worker sends: its boot messages, then ../protocol.d.ts's answers and pushes.
 * @typedef {{ type: "stage", name: string, t: number }
 *   | { type: "ready", jobs: import("../protocol.js").Job[], workerId: string, marks: Record<string, number> }
 *   | { type: "boot-error", error: WireError }
 *   | import("../protocol.js").WorkerResponse
 *   | import("../protocol.js").WorkerPush} FromWorker
 * @typedef {{
 *   jobsUrl: string | null, packages?: string[], database?: string,
 *   durability?: "NORMAL" | "FULL", options?: Record<string, unknown>,
 * }} EngineConfig
 *   what the worker boots with (its init config, with `listen` added at each start)
 * @typedef {{
 *   workerUrl: string, config: EngineConfig, readyTimeout: number, pingInterval: number,
 *   missedPings: number, maxAttempts: number,
 * }} EngineWorkerOptions
 * How the worker reports to the tab's transport.
 * @typedef {{
 *   starting(restart: boolean, attempt: number): void,
 *   stage(name: string): void,
 *   ready(info: ReadyInfo): void,
 *   message(message: import("../protocol.js").WorkerResponse | import("../protocol.js").WorkerPush): void,
 *   lost(reason: string): void,
 *   failed(error: DurablyError): void,
 *   initialTypes(): string[],
 * }} EngineOwner
 *   starting: a worker starts (`restart`: not the first); lost: the worker died and is being
 *   replaced (requests in flight need an answer); failed: final; initialTypes: the event
 *   types the new worker listens for from its boot
 */

export class EngineWorker {
  /** @param {EngineOwner} owner @param {EngineWorkerOptions} options */
  constructor(owner, options) {
    this.owner = owner;
    this.options = options;
    /** The running worker (tests may terminate it behind the transport's back). @type {Worker | null} */
    this.worker = null;
    /** Starts in a row (reset once a worker stays healthy). */
    this.attempt = 0;
    this.starts = 0;
    this.unanswered = 0;
    this.pings = 0;
    this.isReady = false;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.readyTimer = undefined;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.pingTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.healthyTimer = undefined;
  }

  /** Start a worker (the first, or after a restart). */
  spawn() {
    const { workerUrl, config, readyTimeout } = this.options;
    this.attempt += 1;
    this.starts += 1;
    this.unanswered = 0;
    this.isReady = false;
    this.owner.starting(this.starts > 1, this.attempt);
    const worker = new Worker(workerUrl, { type: "module" }); // Pyodide needs a module worker
    this.worker = worker;
    worker.onmessage = (event) => this.receive(worker, event.data);
    worker.onerror = (event) => {
      event.preventDefault?.();
      if (worker !== this.worker) return;
      const detail = event.message ? `: ${event.message}` : "";
      if (this.isReady) this.restart(`the worker crashed${detail}`);
      else this.bootFailed(new DurablyError(`The engine worker ${workerUrl} failed to load${detail}. Check that \`durably-web build\` has run and that the server serves the site it built.`, "worker_failed"));
    };
    // Each start (a restart too) listens from the first event on: the new engine reclaims the
    // interrupted runs at once, before a `listen` request could reach it.
    worker.postMessage({ type: "init", config: { ...config, listen: this.owner.initialTypes() } });
    this.readyTimer = setTimeout(() => this.restart(`the worker did not report ready within ${readyTimeout} ms`), readyTimeout);
  }

  /** @param {Worker} worker @param {unknown} data JSON text (objects while booting) */
  receive(worker, data) {
    if (worker !== this.worker) return; // a message from a worker already replaced
    this.unanswered = 0;
    /** @type {FromWorker} */
    const message = typeof data === "string" ? JSON.parse(data) : data;
    switch (message?.type) {
      case "stage":
        return this.owner.stage(message.name);
      case "ready":
        return this.onReady(message);
      case "boot-error":
        if (message.error?.code === BOOT_STUCK) return this.restart(message.error.error);
        return this.bootFailed(errorFromWire(message.error));
      case "response":
      case "events":
      case "subscription":
      case "subscription-end":
        return this.owner.message(message);
      default:
        console.warn("durably_web: an unknown message from the engine worker", message);
    }
  }

  /** @param {ReadyInfo} info */
  onReady(info) {
    const { pingInterval, readyTimeout } = this.options;
    clearTimeout(this.readyTimer);
    this.isReady = true;
    this.pingTimer = setInterval(() => this.ping(), pingInterval);
    // The attempt counter resets once a worker has stayed healthy for a while, so a worker
    // that dies every few seconds still ends in "failed" instead of restarting forever.
    this.healthyTimer = setTimeout(() => (this.attempt = 0), Math.max(readyTimeout, 10 * pingInterval));
    this.owner.ready({ jobs: info.jobs, workerId: info.workerId, marks: info.marks });
  }

  ping() {
    if (this.unanswered >= this.options.missedPings) {
      this.restart(`the worker left ${this.unanswered} pings unanswered`);
      return;
    }
    this.unanswered += 1;
    this.post(-++this.pings, { type: "ping" });
  }

  /** Terminate the worker and start a new one (or fail after `maxAttempts`). @param {string} reason */
  restart(reason) {
    this.stop();
    this.owner.lost(`The engine worker restarted (${reason})`);
    if (this.attempt >= this.options.maxAttempts) {
      this.owner.failed(new DurablyError(`The engine worker failed ${this.attempt} times in a row (last: ${reason}); giving up. Reload the page to try again.`, "worker_failed"));
      return;
    }
    console.warn(`durably_web: restarting the engine worker: ${reason}`);
    this.spawn();
  }

  /** @param {DurablyError} error */
  bootFailed(error) {
    this.stop();
    this.owner.failed(error);
  }

  /** Send one request (JSON text, the id last: see above). @param {number} id @param {Message} message */
  post(id, message) {
    this.worker?.postMessage(JSON.stringify({ ...message, id }));
  }

  /** Terminate the worker; no restart. */
  stop() {
    clearTimeout(this.readyTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.healthyTimer);
    this.worker?.terminate();
    this.worker = null;
    this.isReady = false;
  }
}
