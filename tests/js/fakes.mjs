// @ts-check
/**
 * Test doubles of the browser APIs the JS client uses, for node:test: a Worker that the test
 * plays the engine in, Web Locks and BroadcastChannel (several tabs in one process), an
 * EventSource the test plays the server in, and `fetch` routed to handlers. `install(t, ...)` puts them on globalThis for one test and takes them
 * away after it.
 */

/** @typedef {import("node:test").TestContext} TestContext */

/** Let every pending promise callback run (and one macrotask turn). */
export const flush = () => new Promise((resolve) => setImmediate(resolve));

/** A Web Worker whose engine side is played by the test. */
export class FakeWorker {
  /** Every worker created since `install`, oldest first. @type {FakeWorker[]} */
  static created = [];

  /** @param {string | URL} url @param {WorkerOptions} [options] */
  constructor(url, options) {
    this.url = String(url);
    this.options = options;
    /** What the page posted: the init object, then JSON text requests. @type {unknown[]} */
    this.posted = [];
    this.terminated = false;
    /** @type {((event: {data: unknown}) => void) | null} */
    this.onmessage = null;
    /** @type {((event: {message?: string, preventDefault?: () => void}) => void) | null} */
    this.onerror = null;
    FakeWorker.created.push(this);
  }

  /** @param {unknown} data */
  postMessage(data) {
    if (this.terminated) throw new Error("postMessage to a terminated worker");
    this.posted.push(data);
  }

  terminate() {
    this.terminated = true;
  }

  /** The init config the page posted first. @returns {Record<string, any>} */
  get init() {
    const first = /** @type {{type: string, config: Record<string, any>}} */ (this.posted[0]);
    if (first?.type !== "init") throw new Error("the page posted no init message first");
    return first.config;
  }

  /** The requests posted so far, parsed. @returns {Record<string, any>[]} */
  requests() {
    return this.posted.filter((m) => typeof m === "string").map((text) => JSON.parse(/** @type {string} */ (text)));
  }

  /** The requests of one type. @param {string} type */
  requestsOf(type) {
    return this.requests().filter((r) => r.type === type);
  }

  /** The last request of `type`. @param {string} type */
  last(type) {
    const found = this.requestsOf(type).at(-1);
    if (!found) throw new Error(`no ${type} request was posted`);
    return found;
  }

  /** Send a message to the page, as the worker would (objects before ready, JSON text after). @param {unknown} message */
  send(message) {
    this.onmessage?.({ data: message });
  }

  /** @param {string} name */
  stage(name) {
    this.send({ type: "stage", name, t: 1 });
  }

  /** Report ready with these jobs. @param {{key: string, name: string}[]} [jobs] */
  ready(jobs = [{ key: "import_csv", name: "import-csv" }]) {
    this.send({ type: "ready", jobs, workerId: `w${FakeWorker.created.indexOf(this)}`, marks: { ready: 42 } });
  }

  /** Answer request `id` with `result`. @param {number} id @param {unknown} result */
  respond(id, result) {
    this.send(JSON.stringify({ type: "response", id, ok: true, result }));
  }

  /** Answer request `id` with an error `{error, code}`. @param {number} id @param {string} error @param {string} code */
  refuse(id, error, code) {
    this.send(JSON.stringify({ type: "response", id, ok: false, error: { error, code } }));
  }

  /** Answer every ping posted so far and not yet answered. */
  pong() {
    for (const ping of this.requestsOf("ping")) {
      if (!this.answered.has(ping.id)) {
        this.answered.add(ping.id);
        this.respond(ping.id, "pong");
      }
    }
  }

  /** @type {Set<number>} */
  answered = new Set();

  /** Crash: the error event a worker's uncaught error gives. @param {string} [message] */
  crash(message = "boom") {
    this.onerror?.({ message, preventDefault: () => {} });
  }
}

