// @ts-check
/**
 * The HTTP transport: the engine in a server (durably_web.server.create_app, or upstream
 * Durably's createDurablyHandler), over `fetch` and server-sent events (role "server").
 *
 * - Requests are placed by ../protocol.mjs: each operation's method, path, and where each
 *   wire argument goes (query, repeated query, `label.<key>`, JSON body). An operation the
 *   table gives no route fails with DurablyError `not_supported`. Same-origin cookies are
 *   sent. An error answer is rebuilt by ../errors.mjs `errorFromHttp`; a network failure is
 *   DurablyError `network_error`.
 * - Answers are upstream's shapes (the table's `http.result`), turned into the engine's
 *   result (`result`) as the worker sends it: a write answers with ids only
 *   (`TriggerAnswer`, `Success`, `SuccessRunId`), so the run is read back with `GET /run`
 *   (before the request for a DELETE) and may be further along than the worker's answer
 *   (already `leased`); a `ClientRun` lacks the lease fields (null / 0) and the keys (a
 *   trigger's run gets the ones it was triggered with). `GET /run` of a missing run is 404:
 *   `getRun` resolves null.
 * - Events: one EventSource on `GET /runs/subscribe` (upstream's trimmed events: no
 *   timestamp, sequence, output or error), open while any type is listened for. A request
 *   made while it opens waits for it, so its handlers see the request's events, as with
 *   the worker.
 * - `subscribe(runId)`: an EventSource on `GET /subscribe`, closed here on the terminal
 *   event (EventSource would otherwise reconnect after the server ends the stream).
 * - Reconnects: a stream the server ends early (it cuts off a reader that falls behind, or
 *   restarts) is reopened by EventSource itself; `GET /subscribe` then starts again from the
 *   run's current state, and the events stream's status goes `restarting` → `ready` (events
 *   in the gap are lost). A stream the server refuses (an error status) is not retried: a
 *   run's stream ends with the error `GET /run` explains (404, 401, ...).
 *
 * Over HTTP/1.1 a browser opens at most 6 connections per origin and each open stream holds
 * one: keep few subscriptions open at a time (`waitForRun`/`triggerAndWait` hold one too).
 */
import { DurablyError, NotFoundError, errorFromHttp } from "../errors.mjs";
import { OPERATIONS } from "../protocol.mjs";
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
 * @typedef {import("../protocol.js").OperationInfo} OperationInfo
 * @typedef {import("../protocol.js").Run} Run
 * @typedef {import("../protocol.js").ClientRun} ClientRun
 * @typedef {import("../protocol.js").TriggerAnswer} TriggerAnswer
 * @typedef {{ url: string, streamTimeout?: number }} HttpTransportOptions
 *   url: the absolute endpoint URL (`http://127.0.0.1:8000/api/durably`);
 *   streamTimeout: ms a request waits for the events stream to open (default 10 s)
 */

/** How long `settle()` waits for a run's terminal event on the events stream. */
const SETTLE_MS = 2_000;
/** Runs whose terminal event the events stream delivered (the latest ones). */
const TERMINAL_MEMORY = 1_000;

/** @type {TransportHooks} */
const NO_HOOKS = { status: () => {}, ready: () => {}, event: () => {}, listening: () => [] };

/**
 * The JSON event an SSE `data:` frame carries; null for a frame that is not JSON (skipped).
 * @param {MessageEvent} message @returns {any}
 */
function sseEvent(message) {
  try {
    return JSON.parse(message.data);
  } catch {
    return null;
  }
}

/**
 * A ClientRun in the engine's Run wire form (what it lacks: null, or 0).
 * @param {ClientRun} run @returns {Run}
 */
export function fullRun(run) {
  const { isTerminal: _terminal, isActive: _active, ...rest } = run;
  return {
    idempotencyKey: null,
    concurrencyKey: null,
    leaseOwner: null,
    leaseExpiresAt: null,
    leaseGeneration: 0,
    ...rest,
    updatedAt: /** @type {Partial<Run>} */ (run).updatedAt ?? run.completedAt ?? run.startedAt ?? run.createdAt,
  };
}

