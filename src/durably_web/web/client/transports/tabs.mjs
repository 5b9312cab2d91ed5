// @ts-check
/**
 * This tab among the tabs of its origin that use one database: its id, the channel they share,
 * and the Web Locks that decide which of them runs the engine (./worker.mjs uses it).
 *
 * - The lead lock `durably-web:<database>`: its holder (the leader) runs the engine worker,
 *   because only one worker per origin can own the OPFS pool. `tryLead()` takes it if no tab
 *   holds it; `queueLead()` waits in line, and the browser grants it to the next tab in line
 *   the moment the leader releases it or closes, reloads or crashes.
 * - A presence lock `durably-web:<database>:tab:<id>`, held from `join()` to `leave()`: the
 *   leader `watch()`es a follower's and gets it (so learns the tab is gone) when that tab
 *   closes or crashes, which no message would say.
 * - The BroadcastChannel `durably-web:<database>` (messages: ./tabs.d.ts). `peers` keeps the
 *   event types each other tab listens for, from their `hello` and `listen` messages, so the
 *   tab that leads next starts its engine listening for them.
 */

/**
 * @typedef {import("./tabs.js").TabMessage} TabMessage
 * @typedef {TabMessage extends infer M ? M extends TabMessage ? Omit<M, "from"> : never : never} Outgoing
 * @typedef {{ locks: LockManager, Channel: typeof BroadcastChannel, database: string,
 *             receive: (message: TabMessage) => void }} TabsOptions
 */

/** A new tab id: random, one per client. */
const newId = () => globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;

export class Tabs {
  /** @param {TabsOptions} options */
  constructor({ locks, Channel, database, receive }) {
    this.locks = locks;
    this.id = newId();
    /** The lead lock's name, and the channel's. */
    this.name = `durably-web:${database}`;
    /** The event types each other tab listens for, by tab id. @type {Map<string, string[]>} */
    this.peers = new Map();
    this.closed = false;
    this.channel = new Channel(this.name);
    this.channel.onmessage = (event) => {
      /** @type {TabMessage} */
      const message = event.data;
      if (this.closed || typeof message?.from !== "string" || message.from === this.id) return;
      this.note(message);
      receive(message);
    };
    /** Aborts the lock requests still waiting when this tab leaves. */
    this.abort = new AbortController();
    this.releaseLead = () => {};
    this.releasePresence = () => {};
    /** Settles once this tab neither holds nor waits for the lead lock. @type {Promise<unknown>} */
    this.leadReleased = Promise.resolve();
  }

  /** Take this tab's presence lock; resolves once it is held (before the tab sends anything). */
  join() {
    /** @type {Promise<void>} */
    const held = new Promise((resolve) => (this.releasePresence = resolve));
    return new Promise((resolve, reject) => {
      const request = this.locks.request(`${this.name}:tab:${this.id}`, { signal: this.abort.signal }, () => {
        resolve(undefined);
        return held;
      });
      request.catch(reject);
    });
  }

  /** Take the lead lock if no tab holds it (held until `leave()`); resolves whether it did. @returns {Promise<boolean>} */
  tryLead() {
    /** @type {Promise<void>} */
    const held = new Promise((resolve) => (this.releaseLead = resolve));
    return new Promise((resolve, reject) => {
      this.leadReleased = this.locks.request(this.name, { ifAvailable: true }, (lock) => {
        resolve(Boolean(lock));
        return lock ? held : undefined;
      });
      this.leadReleased.catch(reject);
    });
  }

  /** Wait in line for the lead lock (held until `leave()`); `granted()` runs once it is this tab's. @param {() => void} granted */
  queueLead(granted) {
    /** @type {Promise<void>} */
    const held = new Promise((resolve) => (this.releaseLead = resolve));
    this.leadReleased = this.locks.request(this.name, { signal: this.abort.signal }, () => {
      granted();
      return held;
    });
    this.leadReleased.catch(() => {}); // AbortError: this tab left before its turn
  }

  /** Call `gone()` once tab `id` has left, closed or crashed (its presence lock is free). @param {string} id @param {() => void} gone */
  watch(id, gone) {
    this.locks.request(`${this.name}:tab:${id}`, { signal: this.abort.signal }, () => gone()).catch(() => {});
  }

  /** Send a message to every other tab (this tab's id added as `from`). @param {Outgoing} message */
  post(message) {
    if (!this.closed) this.channel.postMessage({ ...message, from: this.id });
  }

  /** Keep track of what the other tabs listen for. @param {TabMessage} message */
  note(message) {
    if (message.kind === "hello") this.peers.set(message.from, message.events);
    else if (message.kind === "call" && message.message.type === "listen") this.peers.set(message.from, /** @type {string[]} */ (message.message.events));
    else if (message.kind === "bye" || message.kind === "leader") this.peers.delete(message.from);
  }

  /** The event types the other tabs listen for (sorted, each once). */
  peerTypes() {
    return [...new Set([...this.peers.values()].flat())].sort();
  }

  /**
   * Leave: stop waiting for locks, release the held ones, close the channel.
   * @returns {Promise<void>} settles once the next tab may take the lead lock
   */
  leave() {
    this.closed = true;
    this.abort.abort();
    this.releaseLead();
    this.releasePresence();
    this.channel.close();
    return this.leadReleased.then(
      () => {},
      () => {},
    );
  }
}
