// @ts-check
/**
 * The worker transport: the engine in a Web Worker of one tab of this origin, shared by every
 * tab that connects to the same database (docs/browser-client.md, "Several tabs").
 *
 * - Roles (./tabs.mjs): `start()` takes this tab's presence lock, then the database's lead
 *   lock if no tab holds it. The tab holding it (role "leader") runs the engine worker
 *   (./engine_worker.mjs: boot, watchdog, restarts) and serves the other tabs
 *   (./tab_server.mjs). A tab that finds the lock held (role "follower") says `hello` on
 *   the database's BroadcastChannel, gets the leader's status in answer, forwards its calls,
 *   subscriptions and `listen` to the leader and gets its events from it; meanwhile it waits
 *   in line for the lead lock. A follower that hears from no leader within `readyTimeout`
 *   fails (`leader_unreachable`): nothing it was asked to do is held for later.
 * - Requests get their ids here, whatever the link; those made while the engine (re)starts
 *   wait in this tab until it is ready, and every status says the tab's role.
 * - Losing the engine: its worker restarts (leader), or the leader tab goes away (a follower
 *   hears it announce `closed`/`failed`, or another tab announce itself as the new leader).
 *   Then the requests in flight that are repeatable are sent again to the next engine, and
 *   the others reject with `worker_restarted`: the lost engine may or may not have applied
 *   them. Every open subscription is opened again (from the run's current state), and the
 *   next worker's init config carries the event types every tab listens for.
 * - Hand-over: when the leader tab closes, reloads or crashes, the browser gives the lead lock
 *   to the next tab in line, which becomes the leader: it boots its own worker (whose engine
 *   reclaims the interrupted run at boot) and announces itself; the other tabs follow it.
 */
import { DurablyError, errorFromWire } from "../errors.mjs";
import { wanted } from "../events.mjs";
import { TERMINAL } from "../subscription.mjs";
import { EngineWorker } from "./engine_worker.mjs";
import { TabServer } from "./tab_server.mjs";
import { Tabs } from "./tabs.mjs";

/**
 * @typedef {import("./transport.js").Transport} Transport
 * @typedef {import("./transport.js").TransportHooks} TransportHooks
 * @typedef {import("./transport.js").Role} Role
 * @typedef {import("./transport.js").Status} Status
 * @typedef {import("./transport.js").StatusInfo} StatusInfo
 * @typedef {import("./transport.js").ReadyInfo} ReadyInfo
 * @typedef {import("./transport.js").SubscriptionSink} SubscriptionSink
 * @typedef {import("./transport.js").CallName} CallName
 * @typedef {import("./tabs.js").TabMessage} TabMessage
 * @typedef {import("./tabs.js").LeaderStatus} LeaderStatus
 * @typedef {import("./engine_worker.mjs").EngineConfig} EngineConfig
 * @typedef {import("../protocol.js").OperationArgs} OperationArgs
 * @typedef {import("../protocol.js").WorkerResults} WorkerResults
 * @typedef {import("../protocol.js").WireEvent} WireEvent
 * @typedef {{ type: string, [field: string]: unknown }} Message
 * @typedef {{ message: Message, repeatable: boolean, sent: boolean,
 *             resolve: (value: unknown) => void, reject: (error: DurablyError) => void }} Pending
 * @typedef {{ runId: string, sink: SubscriptionSink, wireId: string, open: boolean }} Entry
 *   open: its subscribe request went to the current engine (under `wireId`)
 * @typedef {{
 *   workerUrl: string, config: EngineConfig, readyTimeout?: number, pingInterval?: number,
 *   missedPings?: number, maxAttempts?: number,
 * }} WorkerTransportOptions
 *   readyTimeout / pingInterval: ms (30 s / 2 s); missedPings (3): unanswered pings in a row
 *   before a restart; maxAttempts (3): starts in a row before the transport fails.
 *   readyTimeout is also how long a follower waits for the leader tab to answer.
 */

/** @type {TransportHooks} */
const NO_HOOKS = { status: () => {}, ready: () => {}, event: () => {}, listening: () => [] };

/** The statuses after which nothing more happens: every request rejects. */
const FINAL = new Set(["failed", "closed"]);