/** @implements {Transport} */
export class HttpTransport {
  /** @param {HttpTransportOptions} options */
  constructor(options) {
    this.url = options.url.replace(/\/+$/, "");
    this.streamTimeout = options.streamTimeout ?? 10_000;
    /** @type {"server"} */
    this.role = "server";
    this.hooks = NO_HOOKS;
    /** @type {Status} */
    this.status = "booting";
    /** The events stream (`GET /runs/subscribe`) while any type is listened for. @type {EventSource | null} */
    this.events = null;
    /** Resolves once the events stream is open (or failed to open in time). @type {Promise<void>} */
    this.eventsOpen = Promise.resolve();
    /** Resolves `eventsOpen` (the stream opened, failed or was closed). */
    this.eventsOpened = () => {};
    /** @type {string[]} */
    this.terminalSeen = [];
    /** @type {Map<string, Set<() => void>>} */
    this.terminalWaiters = new Map();
    /** Every open stream and where its events go (null: the events stream). @type {Map<EventSource, SubscriptionSink | null>} */
    this.sources = new Map();
  }

  /** Learn the server's jobs (`GET /jobs`) and open the events stream; resolves when ready. @param {TransportHooks} hooks */
  async start(hooks) {
    this.hooks = hooks;
    this.setStatus("booting", { stage: "server" });
    /** @type {ReadyInfo} */
    const info = { jobs: null, marks: {} };
    try {
      try {
        info.jobs = await this.request("getJobs", {}, { repeatable: true, wait: false });
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error; // else an upstream server: no job list
      }
      this.listen(hooks.listening());
      await this.eventsOpen;
    } catch (error) {
      const failure = error instanceof DurablyError ? error : new DurablyError(String(error), "network_error");
      this.setStatus("failed", { error: failure });
      throw failure;
    }
    this.hooks.ready(info);
    this.setStatus("ready", {});
    return info;
  }

  /**
   * One operation over HTTP; resolves with the engine's result (see the module docstring).
   * @template {CallName} K
   * @param {K} op @param {OperationArgs[K]} args
   * @param {{repeatable: boolean, wait?: boolean}} options
   *   wait: first let the events stream open (so its handlers see this request's events)
   * @returns {Promise<WorkerResults[K]>}
   */
  async request(op, args, { wait = true }) {
    const info = OPERATIONS[op];
    const route = info.http;
    if (!route) throw new DurablyError(`${op} is not available over HTTP (the server has no endpoint for it)`, "not_supported");
    if (this.status === "closed") throw new DurablyError("the durably_web client is closed", "closed");
    if (wait) await this.eventsOpen;
    const fields = /** @type {Record<string, unknown>} */ (args);
    const reading = READINGS[route.result];
    const before = route.result === "Success" && route.method === "DELETE" ? await this.requireRun(String(fields.runId)) : null;
    try {
      const answer = await this.fetch(route, fields);
      return /** @type {WorkerResults[K]} */ (reading ? await reading.call(this, answer, fields, before) : answer);
    } catch (error) {
      if (error instanceof NotFoundError && info.result.endsWith("| null")) return /** @type {WorkerResults[K]} */ (null);
      throw error;
    }
  }

