// @ts-check
/**
 * Server-connected mode: the page's Durably over a server's HTTP + SSE endpoints
 * (durably_web.server.create_app, or upstream Durably's createDurablyHandler), with the
 * interface of the worker-mode DurablyClient (./durably.mjs).
 *
 * - Requests are `fetch` calls (same-origin cookies are sent); an error answer
 *   `{"error", "code"}` is rebuilt as the same DurablyError class (from the status when the
 *   server sends no code, as upstream does); a network failure is DurablyError `network_error`.
 * - Writes answer with ids only (`POST /trigger` → `{runId, disposition}`), so trigger,
 *   cancel, retry and retrigger read the run back with `GET /run`: the run returned may be
 *   further along than the worker mode's (already `leased`). Runs come as upstream's
 *   ClientRun: the lease fields it lacks are filled in as `null` / 0, and a trigger's run gets
 *   the idempotency and concurrency keys it was triggered with.
 * - `on()` handlers share one EventSource on `GET /runs/subscribe` (upstream's trimmed events:
 *   no timestamp, sequence, output or error), open while any type is listened for. A request
 *   made after `on()` waits until that stream is open, so it sees the request's events, as
 *   in worker mode.
 * - `subscribe(runId)` is an EventSource on `GET /subscribe` (the run's state first), closed
 *   here on the terminal event: EventSource would otherwise reconnect after the server ends
 *   the stream. A stream the server refuses (404, 401, ...) ends the iteration with the error
 *   `GET /run` explains.
 *
 * Over HTTP/1.1 a browser opens at most 6 connections per origin and each open stream holds
 * one: keep few subscriptions open at a time (`waitForRun`/`triggerAndWait` hold one too).
 */
import { DurablyError, NotFoundError, ValidationError, errorFromWire } from "./errors.mjs";
import { EventHub } from "./events.mjs";
import { JobHandle, checkedItems } from "./durably.mjs";
import { checkJson } from "./json.mjs";
import { Subscription, TERMINAL, followRun } from "./subscription.mjs";

/**
 * @typedef {import("./link.mjs").StatusInfo} StatusInfo
 * @typedef {import("./durably.mjs").TriggerOptions} TriggerOptions
 * @typedef {import("./durably.mjs").WaitOptions} WaitOptions
 * @typedef {{ url: string, listen?: string[], onStatus?: (info: StatusInfo) => void,
 *             streamTimeout?: number }} HttpConnectOptions
 *   url: the absolute endpoint URL (`http://127.0.0.1:8000/api/durably`);
 *   streamTimeout: ms a request waits for the events stream to open (default 10 s)
 */

const BY_STATUS = { 400: "validation_error", 404: "not_found", 409: "conflict" };
/** How long `settle()` waits for a run's terminal event on the events stream. */
const SETTLE_MS = 2_000;
/** Runs whose terminal event the events stream delivered (the latest ones). */
const TERMINAL_MEMORY = 1_000;

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

/** @param {TriggerOptions} [options] */
function triggerFields(options = {}) {
  /** @type {Record<string, any>} */
  const out = {};
  for (const key of /** @type {const} */ (["idempotencyKey", "concurrencyKey", "labels", "coalesce"])) {
    if (options[key] != null) out[key] = options[key];
  }
  return out;
}

/**
 * A ClientRun in the full Run wire form of worker mode (what it lacks: null, or 0).
 * @param {any} run
 */
function fullRun(run) {
  return {
    idempotencyKey: null,
    concurrencyKey: null,
    leaseOwner: null,
    leaseExpiresAt: null,
    leaseGeneration: 0,
    ...run,
    updatedAt: run.updatedAt ?? run.completedAt ?? run.startedAt ?? run.createdAt ?? null,
  };
}

/** A job on the server: `client.jobs.<key>`. */
export class HttpJobHandle extends JobHandle {
  /** @param {HttpDurablyClient} client @param {string} key @param {string} name */
  constructor(client, key, name) {
    super(/** @type {any} */ (client), key, name);
    this.http = client;
  }

  /** Create a run (`POST /trigger`); resolves with the run and its `disposition`. @param {any} input @param {TriggerOptions} [options] */
  async trigger(input, options = {}) {
    checkJson(input, `input for job '${this.name}'`);
    const fields = triggerFields(options);
    const answer = await this.http.request("POST", "/trigger", { body: { jobName: this.name, input, ...fields } });
    return this.http.triggered(answer, fields);
  }

