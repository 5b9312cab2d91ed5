// @ts-check
/**
 * Run subscriptions and waiting, on the page, over any transport.
 *
 * A `Subscription` is an async iterator over one run's events (wire form): the run's current
 * state first, then live events, ending after a terminal one. It is a transport's
 * `SubscriptionSink` (./transports/transport.d.ts): the transport keeps it fed across a
 * worker restart or a stream reconnect, which start again from the run's current state (so
 * a consumer may see a state twice, never miss the end).
 */
import { DurablyError, NotFoundError, RunCancelled, RunFailed } from "./errors.mjs";

/** The events after which a run changes no more. */
export const TERMINAL = new Set(["run:complete", "run:fail", "run:cancel", "run:delete"]);

/**
 * @typedef {import("./protocol.js").WireEvent} WireEvent
 * @typedef {import("./transports/transport.js").SubscriptionSink} SubscriptionSink
 * What `followRun` needs of a client (./client.mjs's DurablyClient).
 * @typedef {{
 *   on: (type: string, handler: (event: any) => void) => () => void,
 *   subscribe: (runId: string) => Subscription,
 *   getRun: (runId: string) => Promise<import("./protocol.js").Run | null>,
 *   settle: (runId: string) => Promise<void>,
 * }} FollowClient
 */

/** @implements {SubscriptionSink} */
export class Subscription {
  /**
   * @param {string} runId
   * @param {(sink: SubscriptionSink) => () => void} open starts the transport's subscription
   *   feeding this one; returns the function that stops it
   */
  constructor(runId, open) {
    this.runId = runId;
    /** @type {WireEvent[]} */
    this.queue = [];
    /** @type {{resolve: (result: IteratorResult<WireEvent, undefined>) => void, reject: (error: unknown) => void} | null} */
    this.waiter = null;
    /** @type {DurablyError | null} */
    this.error = null;
    this.done = false;
    /** @type {(() => void) | null} */
    this.stop = null;
    const stop = open(this);
    if (this.done) stop(); // ended while opening (a closed client)
    else this.stop = stop;
  }

  /** Deliver one of the run's events. @param {WireEvent} event */
  event(event) {
    if (this.done) return;
    if (TERMINAL.has(event.type)) this.finish();
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter.resolve({ value: event, done: false });
    } else {
      this.queue.push(event);
    }
  }

  /** End the iteration: with `error`, or after the queued events. @param {DurablyError | null} error */
  end(error) {
    if (this.done) return;
    this.error = error;
    this.finish();
    if (this.waiter) {
      // Waiting means the queue is empty: the end is delivered now, once.
      const waiter = this.waiter;
      this.waiter = null;
      this.error = null;
      if (error) waiter.reject(error);
      else waiter.resolve({ value: undefined, done: true });
    }
  }

  /** No more events: stop the transport's side (once). */
  finish() {
    this.done = true;
    const stop = this.stop;
    this.stop = null;
    stop?.();
  }

  /** @returns {Promise<IteratorResult<WireEvent, undefined>>} */
  next() {
    const event = this.queue.shift();
    if (event) return Promise.resolve({ value: event, done: false });
    if (this.done) {
      const error = this.error;
      this.error = null;
      return error ? Promise.reject(error) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /** Stop early (a `break` out of `for await`). @returns {Promise<IteratorResult<WireEvent, undefined>>} */
  return() {
    this.queue = [];
    this.end(null);
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
 * already ended is seen too; the transport keeps it going across restarts and reconnects).
 * `client.settle(runId)` before resolving lets the events sent before the end reach the
 * callbacks first (worker: a ping round trip; server: the run's terminal event on the
 * events stream).
 *
 * Events are `any` here: over HTTP they are upstream's trimmed form (no sequence).
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
    const id = await start();
    runId = id;
    const whole = fresh();
    for (const event of early.splice(0)) if (event.runId === id) deliver(event);
    events = client.subscribe(id);
    for await (const event of events) {
      if (event.type === "run:progress" && !event.sequence && !whole) deliver(event); // current state
      if (!TERMINAL.has(event.type)) continue;
      if (onProgress || onLog) await client.settle(id);
      if (event.type === "run:complete") {
        const run = await client.getRun(id);
        if (!run) throw new NotFoundError(`Run not found: ${id}`);
        return run;
      }
      if (event.type === "run:fail") throw new RunFailed(event.error || "Run failed");
      if (event.type === "run:cancel") throw new RunCancelled(`Run was cancelled: ${id}`);
      throw new NotFoundError(`Run was deleted: ${id}`);
    }
    throw new NotFoundError(`Run not found: ${id}`);
  };
  try {
    return await Promise.race([follow(), timedOut]);
  } finally {
    clearTimeout(timer);
    for (const off of offs) off();
    /** @type {Subscription | null} */ (events)?.return();
  }
}