  /**
   * Send a request for `route` with `args` placed as it says; resolves with the JSON answer.
   * @param {NonNullable<OperationInfo["http"]>} route @param {Record<string, unknown>} args
   * @returns {Promise<unknown>}
   */
  async fetch(route, args) {
    /** @type {[string, string][]} */
    const query = [];
    /** @type {Record<string, unknown> | undefined} */
    let body;
    for (const [name, place] of Object.entries(route.params)) {
      const value = args[name];
      if (value == null) continue;
      if (place === "body") (body ??= {})[name] = value;
      else if (place === "labels") for (const [key, label] of Object.entries(/** @type {Record<string, string>} */ (value))) query.push([`label.${key}`, String(label)]);
      else if (place === "query-list") for (const item of [value].flat()) query.push([name, String(item)]);
      else query.push([name, String(value)]);
    }
    const url = this.endpoint(route.path, query);
    const where = `${route.method} ${route.path}`;
    /** @type {Response} */
    let response;
    try {
      response = await fetch(url, {
        method: route.method,
        credentials: "same-origin",
        headers: body === undefined ? { accept: "application/json" } : { accept: "application/json", "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new DurablyError(`cannot reach the durably server at ${this.url} (${where}): ${String(/** @type {any} */ (error)?.message ?? error)}`, "network_error");
    }
    const text = await response.text();
    if (!response.ok) throw errorFromHttp(response.status, response.statusText, text);
    try {
      return text ? JSON.parse(text) : null;
    } catch {
      throw new DurablyError(`${where}: the server did not answer with JSON`, "internal_error");
    }
  }

  /** @param {string} path @param {[string, string][]} [query] */
  endpoint(path, query = []) {
    const search = new URLSearchParams(query).toString();
    return `${this.url}${path}${search ? `?${search}` : ""}`;
  }

  /** The run, or NotFoundError `Run not found: <id>`. @param {string} runId @returns {Promise<Run>} */
  async requireRun(runId) {
    const run = await this.request("getRun", { runId }, { repeatable: true, wait: false });
    if (!run) throw new NotFoundError(`Run not found: ${runId}`);
    return run;
  }

  /**
   * The run of a trigger answer, with the keys it was triggered with (created with them, or
   * found by them) and its disposition.
   * @param {TriggerAnswer} answer @param {{idempotencyKey?: unknown, concurrencyKey?: unknown}} fields
   * @returns {Promise<Run>}
   */
  async triggered(answer, fields) {
    const run = await this.requireRun(answer.runId);
    return {
      ...run,
      idempotencyKey: typeof fields.idempotencyKey === "string" ? fields.idempotencyKey : run.idempotencyKey,
      concurrencyKey: typeof fields.concurrencyKey === "string" ? fields.concurrencyKey : run.concurrencyKey,
      disposition: answer.disposition ?? "created",
    };
  }

  // -- events -----------------------------------------------------------------------------

  /** Open the events stream while any type is listened for; close it when none is. @param {string[]} types */
  listen(types) {
    const wanted = types.length > 0 && this.status !== "closed";
    if (wanted && !this.events) this.openEvents();
    else if (!wanted && this.events) {
      this.closeSource(this.events);
      this.events = null;
      this.eventsOpened();
    }
  }

  openEvents() {
    const source = new EventSource(this.endpoint("/runs/subscribe"));
    this.events = source;
    /** @type {() => void} */
    let resolve = () => {};
    this.eventsOpen = new Promise((done) => (resolve = done));
    const timer = setTimeout(resolve, this.streamTimeout); // never block requests for good
    const opened = () => {
      clearTimeout(timer);
      resolve();
    };
    this.eventsOpened = opened;
    this.sources.set(source, null);
    source.onopen = () => {
      opened();
      if (this.status === "restarting") this.setStatus("ready", {});
    };
    source.onmessage = (message) => {
      const event = sseEvent(message);
      if (event === null) return;
      if (TERMINAL.has(event?.type) && event.runId) this.terminal(event.runId);
      this.hooks.event(event);
    };
    source.onerror = () => {
      if (source !== this.events) return;
      opened();
      if (source.readyState === EventSource.CLOSED) {
        // Refused (an error status, not an event stream): on() handlers get nothing more.
        console.error(`durably_web: the server refused the events stream ${this.endpoint("/runs/subscribe")}`);
        this.sources.delete(source);
        this.events = null;
      } else if (this.status === "ready") {
        this.setStatus("restarting", { stage: "events" }); // EventSource reconnects by itself
      }
    };
  }

  /** @param {string} runId */
  terminal(runId) {
    this.terminalSeen.push(runId);
    if (this.terminalSeen.length > TERMINAL_MEMORY) this.terminalSeen.shift();
    for (const wake of this.terminalWaiters.get(runId) ?? []) wake();
    this.terminalWaiters.delete(runId);
  }

  /**
   * Resolve once the events stream has delivered the run's terminal event (so every progress
   * and log before it reached the handlers; the server flushes throttled progress first), or
   * after a short while; at once when no events stream is open.
   * @param {string} runId
   */
  async settle(runId) {
    if (!this.events || this.terminalSeen.includes(runId)) return;
    await new Promise((resolve) => {
      const waiters = this.terminalWaiters.get(runId) ?? new Set();
      const wake = () => {
        clearTimeout(timer);
        waiters.delete(wake);
        resolve(undefined);
      };
      const timer = setTimeout(wake, SETTLE_MS);
      waiters.add(wake);
      this.terminalWaiters.set(runId, waiters);
    });
  }

  // -- run subscriptions ----------------------------------------------------------------

  /** Follow a run's events (`GET /subscribe`): its current state first. @param {string} runId @param {SubscriptionSink} sink */
  subscribe(runId, sink) {
    if (this.status === "closed") {
      sink.end(new DurablyError("the durably_web client is closed", "closed"));
      return () => {};
    }
    /** @type {EventSource | null} */
    let source = null;
    let stopped = false;
    const start = () => {
      if (stopped || this.status === "closed") return;
      const stream = new EventSource(this.endpoint("/subscribe", [["runId", runId]]));
      source = stream;
      this.sources.set(stream, sink);
      stream.onmessage = (message) => {
        const event = sseEvent(message);
        if (event === null) return;
        if (TERMINAL.has(event?.type)) this.closeSource(stream); // before EventSource reconnects
        sink.event(event);
      };
      stream.onerror = () => {
        if (stream.readyState !== EventSource.CLOSED) return; // reconnecting: the state comes again
        this.closeSource(stream);
        // Refused: ask GET /run why (404 for an unknown run, 401/403 from auth hooks, ...).
        this.request("getRun", { runId }, { repeatable: true, wait: false }).then(
          (run) => sink.end(run ? new DurablyError(`the server refused the event stream of run ${runId}`, "subscribe_failed") : new NotFoundError(`Run not found: ${runId}`)),
          (error) => sink.end(error),
        );
      };
    };
    // Opened after the events stream, like every request (a handler added before sees all).
    this.eventsOpen.then(start);
    return () => {
      stopped = true;
      if (source) this.closeSource(source);
    };
  }

  /** @param {EventSource} source */
  closeSource(source) {
    source.close();
    this.sources.delete(source);
  }

  /** Close every stream (open subscriptions end); later calls reject with `closed`. @returns {Promise<void>} */
  async close() {
    if (this.status === "closed") return;
    const sinks = [...this.sources.values()];
    for (const source of this.sources.keys()) source.close();
    this.sources.clear();
    this.events = null;
    this.eventsOpened();
    for (const wakers of this.terminalWaiters.values()) for (const wake of wakers) wake();
    this.terminalWaiters.clear();
    this.setStatus("closed", {});
    for (const sink of sinks) sink?.end(null);
  }

  /** @param {Status} status @param {Partial<StatusInfo>} extra */
  setStatus(status, extra) {
    this.status = status;
    this.hooks.status({ status, role: this.role, attempt: 1, at: performance.now(), ...extra });
  }
}

/**
 * How to turn each of upstream's answer shapes (protocol.mjs `http.result`) into the engine's
 * result: `this` is the transport, `args` the request's wire arguments, `before` the run read
 * before a DELETE. A shape not listed here is the engine's result as it is (steps, logs, jobs).
 * @type {Record<string, (this: HttpTransport, answer: unknown, args: Record<string, unknown>, before: Run | null) => unknown>}
 */
const READINGS = {
  ClientRun: (answer) => fullRun(/** @type {ClientRun} */ (answer)),
  "ClientRun[]": (answer) => /** @type {ClientRun[]} */ (answer).map(fullRun),
  TriggerAnswer(answer, args) {
    return this.triggered(/** @type {TriggerAnswer} */ (answer), args);
  },
  "TriggerAnswer[]"(answer, args) {
    const items = /** @type {import("../protocol.js").TriggerItem[]} */ (args.items);
    return Promise.all(/** @type {TriggerAnswer[]} */ (answer).map((entry, i) => this.triggered(entry, items[i])));
  },
  SuccessRunId(answer) {
    return this.requireRun(/** @type {import("../protocol.js").SuccessRunId} */ (answer).runId);
  },
  Success(_answer, args, before) {
    return before ?? this.requireRun(String(args.runId));
  },
};

/** The answer shapes READINGS knows (a unit test checks protocol.mjs uses no other). */
export const KNOWN_ANSWERS = Object.freeze(["Step[]", "Log[]", "Job[]", "WireEvent", "TrimmedEvent", ...Object.keys(READINGS)]);