  /** Create several runs, all or nothing (`POST /batch-trigger`). @param {any[]} items inputs, or `{input, options}` */
  async batchTrigger(items) {
    const normal = checkedItems(items, this.name).map((item) => ({ input: item.input, fields: triggerFields(item.options) }));
    const answer = await this.http.request("POST", "/batch-trigger", {
      body: { jobName: this.name, items: normal.map(({ input, fields }) => ({ input, ...fields })) },
    });
    return Promise.all(answer.map((/** @type {any} */ entry, /** @type {number} */ i) => this.http.triggered(entry, normal[i].fields)));
  }
}

/** The page's Durably over a server: the worker-mode client's methods, answered over HTTP. */
export class HttpDurablyClient {
  /** @param {HttpConnectOptions} options */
  constructor(options) {
    this.url = options.url.replace(/\/+$/, "");
    /** @type {Record<string, HttpJobHandle>} */
    this.jobs = {};
    /** False when the server cannot list its jobs (upstream): `job(name)` makes handles. */
    this.listed = true;
    /** @type {Set<(info: StatusInfo) => void>} */
    this.statusHandlers = new Set();
    if (options.onStatus) this.statusHandlers.add(options.onStatus);
    /** @type {StatusInfo} */
    this.statusInfo = { status: "booting", attempt: 0, at: performance.now() };
    this.streamTimeout = options.streamTimeout ?? 10_000;
    this.hub = new EventHub({ listen: options.listen ?? [], onChange: () => this.syncStream() });
    /** @type {EventSource | null} */
    this.events = null;
    /** Resolves once the events stream is open (or failed to open in time). @type {Promise<void>} */
    this.eventsOpen = Promise.resolve();
    /** @type {string[]} */
    this.terminalSeen = [];
    /** @type {Map<string, Set<() => void>>} */
    this.terminalWaiters = new Map();
    /** @type {Set<Subscription>} */
    this.subscriptions = new Set();
    /** @type {Set<EventSource>} */
    this.sources = new Set();
  }

  /** "booting" | "ready" | "restarting" (the events stream reconnects) | "failed" | "closed" */
  get status() {
    return this.statusInfo.status;
  }

  /** No worker, no boot marks. */
  get marks() {
    return {};
  }

  /** @param {import("./link.mjs").Status} status @param {Partial<StatusInfo>} [extra] */
  setStatus(status, extra = {}) {
    this.statusInfo = { status, attempt: 1, at: performance.now(), ...extra };
    for (const handler of this.statusHandlers) handler(this.statusInfo);
  }

  /** Learn the server's jobs (`GET /jobs`) and open the events stream; resolves when ready. */
  async start() {
    this.setStatus("booting", { stage: "server" });
    try {
      /** @type {{key: string, name: string}[]} */
      let jobs = [];
      try {
        jobs = await this.request("GET", "/jobs", { wait: false });
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
        this.listed = false; // an upstream server: no job list
      }
      for (const { key, name } of jobs) this.jobs[key] = new HttpJobHandle(this, key, name);
      this.syncStream();
      await this.eventsOpen;
    } catch (error) {
      const failure = error instanceof DurablyError ? error : new DurablyError(String(error), "network_error");
      this.setStatus("failed", { error: failure });
      throw failure;
    }
    this.setStatus("ready");
    return this;
  }

  /** A handle for a job by key or name, listed or not (an upstream server lists none). @param {string} key */
  job(key) {
    return this.jobs[key] ?? Object.values(this.jobs).find((h) => h.name === key) ?? new HttpJobHandle(this, key, key);
  }