/** @typedef {{ name: string }} FakeLock */
/** @typedef {(lock: FakeLock | null) => unknown} LockCallback */
/** @typedef {{ ifAvailable?: boolean, signal?: AbortSignal }} LockOptions */

/** An AbortError, as a lock request aborted by its signal rejects with. */
const abortError = () => new DOMException("The lock request was aborted", "AbortError");

/**
 * The Web Locks API of one browser profile. Use it as `navigator.locks` of one tab, or give
 * each tab its own view (`tab()`) to play a tab crashing: `crash()` releases what it holds and
 * drops what it waits for, as the browser does when a tab dies. Callbacks run asynchronously
 * (a microtask), as the browser grants a lock in a later task; waiting requests are granted in
 * order, and a request's `signal` aborts it while it waits (AbortError).
 */
export class FakeLocks {
  /** Names held now. @type {Set<string>} */
  held = new Set();
  /** @type {Map<string, {tab: object, release: () => void}>} */
  holders = new Map();
  /** Waiting requests by name, oldest first. @type {Map<string, {tab: object, grant: () => void}[]>} */
  queues = new Map();

  /** @param {string} name @param {LockOptions} options @param {LockCallback} callback */
  request(name, options, callback) {
    return this.requestAs(this, name, options, callback);
  }

  /** One tab's `navigator.locks`, with `crash()`. */
  tab() {
    const view = {
      /** @param {string} name @param {LockOptions} options @param {LockCallback} callback */
      request: (name, options, callback) => this.requestAs(view, name, options, callback),
      /** The tab died: its locks are released, its waiting requests dropped. */
      crash: () => this.crash(view),
    };
    return view;
  }

  /** The lead locks held (no tab presence locks), sorted. */
  leads() {
    return [...this.held].filter((name) => !name.includes(":tab:")).sort();
  }

  /** @param {object} tab @param {string} name @param {LockOptions} options @param {LockCallback} callback @returns {Promise<unknown>} */
  requestAs(tab, name, options, callback) {
    if (options.signal?.aborted) return Promise.reject(abortError());
    if (!this.held.has(name)) return this.grant(tab, name, callback);
    if (options.ifAvailable) return Promise.resolve().then(() => callback(null));
    return new Promise((resolve, reject) => {
      const queue = this.queues.get(name) ?? [];
      this.queues.set(name, queue);
      const onAbort = () => {
        queue.splice(queue.indexOf(waiter), 1);
        reject(abortError());
      };
      const waiter = {
        tab,
        grant: () => {
          options.signal?.removeEventListener("abort", onAbort);
          this.grant(tab, name, callback).then(resolve, reject);
        },
      };
      options.signal?.addEventListener("abort", onAbort, { once: true });
      queue.push(waiter);
    });
  }

  /** @param {object} tab @param {string} name @param {LockCallback} callback */
  grant(tab, name, callback) {
    this.held.add(name);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.held.delete(name);
      this.holders.delete(name);
      this.queues.get(name)?.shift()?.grant();
    };
    this.holders.set(name, { tab, release });
    return Promise.resolve()
      .then(() => callback({ name }))
      .finally(release);
  }

  /** @param {object} tab */
  crash(tab) {
    for (const queue of this.queues.values()) {
      for (const waiter of [...queue]) if (waiter.tab === tab) queue.splice(queue.indexOf(waiter), 1);
    }
    for (const holder of [...this.holders.values()]) if (holder.tab === tab) holder.release();
  }
}

/**
 * BroadcastChannel between the tabs of one test: a message goes, structured-cloned (so what
 * cannot cross tabs fails here too), to every other open channel of the same name, in a
 * later macrotask, in the order it was posted.
 */
export class FakeBroadcastChannel {
  /** Open channels by name. @type {Map<string, Set<FakeBroadcastChannel>>} */
  static open = new Map();
  /** Every message posted since `install`, oldest first. @type {any[]} */
  static posted = [];

