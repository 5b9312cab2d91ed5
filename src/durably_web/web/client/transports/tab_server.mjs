// @ts-check
/**
 * The leader tab's service to the follower tabs of its database (messages: ./tabs.d.ts).
 *
 * A follower's `call` is answered through the leader's own transport (./worker.mjs), as if
 * the leader's page had made it: a request goes to the engine worker (waiting while it
 * restarts; re-sent after a restart if repeatable, else rejected with `worker_restarted`,
 * which the follower then gets), a subscription follows the run across worker restarts,
 * `listen` adds the follower's event types to what the worker forwards (./tabs.mjs keeps
 * them), and `ping` is the leader's own `settle()`: its answer leaves after every event the
 * worker had sent before, and one tab's messages keep their order. The engine's events are
 * broadcast to every follower (each keeps the types it listens for).
 *
 * The leader announces its status at every change (and to each `hello`). Once it stops
 * (closed, failed) it answers nothing more: its followers treat what they had in flight as
 * lost to a gone leader (re-sent to the next one, or rejected with `worker_restarted`),
 * never as failed with this tab's own `closed`.
 */
import { errorToWire } from "../errors.mjs";
import { TERMINAL } from "../subscription.mjs";

/**
 * @typedef {import("./tabs.mjs").Tabs} Tabs
 * @typedef {import("./tabs.js").TabMessage} TabMessage
 * @typedef {import("./tabs.js").Call} Call
 * @typedef {import("./transport.js").StatusInfo} StatusInfo
 * @typedef {import("./transport.js").CallName} CallName
 * @typedef {import("./transport.js").ReadyInfo} ReadyInfo
 * @typedef {import("../protocol.js").WireEvent} WireEvent
 * @typedef {import("../protocol.js").WorkerResponse | import("../protocol.js").WorkerPush} ToFollower
 * What the server needs of its tab's transport (./worker.mjs's WorkerTransport).
 * @typedef {{
 *   request(op: CallName, args: any, options: {repeatable: boolean}): Promise<unknown>,
 *   subscribe(runId: string, sink: import("./transport.js").SubscriptionSink): () => void,
 *   settle(runId: string): Promise<void>,
 *   updateListen(): void,
 *   ready: ReadyInfo | null,
 * }} Leader
 * @typedef {{ subscriptions: Map<string, () => void> }} Follower
 */

export class TabServer {
  /** @param {Leader} leader @param {Tabs} tabs */
  constructor(leader, tabs) {
    this.leader = leader;
    this.tabs = tabs;
    /** The followers heard from, by tab id. @type {Map<string, Follower>} */
    this.followers = new Map();
    /** @type {StatusInfo | null} */
    this.last = null;
    this.stopped = false;
  }

  /** Tell the followers the leader's status (`to`: one of them). @param {StatusInfo} info @param {string} [to] */
  announce(info, to) {
    if (this.stopped) return;
    this.last = info;
    const { status, stage, attempt, marks } = info;
    const ready = status === "ready" && this.leader.ready ? this.leader.ready : undefined;
    this.tabs.post({ kind: "leader", ...(to ? { to } : {}), status, stage, attempt, marks, ready });
  }

  /** A message from another tab. @param {TabMessage} message */
  receive(message) {
    if (this.stopped) return;
    if (message.kind === "hello") {
      this.follower(message.from);
      this.leader.updateListen();
      if (this.last) this.announce(this.last, message.from);
    } else if (message.kind === "bye") {
      this.drop(message.from);
    } else if (message.kind === "call" && message.to === this.tabs.id) {
      this.call(message);
    }
  }

  /** Engine events: to every follower. @param {WireEvent[]} events */
  events(events) {
    if (!this.stopped && (this.followers.size || this.tabs.peers.size)) this.reply(null, { type: "events", events });
  }

  /** The follower `id`, known from now on (until it leaves). @param {string} id */
  follower(id) {
    let follower = this.followers.get(id);
    if (!follower) {
      follower = { subscriptions: new Map() };
      this.followers.set(id, follower);
      this.tabs.watch(id, () => this.drop(id));
    }
    return follower;
  }

  /** A follower left (or crashed): end its subscriptions, stop listening for it. @param {string} id */
  drop(id) {
    const follower = this.followers.get(id);
    this.followers.delete(id);
    this.tabs.peers.delete(id);
    if (this.stopped) return;
    for (const stop of follower?.subscriptions.values() ?? []) stop();
    this.leader.updateListen();
  }

  /** Answer one follower request. @param {Call} call */
  async call({ from, id, message, repeatable }) {
    const follower = this.follower(from);
    const { type, ...args } = message;
    /** @type {unknown} */
    let result;
    try {
      if (type === "ping") {
        await this.leader.settle("");
        result = "pong";
      } else if (type === "listen") {
        this.leader.updateListen(); // ./tabs.mjs noted the types
        result = args.events;
      } else if (type === "subscribe") {
        result = this.subscribe(from, follower, String(id), String(args.runId));
      } else if (type === "unsubscribe") {
        const stop = follower.subscriptions.get(String(args.subscription));
        stop?.();
        result = Boolean(stop);
      } else {
        result = await this.leader.request(/** @type {CallName} */ (type), args, { repeatable });
      }
    } catch (error) {
      this.reply(from, { type: "response", id, ok: false, error: errorToWire(error) });
      return;
    }
    this.reply(from, { type: "response", id, ok: true, result: /** @type {any} */ (result) });
  }

  /**
   * Follow a run for a follower; its events go out under the follower's request id.
   * @param {string} to @param {Follower} follower @param {string} id @param {string} runId
   */
  subscribe(to, follower, id, runId) {
    const stop = this.leader.subscribe(runId, {
      event: (event) => {
        if (TERMINAL.has(event.type)) follower.subscriptions.delete(id); // it ends by itself
        this.reply(to, { type: "subscription", id, event });
      },
      end: (error) => {
        follower.subscriptions.delete(id);
        this.reply(to, { type: "subscription-end", id, ...(error ? { error: errorToWire(error) } : {}) });
      },
    });
    follower.subscriptions.set(id, stop);
    return id;
  }

  /** @param {string | null} to @param {ToFollower} message */
  reply(to, message) {
    if (!this.stopped) this.tabs.post({ kind: "reply", to, message });
  }

  /** Answer nothing more (this tab closes or failed); its followers turn to the next leader. */
  stop() {
    this.stopped = true;
    this.followers.clear();
  }
}