/** @implements {Transport} */
export class WorkerTransport {
  /** @param {WorkerTransportOptions} options */
  constructor(options) {
    const { jobsUrl, packages = [], database = "/durably.db", durability = "NORMAL", options: engineOptions = {} } = options.config;
    this.workerUrl = options.workerUrl;
    /** @type {EngineConfig & {database: string}} */
    this.config = { jobsUrl, packages, database, durability, options: engineOptions };
    this.readyTimeout = options.readyTimeout ?? 30_000;
    this.pingInterval = options.pingInterval ?? 2_000;
    this.missedPings = options.missedPings ?? 3;
    this.maxAttempts = options.maxAttempts ?? 3;
    /** "leader" while this tab holds the lead lock (runs the worker), else "follower". @type {Role} */
    this.role = "follower";
    this.hooks = NO_HOOKS;
    /** @type {Status} */
    this.status = "booting";
    this.attempt = 0;
    /** @type {Map<number, Pending>} */
    this.pending = new Map();
    /** Open subscriptions. @type {Set<Entry>} */
    this.subscriptions = new Set();
    /** Open subscriptions by the id of their subscribe request on the current engine. @type {Map<string, Entry>} */
    this.routes = new Map();
    this.nextId = 1;
    /** The event types this tab's client listens for. @type {string[]} */
    this.ownTypes = [];
    /** The event types the engine forwards to this tab (sorted, joined). */
    this.listening = "";
    /** The engine this tab reaches, while it takes requests. @type {ReadyInfo | null} */
    this.ready = null;
    this.everReady = false;
    /** This tab among the others (null until started). @type {Tabs | null} */
    this.tabs = null;
    /** The leader's worker (leader only). @type {EngineWorker | null} */
    this.engine = null;
    /** @type {TabServer | null} */
    this.server = null;
    /** The leader tab's id (a follower's; this tab's own when leading). @type {string | null} */
    this.leader = null;
    /** The last leader status this follower heard. */
    this.heard = "";
    /** Leader tabs that went away: their late messages are ignored. @type {Set<string>} */
    this.gone = new Set();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.helloTimer = undefined;
    /** @type {{resolve: (info: ReadyInfo) => void, reject: (error: DurablyError) => void} | null} */
    this.firstReady = null;
    /** Settles once this tab let go of the database's locks. @type {Promise<void>} */
    this.released = Promise.resolve();
  }

  /** The running engine worker of a leader (tests may terminate it behind the transport's back). */
  get worker() {
    return this.engine?.worker ?? null;
  }

  /** Join the tabs of this database: lead or follow; resolves once the engine is ready. @param {TransportHooks} hooks @returns {Promise<ReadyInfo>} */
  async start(hooks) {
    this.hooks = hooks;
    this.ownTypes = hooks.listening();
    const locks = globalThis.navigator?.locks;
    const Channel = globalThis.BroadcastChannel;
    if (!locks?.request || typeof Channel !== "function") {
      throw this.fail(new DurablyError("This browser has no Web Locks API (navigator.locks) or no BroadcastChannel, which durably_web needs to share one database between tabs; use a current browser over https or localhost.", "web_locks_unavailable"));
    }
    /** @type {Promise<ReadyInfo>} */
    const ready = new Promise((resolve, reject) => (this.firstReady = { resolve, reject }));
    const tabs = new Tabs({ locks, Channel, database: this.config.database, receive: (message) => this.fromTab(message) });
    this.tabs = tabs;
    try {
      await tabs.join();
      if (!this.final() && (await tabs.tryLead())) this.lead();
      else if (!this.final()) {
        tabs.queueLead(() => this.lead());
        this.follow();
      }
    } catch (error) {
      this.fail(new DurablyError(`Cannot take the database's Web Lock: ${String(error)}`, "web_locks_unavailable"));
    }
    return ready;
  }

  /** This tab holds the lead lock: run the engine worker, serve the other tabs. */
  lead() {
    if (this.final() || !this.tabs) return this.tabs?.releaseLead();
    clearTimeout(this.helloTimer);
    this.forgetLeader("The tab that ran the engine closed");
    this.role = "leader";
    this.leader = this.tabs.id;
    this.server = new TabServer(this, this.tabs);
    const { workerUrl, config, readyTimeout, pingInterval, missedPings, maxAttempts } = this;
    this.engine = new EngineWorker(
      {
        starting: (restart, attempt) => this.setStatus(restart || this.everReady ? "restarting" : "booting", { stage: "worker", attempt }),
        stage: (name) => this.setStatus(this.status, { stage: name }),
        ready: (info) => this.linkReady(info),
        message: (message) => this.receive(message),
        lost: (reason) => this.lost(reason),
        failed: (error) => this.fail(error),
        initialTypes: () => {
          const types = this.linkTypes();
          this.listening = types.join(",");
          return types;
        },
      },
      { workerUrl, config, readyTimeout, pingInterval, missedPings, maxAttempts },
    );
    this.engine.spawn();
  }

