// @ts-check
/**
 * Run subscriptions and waiting, on the page.
 *
 * A `Subscription` is an async iterator over one run's events (wire form): the run's current
 * state first, then live events, ending after a terminal one. It survives a worker restart:
 * the client subscribes again on the new worker, which starts with the run's current state
 * again (so a consumer may see a state twice, never miss the end).
 */
import { DurablyError, NotFoundError, RunCancelled, RunFailed } from "./errors.mjs";

export const TERMINAL = new Set(["run:complete", "run:fail", "run:cancel", "run:delete"]);

/**
 * What `followRun` needs of a client (worker mode: DurablyClient; server mode: HttpDurablyClient).
 * @typedef {{
 *   on: (type: string, handler: (event: any) => void) => () => void,
 *   subscribe: (runId: string) => Subscription,
 *   getRun: (runId: string) => Promise<any>,
 *   settle: (runId: string) => Promise<void>,
 * }} FollowClient
 */

export class Subscription {
  /**
   * @param {string} runId
   * @param {(sub: Subscription) => void} open sends the subscribe request (again after a restart)
   * @param {(sub: Subscription, active: boolean) => void} close forgets it (and unsubscribes
   *   from the worker when `active`: the worker has not ended it yet)
   */
  constructor(runId, open, close) {
    this.runId = runId;
    /** The wire id of the current subscribe request (changes after a worker restart). */
    this.wireId = "";
    /** @type {any[]} */
    this.queue = [];
    /** @type {((result: IteratorResult<any>) => void) | null} */
    this.waiter = null;
    /** @type {((error: any) => void) | null} */
    this.failWaiter = null;
    /** @type {DurablyError | null} */
    this.error = null;
    this.done = false;
    this.openFn = open;
    this.closeFn = close;
    open(this);
  }

  /** Deliver an event pushed by the worker. @param {any} event */
  push(event) {
    if (this.done) return;
    if (TERMINAL.has(event?.type)) this.done = true;
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = this.failWaiter = null;
      waiter({ value: event, done: false });
    } else {
      this.queue.push(event);
    }
    if (this.done) this.closeFn(this, false);
  }

  /**
   * End the iteration (with an error, or after the last queued event).
   * @param {DurablyError | null} error @param {boolean} [active] the worker still runs it
   */
  end(error, active = false) {
    if (this.done && !this.queue.length && !this.waiter) return;
    this.done = true;
    this.error = error;
    this.closeFn(this, active);
    if (this.waiter && !this.queue.length) {
      const waiter = this.waiter;
      const failWaiter = this.failWaiter;
      this.waiter = this.failWaiter = null;
      if (error) failWaiter?.(error);
      else waiter({ value: undefined, done: true });
    }
  }

  /** @returns {Promise<IteratorResult<any>>} */
  next() {
    if (this.queue.length) return Promise.resolve({ value: this.queue.shift(), done: false });
    if (this.done) {
      const error = this.error;
      this.error = null;
      return error ? Promise.reject(error) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.failWaiter = reject;
    });
  }

  /** Stop early (a `break` out of `for await`). @returns {Promise<IteratorResult<any>>} */
  return() {
    this.queue = [];
    this.end(null, true);
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}

/**
 * Follow a run until it ends: resolve with the completed run, or reject.
 *
 * `start` returns the run id: for triggerAndWait it sends the trigger, so progress and log
 * callbacks are fed by event listeners registered *before* the trigger (a fast run may be
 * finished before a subscription could be opened). When the run is new (`fresh()` after
 * `start`: the trigger created it), those listeners saw all of it and only they feed the
 * callbacks; otherwise the subscription's current state gives the progress so far first
 * (in server mode the two arrive on different streams, whose order is not kept). Completion
 * comes from a subscription (its first event is the run's current state, so a run that
 * already ended is seen too, and it is re-opened after a worker restart). `client.settle(runId)` before resolving lets the
 * events sent before the end reach the callbacks first (worker: a ping round trip; server:
 * the run's terminal event on the events stream).
 *
 * @param {FollowClient} client
 * @param {() => Promise<string>} start
 * @param {{timeout?: number, onProgress?: (progress: any) => void, onLog?: (log: any) => void}} options
 *   timeout in milliseconds (as upstream Durably's waitForRun)
 * @param {string} label the name in the timeout message (waitForRun / triggerAndWait)
 * @param {() => boolean} [fresh] after `start`: whether the listeners saw the whole run
 */
export async function followRun(client, start, { timeout, onProgress, onLog } = {}, label = "waitForRun", fresh = () => false) {
  if (timeout != null && !(typeof timeout === "number" && timeout > 0 && Number.isFinite(timeout))) {
    throw new DurablyError(`timeout must be a positive number of milliseconds, got ${timeout}`, "validation_error");
  }
  /** @type {string | null} */
  let runId = null;
  /** @type {any[]} */
  const early = [];
  let lastSequence = 0;
  let lastProgress = "";
  const deliver = (/** @type {any} */ event) => {
    if (event.sequence && event.sequence <= lastSequence) return;
    lastSequence = Math.max(lastSequence, event.sequence || 0);
    if (event.type === "run:progress") {
      const key = JSON.stringify(event.progress);
      if (key === lastProgress) return;
      lastProgress = key;
      onProgress?.(event.progress);
    } else if (event.type === "log:write") {
      onLog?.(event);
    }
  };
  const tap = (/** @type {any} */ event) => {
    if (runId === null) early.push(event);
    else if (event.runId === runId) deliver(event);
  };
  const offs = [];
  if (onProgress) offs.push(client.on("run:progress", tap));
  if (onLog) offs.push(client.on("log:write", tap));
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  /** @type {Subscription | null} */
  let events = null;
  const timedOut = new Promise((_, reject) => {
    if (timeout != null) timer = setTimeout(() => reject(new DurablyError(`${label} timeout after ${timeout}ms`, "timeout")), timeout);
  });
  const follow = async () => {
    runId = await start();
    const whole = fresh();
    for (const event of early.splice(0)) if (event.runId === runId) deliver(event);
    events = client.subscribe(runId);
    for await (const event of events) {
      if (event.type === "run:progress" && !event.sequence && !whole) deliver(event); // current state
      if (!TERMINAL.has(event.type)) continue;
      if (onProgress || onLog) await client.settle(runId);
      if (event.type === "run:complete") {
        const run = await client.getRun(runId);
        if (!run) throw new NotFoundError(`Run not found: ${runId}`);
        return run;
      }
      if (event.type === "run:fail") throw new RunFailed(event.error || "Run failed");
      if (event.type === "run:cancel") throw new RunCancelled(`Run was cancelled: ${runId}`);
      throw new NotFoundError(`Run was deleted: ${runId}`);
    }
    throw new NotFoundError(`Run not found: ${runId}`);
  };
  try {
    return await Promise.race([follow(), timedOut]);
  } finally {
    clearTimeout(timer);
    for (const off of offs) off();
    /** @type {Subscription | null} */ (events)?.return();
  }
}