  /** @param {string} name */
  constructor(name) {
    this.name = String(name);
    this.closed = false;
    /** @type {((event: {data: unknown}) => void) | null} */
    this.onmessage = null;
    const open = FakeBroadcastChannel.open.get(this.name) ?? new Set();
    FakeBroadcastChannel.open.set(this.name, open);
    open.add(this);
  }

  /** @param {unknown} data */
  postMessage(data) {
    if (this.closed) throw new DOMException("BroadcastChannel is closed", "InvalidStateError");
    FakeBroadcastChannel.posted.push(structuredClone(data));
    for (const other of FakeBroadcastChannel.open.get(this.name) ?? []) {
      if (other === this) continue;
      const copy = structuredClone(data);
      setImmediate(() => {
        if (!other.closed) other.onmessage?.({ data: copy });
      });
    }
  }

  close() {
    this.closed = true;
    FakeBroadcastChannel.open.get(this.name)?.delete(this);
  }

  /** The messages of `kind` posted so far. @param {string} kind */
  static of(kind) {
    return FakeBroadcastChannel.posted.filter((m) => m.kind === kind);
  }
}

/** Let the tabs' messages (and the locks' grants) go round a few times. */
export async function settleTabs(turns = 10) {
  for (let i = 0; i < turns; i++) await flush();
}

/** An EventSource whose server side is played by the test. */
export class FakeEventSource {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 2;
  /** Every source created since `install`, oldest first. @type {FakeEventSource[]} */
  static created = [];

  /** @param {string | URL} url */
  constructor(url) {
    this.url = String(url);
    this.readyState = FakeEventSource.CONNECTING;
    this.closed = false;
    /** @type {(() => void) | null} */
    this.onopen = null;
    /** @type {((message: {data: string}) => void) | null} */
    this.onmessage = null;
    /** @type {(() => void) | null} */
    this.onerror = null;
    FakeEventSource.created.push(this);
  }

  /** The server accepted the stream (again, after a reconnect). */
  open() {
    this.readyState = FakeEventSource.OPEN;
    this.onopen?.();
  }

  /** One `data:` frame. @param {unknown} event */
  emit(event) {
    if (this.readyState !== FakeEventSource.OPEN) throw new Error(`emit on a ${this.readyState} stream`);
    this.onmessage?.({ data: typeof event === "string" ? event : JSON.stringify(event) });
  }

  /** The server ended the stream early (it cut off a slow reader): EventSource reconnects. */
  cutOff() {
    this.readyState = FakeEventSource.CONNECTING;
    this.onerror?.();
  }

  /** The server refused the stream (an error status): EventSource gives up. */
  refuse() {
    this.readyState = FakeEventSource.CLOSED;
    this.onerror?.();
  }

  close() {
    this.readyState = FakeEventSource.CLOSED;
    this.closed = true;
  }

  /** The newest source whose URL contains `part`. @param {string} part */
  static last(part) {
    const found = FakeEventSource.created.filter((s) => s.url.includes(part)).at(-1);
    if (!found) throw new Error(`no EventSource for ${part}`);
    return found;
  }
}

/**
 * A fake server for `fetch`: `route(method, path, handler)`; a handler gets the URL and the
 * parsed body and returns `[status, body]` (body: JSON value, or text when a string). Every
 * request is logged as `"METHOD /path?query"`.
 */
export class FakeServer {
  /** @param {string} base the endpoint URL, e.g. "http://test/api" */
  constructor(base) {
    this.base = base;
    /** @type {Map<string, (url: URL, body: any) => [number, unknown] | Promise<[number, unknown]>>} */
    this.routes = new Map();
    /** @type {string[]} */
    this.log = [];
    /** @type {any[]} */
    this.bodies = [];
    /** When set, fetch fails as a network error would. */
    this.down = false;
  }

  /** @param {string} method @param {string} path @param {(url: URL, body: any) => [number, unknown] | Promise<[number, unknown]>} handler */
  route(method, path, handler) {
    this.routes.set(`${method} ${path}`, handler);
    return this;
  }