  /** Another tab holds the lead lock: find it, and fail if it never answers. */
  follow() {
    this.setStatus("booting", { stage: "leader" });
    this.hello();
    this.helloTimer = setTimeout(() => {
      if (this.leader !== null || this.final()) return;
      this.fail(new DurablyError(`Another tab of this site holds the database ${JSON.stringify(this.config.database)}, but no tab running its engine answered within ${this.readyTimeout} ms (a tab of an older version of this app, or a frozen one?). Close the other tabs of this site, then reload this one.`, "leader_unreachable"));
    }, this.readyTimeout);
  }

  /** Tell the leader (and the tabs that may lead next) what this tab listens for. */
  hello() {
    this.listening = this.ownTypes.join(",");
    this.tabs?.post({ kind: "hello", events: this.ownTypes });
  }

  /** A message from another tab. @param {TabMessage} message */
  fromTab(message) {
    if (this.final()) return;
    if (this.role === "leader") return this.server?.receive(message);
    const mine = (/** @type {string | null | undefined} */ to) => to == null || to === this.tabs?.id;
    if (message.kind === "leader" && mine(message.to)) this.leaderStatus(message);
    else if (message.kind === "reply" && message.from === this.leader && mine(message.to)) this.receive(message.message);
  }

  /** Follow the leader's status (a follower's own status mirrors it). @param {LeaderStatus} message */
  leaderStatus({ from, to, status, stage, attempt, ready }) {
    const key = `${from} ${status} ${stage} ${attempt}`;
    if (this.gone.has(from) || key === this.heard) return; // an answer to a hello repeats the last
    this.heard = key;
    const ending = FINAL.has(status);
    if (from !== this.leader) {
      if (ending) return; // not the tab this one follows
      clearTimeout(this.helloTimer);
      this.forgetLeader("The tab that ran the engine went away");
      this.leader = from;
      if (!to) this.hello(); // a new leader that has not heard from this tab yet
    }
    if (ending) {
      this.forgetLeader(`The tab that ran the engine ${status === "closed" ? "closed" : "failed"}`);
      this.setStatus(this.everReady ? "restarting" : "booting", { stage: "leader" });
    } else if (status === "ready" && ready) {
      if (!this.ready) this.linkReady(ready);
    } else {
      this.ready = null; // the leader's worker (re)starts: new requests wait here for it
      this.setStatus(this.everReady ? "restarting" : "booting", { stage, attempt });
    }
  }

  /** The leader this tab followed is gone. @param {string} reason */
  forgetLeader(reason) {
    if (this.leader === null) return;
    this.gone.add(this.leader);
    this.leader = null;
    this.lost(reason);
  }

  /**
   * The engine was lost with what was in flight: repeatable requests wait for the next one,
   * the others reject; subscriptions are opened again on the next one.
   * @param {string} reason starts the error message
   */
  lost(reason) {
    this.ready = null;
    this.routes.clear();
    for (const entry of this.subscriptions) entry.open = false;
    for (const [id, pending] of this.pending) {
      if (!pending.sent) continue;
      if (pending.repeatable) {
        pending.sent = false;
        continue;
      }
      this.pending.delete(id);
      pending.reject(new DurablyError(`${reason} while this ${pending.message.type} request was in flight; it may or may not have been applied. Check the run's state before repeating it (a trigger with an idempotencyKey is sent again by itself).`, "worker_restarted"));
    }
  }

  /** The engine this tab reaches is ready (again). @param {ReadyInfo} info */
  linkReady(info) {
    this.ready = info;
    this.everReady = true;
    this.setStatus("ready", { marks: info.marks });
    this.hooks.ready(info);
    this.updateListen(); // what changed while the engine started
    for (const entry of this.subscriptions) {
      if (!entry.open) this.open(entry);
    }
    for (const [id, pending] of this.pending) {
      if (!pending.sent) this.post(id, pending);
    }
    this.firstReady?.resolve(info);
    this.firstReady = null;
  }

  /** An answer or push of the engine (the worker's, or relayed by the leader tab). @param {import("../protocol.js").WorkerResponse | import("../protocol.js").WorkerPush} message */
  receive(message) {
    switch (message.type) {
      case "response": {
        const pending = message.id === null ? undefined : this.pending.get(message.id);
        if (!pending || message.id === null) return;
        this.pending.delete(message.id);
        if (message.ok) pending.resolve(message.result);
        else pending.reject(errorFromWire(message.error));
        return;
      }
      case "events":
        for (const event of message.events) {
          if (wanted(this.ownTypes, event)) this.hooks.event(event);
        }
        if (this.role === "leader") this.server?.events(message.events);
        return;
      case "subscription": {
        const entry = this.routes.get(message.id);
        if (!entry) return;
        if (TERMINAL.has(message.event.type)) this.ended(message.id, entry); // the engine ends it itself
        entry.sink.event(message.event);
        return;
      }
      case "subscription-end": {
        const entry = this.routes.get(message.id);
        if (!entry) return;
        this.ended(message.id, entry);
        entry.sink.end(message.error ? errorFromWire(message.error) : null);
      }
    }
  }