  /**
   * One HTTP request; resolves with the JSON answer or rejects with a DurablyError.
   * @param {string} method @param {string} path
   * @param {{ query?: Record<string, any> | [string, string][], body?: any, wait?: boolean }} [options]
   *   wait: first let the events stream open (so its handlers see this request's events)
   */
  async request(method, path, { query, body, wait = true } = {}) {
    if (this.status === "closed") throw new DurablyError("the durably_web client is closed", "closed");
    if (wait) await this.eventsOpen;
    const url = this.endpoint(path, query);
    /** @type {Response} */
    let response;
    try {
      response = await fetch(url, {
        method,
        credentials: "same-origin",
        headers: body === undefined ? { accept: "application/json" } : { accept: "application/json", "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new DurablyError(`cannot reach the durably server at ${this.url} (${method} ${path}): ${String(/** @type {any} */ (error)?.message ?? error)}`, "network_error");
    }
    const text = await response.text();
    /** @type {any} */
    let payload = null;
    try {
      payload = text ? JSON.parse(text) : null;
    } catch {
      payload = null;
    }
    if (!response.ok) {
      const wire = payload && typeof payload === "object" && !Array.isArray(payload) ? payload : { error: text || `${response.status} ${response.statusText}` };
      const code = wire.code || /** @type {Record<number, string>} */ (BY_STATUS)[response.status];
      throw errorFromWire({ error: wire.error, code: code || (response.status >= 500 ? "internal_error" : `http_${response.status}`) });
    }
    if (payload === null && text) throw new DurablyError(`${method} ${path}: the server did not answer with JSON`, "internal_error");
    return payload;
  }

  /** @param {string} path @param {Record<string, any> | [string, string][]} [query] */
  endpoint(path, query) {
    const params = new URLSearchParams(Array.isArray(query) ? query : Object.entries(query ?? {}).filter(([, v]) => v != null).map(([k, v]) => [k, String(v)]));
    const search = params.toString();
    return `${this.url}${path}${search ? `?${search}` : ""}`;
  }

  /** The run of a trigger answer `{runId, disposition}`. @param {{runId: string, disposition: string}} answer @param {Record<string, any>} fields */
  async triggered(answer, fields) {
    const run = await this.requireRun(answer.runId);
    // A trigger's run has the keys it was triggered with (created with them, or found by them).
    return {
      ...run,
      idempotencyKey: fields.idempotencyKey ?? run.idempotencyKey,
      concurrencyKey: fields.concurrencyKey ?? run.concurrencyKey,
      disposition: answer.disposition ?? "created",
    };
  }

  /** @param {string} runId */
  async requireRun(runId) {
    const run = await this.getRun(runId);
    if (!run) throw new NotFoundError(`Run not found: ${runId}`);
    return run;
  }

  // -- events ---------------------------------------------------------------------------

  /**
   * Call `handler` for each event of `type` (or "*", or "status"); returns a function that
   * removes it. Events are upstream's trimmed form (`GET /runs/subscribe`).
   * @param {string} type @param {(event: any) => void} handler
   */
  on(type, handler) {
    if (type === "status") {
      if (typeof handler !== "function") throw new ValidationError(`event handler must be a function, got ${typeof handler}`);
      this.statusHandlers.add(handler);
      return () => void this.statusHandlers.delete(handler);
    }
    return this.hub.on(type, handler);
  }

  /** Open the events stream while any type is listened for; close it when none is. */
  syncStream() {
    const wanted = this.hub.types().length > 0 && this.status !== "closed";
    if (wanted && !this.events) this.openEvents();
    else if (!wanted && this.events) {
      this.events.close();
      this.sources.delete(this.events);
      this.events = null;
      this.eventsOpen = Promise.resolve();
    }
  }

  openEvents() {
    const source = new EventSource(this.endpoint("/runs/subscribe"));
    this.events = source;
    this.sources.add(source);
    /** @type {() => void} */
    let opened = () => {};
    this.eventsOpen = new Promise((resolve) => {
      opened = resolve;
      setTimeout(resolve, this.streamTimeout); // never block requests for good
    });
    source.onopen = () => {
      opened();
      if (this.status === "restarting") this.setStatus("ready");
    };
    source.onmessage = (message) => {
      const event = sseEvent(message);
      if (event === null) return;
      if (TERMINAL.has(event?.type) && event.runId) this.terminal(event.runId);
      this.hub.deliver(event);
    };
    source.onerror = () => {
      if (source !== this.events) return;
      opened();
      if (source.readyState === EventSource.CLOSED) {
        // Refused (an error status, not an event stream): on() handlers get nothing more.
        console.error(`durably_web: the server refused the events stream ${this.endpoint("/runs/subscribe")}`);
        this.sources.delete(source);
        this.events = null;
        this.eventsOpen = Promise.resolve();
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
   * and log before it reached the `on()` handlers; the server flushes throttled progress
   * first), or after a short while; at once when no events stream is open.
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

  /** Iterate over a run's events (`GET /subscribe`): its current state first, ending after the end. @param {string} runId */
  subscribe(runId) {
    return new Subscription(runId, (sub) => this.openSubscription(sub), (sub) => this.closeSubscription(sub));
  }

  /** @param {Subscription} sub */
  openSubscription(sub) {
    if (this.status === "closed") {
      queueMicrotask(() => sub.end(new DurablyError("the durably_web client is closed", "closed")));
      return;
    }
    this.subscriptions.add(sub);
    const start = () => {
      if (sub.done) return;
      const source = new EventSource(this.endpoint("/subscribe", { runId: sub.runId }));
      /** @type {any} */ (sub).source = source;
      this.sources.add(source);
      source.onmessage = (message) => {
        const event = sseEvent(message);
        if (event === null) return;
        if (TERMINAL.has(event?.type)) this.closeSource(source); // before EventSource reconnects
        sub.push(event);
      };
      source.onerror = () => {
        if (sub.done) return this.closeSource(source);
        if (source.readyState !== EventSource.CLOSED) return; // reconnecting: the state comes again
        this.closeSource(source);
        // Refused: ask GET /run why (404 for an unknown run, 401/403 from auth hooks, ...).
        this.getRun(sub.runId).then(
          (run) => sub.end(run ? new DurablyError(`the server refused the event stream of run ${sub.runId}`, "subscribe_failed") : new NotFoundError(`Run not found: ${sub.runId}`)),
          (error) => sub.end(error),
        );
      };
    };
    // Opened after the events stream, like every request (a handler added before sees all).
    this.eventsOpen.then(start);
  }

  /** @param {EventSource} source */
  closeSource(source) {
    source.close();
    this.sources.delete(source);
  }

  /** @param {Subscription} sub */
  closeSubscription(sub) {
    this.subscriptions.delete(sub);
    const source = /** @type {any} */ (sub).source;
    if (source) this.closeSource(source);
  }

  // -- reads and actions --------------------------------------------------------------

  /** The run, or null. @param {string} runId */
  async getRun(runId) {
    try {
      return fullRun(await this.request("GET", "/run", { query: { runId } }));
    } catch (error) {
      if (error instanceof NotFoundError) return null;
      throw error;
    }
  }

  /** @param {{status?: string | string[], jobName?: string | string[], labels?: Record<string, string>, limit?: number, offset?: number}} [filter] */
  async getRuns(filter = {}) {
    /** @type {[string, string][]} */
    const query = [];
    for (const status of [filter.status ?? []].flat()) query.push(["status", status]);
    for (const name of [filter.jobName ?? []].flat()) query.push(["jobName", name]);
    for (const [key, value] of Object.entries(filter.labels ?? {})) query.push([`label.${key}`, value]);
    if (filter.limit != null) query.push(["limit", String(filter.limit)]);
    if (filter.offset) query.push(["offset", String(filter.offset)]);
    return (await this.request("GET", "/runs", { query })).map(fullRun);
  }

  /** @param {string} runId */
  getSteps(runId) {
    return this.request("GET", "/steps", { query: { runId } });
  }

  /** @param {string} runId */
  getLogs(runId) {
    return this.request("GET", "/logs", { query: { runId } });
  }

  /** @param {string} runId */
  async cancel(runId) {
    await this.request("POST", "/cancel", { query: { runId } });
    return this.requireRun(runId);
  }

  /** Re-run a failed or cancelled run in place (completed steps replay). @param {string} runId */
  async retry(runId) {
    await this.request("POST", "/retry", { query: { runId } });
    return this.requireRun(runId);
  }

  /** A new run with the same input. @param {string} runId */
  async retrigger(runId) {
    const answer = await this.request("POST", "/retrigger", { query: { runId } });
    return this.requireRun(answer.runId);
  }

  /** Delete a finished run; resolves with what it was. @param {string} runId */
  async deleteRun(runId) {
    const run = await this.requireRun(runId);
    await this.request("DELETE", "/run", { query: { runId } });
    return run;
  }

  /** Not offered over HTTP (no endpoint): purge on the server. @param {any} _options */
  async purgeRuns(_options) {
    throw new DurablyError("purgeRuns is not available over HTTP (the server has no endpoint for it): purge on the server", "not_supported");
  }

  /** Resolve with the completed run; reject if it fails, is cancelled or `timeout` ms pass. @param {string} runId @param {WaitOptions} [options] */
  waitForRun(runId, options = {}) {
    return followRun(this, async () => runId, options);
  }

  /** Close every stream (open subscriptions end); later calls reject with `closed`. @returns {Promise<void>} */
  async close() {
    if (this.status === "closed") return;
    for (const source of this.sources) source.close();
    this.sources.clear();
    this.events = null;
    this.eventsOpen = Promise.resolve();
    for (const wakers of this.terminalWaiters.values()) for (const wake of wakers) wake();
    this.terminalWaiters.clear();
    this.setStatus("closed", {});
    for (const sub of [...this.subscriptions]) sub.end(null);
    this.subscriptions.clear();
  }
}

/**
 * Connect to a server's Durably endpoint; resolves once its jobs are known (and the events
 * stream is open when `listen` types were given).
 * @param {HttpConnectOptions} options
 */
export function connectHttp(options) {
  return new HttpDurablyClient(options).start();
}