  /** @type {(input: string | URL | Request, init?: RequestInit) => Promise<Response>} */
  fetch = async (input, init = {}) => {
    const url = new URL(String(input));
    const method = init.method ?? "GET";
    const path = url.pathname.slice(new URL(this.base).pathname.length);
    this.log.push(`${method} ${path}${url.search}`);
    const body = init.body == null ? undefined : JSON.parse(String(init.body));
    this.bodies.push(body);
    if (this.down) throw new TypeError("Failed to fetch");
    const handler = this.routes.get(`${method} ${path}`);
    const [status, answer] = handler ? await handler(url, body) : [404, { error: "Not found" }];
    const text = typeof answer === "string" ? answer : JSON.stringify(answer);
    return new Response(text, { status, statusText: status === 200 ? "OK" : "Error" });
  };
}

/**
 * Put fakes on globalThis for the duration of test `t`.
 * @param {TestContext} t
 * @param {{ worker?: boolean, locks?: FakeLocks | null, eventSource?: boolean, server?: FakeServer }} fakes
 *   locks: null for a browser without Web Locks (a FakeBroadcastChannel comes with them)
 */
export function install(t, { worker = false, locks, eventSource = false, server }) {
  /** @type {Record<string, PropertyDescriptor | undefined>} */
  const saved = {};
  /** @param {string} name @param {unknown} value */
  const put = (name, value) => {
    saved[name] = Object.getOwnPropertyDescriptor(globalThis, name);
    Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
  };
  if (worker) {
    FakeWorker.created = [];
    put("Worker", FakeWorker);
  }
  if (locks !== undefined) {
    put("navigator", { locks: locks ?? undefined });
    FakeBroadcastChannel.open = new Map();
    FakeBroadcastChannel.posted = [];
    put("BroadcastChannel", FakeBroadcastChannel);
  }
  if (eventSource) {
    FakeEventSource.created = [];
    put("EventSource", FakeEventSource);
  }
  if (server) put("fetch", server.fetch);
  t.after(() => {
    for (const [name, descriptor] of Object.entries(saved)) {
      if (descriptor) Object.defineProperty(globalThis, name, descriptor);
      else delete (/** @type {Record<string, unknown>} */ (globalThis))[name];
    }
  });
}

/** A Run in the engine's wire form. @param {Record<string, unknown>} [fields] */
export function wireRun(fields = {}) {
  return {
    id: "r1",
    jobName: "import-csv",
    input: { rows: 1 },
    status: "pending",
    idempotencyKey: null,
    concurrencyKey: null,
    currentStepIndex: 0,
    completedStepCount: 0,
    progress: null,
    output: null,
    error: null,
    labels: {},
    leaseOwner: null,
    leaseExpiresAt: null,
    leaseGeneration: 0,
    startedAt: null,
    completedAt: null,
    createdAt: "2026-01-01T00:00:00Z",
    updatedAt: "2026-01-01T00:00:00Z",
    ...fields,
  };
}

/** A run as upstream's HTTP handler sends it (ClientRun). @param {Record<string, unknown>} [fields] */
export function clientRun(fields = {}) {
  const { idempotencyKey, concurrencyKey, leaseOwner, leaseExpiresAt, leaseGeneration, updatedAt, ...rest } = wireRun(fields);
  return { ...rest, isTerminal: rest.status === "completed", isActive: rest.status === "leased" };
}

/**
 * An engine event in wire form: the fields every event has, and the type's own as given.
 * @param {string} type @param {Record<string, unknown>} [fields]
 * @returns {import("../../src/durably_web/web/client/protocol.js").WireEvent}
 */
export function wireEvent(type, fields = {}) {
  const event = { type, runId: "r1", jobName: "import-csv", labels: {}, timestamp: "2026-01-01T00:00:00Z", sequence: 1, ...fields };
  return /** @type {import("../../src/durably_web/web/client/protocol.js").WireEvent} */ (/** @type {unknown} */ (event));
}