  /** @param {string} wireId @param {Entry} entry */
  ended(wireId, entry) {
    this.routes.delete(wireId);
    this.subscriptions.delete(entry);
  }

  /** Enter the final "failed" state: reject everything, end every subscription, let go of the locks. @param {DurablyError} error */
  fail(error) {
    if (this.final()) return error;
    this.setStatus("failed", { error }); // followers hear it before anything else
    this.stopLink();
    this.released = this.tabs?.leave() ?? Promise.resolve();
    this.endSubscriptions(error);
    this.rejectAll(error);
    return error;
  }

  stopLink() {
    clearTimeout(this.helloTimer);
    this.server?.stop(); // before the rejections below: followers must not get this tab's errors
    this.engine?.stop();
    this.ready = null;
  }

  /** @param {DurablyError | null} error */
  endSubscriptions(error) {
    const entries = [...this.subscriptions];
    this.subscriptions.clear();
    this.routes.clear();
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

  /** No engine any more: every request rejects. */
  final() {
    return FINAL.has(this.status);
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
   * @param {Message} message @param {boolean} repeatable send again to the next engine
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

  /** To this tab's worker, or to the leader tab. @param {number} id @param {Pending} pending */
  post(id, pending) {
    pending.sent = true;
    if (this.role === "leader") this.engine?.post(id, pending.message);
    else if (this.leader) this.tabs?.post({ kind: "call", to: this.leader, id, message: pending.message, repeatable: pending.repeatable });
  }

  /** The client's event types (the next worker's init config has them too). @param {string[]} types */
  listen(types) {
    this.ownTypes = types;
    this.updateListen();
  }

  /** What the engine must forward to this tab: a leader's own types and every follower's. */
  linkTypes() {
    if (this.role !== "leader" || !this.tabs?.peers.size) return this.ownTypes;
    return [...new Set([...this.ownTypes, ...this.tabs.peerTypes()])].sort();
  }

  /** Tell the engine (the worker, or the leader tab) when the types it must forward changed. */
  updateListen() {
    const types = this.linkTypes();
    const key = types.join(",");
    if (!this.ready || key === this.listening) return;
    this.listening = key;
    // Not repeatable: the next worker's init config (the next leader's hello) carries them.
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
    /** @type {Entry} */
    const entry = { runId, sink, wireId: "", open: false };
    this.subscriptions.add(entry);
    if (this.ready) this.open(entry);
    return () => {
      if (!this.subscriptions.delete(entry) || !entry.open) return; // ended already, or never sent
      this.routes.delete(entry.wireId);
      if (this.ready) this.send({ type: "unsubscribe", subscription: entry.wireId }, false).catch(() => {});
    };
  }

  /** Send the subscribe request of `entry` (again on a new engine, under a new id). @param {Entry} entry */
  open(entry) {
    const id = this.nextId++;
    this.routes.delete(entry.wireId);
    entry.wireId = String(id);
    entry.open = true;
    this.routes.set(entry.wireId, entry);
    this.send({ type: "subscribe", runId: entry.runId }, false, id).catch((error) => {
      // On the next engine it is opened again under a new id; other errors end it.
      if (error?.code === "worker_restarted" || this.routes.get(String(id)) !== entry) return;
      this.ended(String(id), entry);
      entry.sink.end(error);
    });
  }

  /** Resolves once the events the engine sent before now were delivered: a ping round trip. @param {string} _runId */
  async settle(_runId) {
    await this.send({ type: "ping" }, true).catch(() => {});
  }

  /**
   * Let go: a leader stops its worker and releases the database for the next tab, a
   * follower says goodbye; pending requests reject with `closed`, open subscriptions end.
   * @returns {Promise<void>} settles once another tab may lead
   */
  async close(reason = "the client was closed") {
    if (this.status !== "closed") {
      const following = this.role === "follower";
      this.setStatus("closed", {}); // a leader's followers hear it first
      this.stopLink();
      if (following) this.tabs?.post({ kind: "bye" });
      this.released = this.tabs?.leave() ?? Promise.resolve();
      this.endSubscriptions(null);
      this.rejectAll(new DurablyError(reason, "closed"));
    }
    await this.released;
  }

  /** @param {Status} status @param {Partial<StatusInfo>} extra */
  setStatus(status, extra) {
    this.status = status;
    if (extra.attempt !== undefined) this.attempt = extra.attempt;
    /** @type {StatusInfo} */
    const info = { status, role: this.role, at: performance.now(), ...extra, attempt: this.attempt };
    if (this.role === "leader") this.server?.announce(info);
    this.hooks.status(info);
  }
}
