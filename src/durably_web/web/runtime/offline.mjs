// @ts-check
/**
 * Offline use and storage for a page of a built site: the service worker, updates, and
 * persistent storage. Call it first, before the engine boots:
 *
 *     import { startOffline } from "./_durably/runtime/offline.mjs";
 *     const offline = await startOffline({ element: "#offline", register: false });
 *     preconnect({ jobs: "./jobs.py", onStatus: (s) => s.status === "ready" && offline.register() });
 *     // ... startPyScript
 *
 * (`register: false` + `offline.register()` once the engine is ready: on a first visit the
 * service worker's download of the whole build then does not compete with the engine's boot,
 * ~0.4 s sooner ready here. `startOffline({element})` alone registers at once.)
 *
 * - The site's service worker (`durably-sw.js` at the top of the site, see
 *   ./service_worker.js) is registered; it keeps a verified copy of the whole build, so after
 *   one online visit the page loads and its engine runs with no network.
 * - Updates: a new build is downloaded (and verified) in the background during an online
 *   visit while the page keeps running on the build it was loaded with; the page then shows
 *   "update ready" with a Reload button. **The next load takes it**: when this function finds
 *   a downloaded build waiting and no other tab of the site is open, it switches to it and
 *   reloads before anything has started (so the promise does not resolve in that load).
 *   Files of two builds are never mixed: each build is its own cache, swapped whole.
 * - Storage: asks for persistent storage (`navigator.storage.persist()`) once the site is
 *   saved for offline use, so the browser does not evict the database under storage
 *   pressure, and reports the answer and `navigator.storage.estimate()` (read again every
 *   30 s, and after every change of the service worker).
 *
 * `element` (a selector or an Element) gets a small rendered summary; pages can instead read
 * `offline.state` and listen with `offline.onChange(fn)` (PyScript: `js` access to the same
 * object). Without service workers (http: other than localhost, private modes) the page works
 * online as before and `state.offline` is "unavailable".
 */

/**
 * @typedef {{
 *   offline: "unavailable" | "pending" | "installing" | "ready" | "failed",
 *   build: string | null,
 *   update: "none" | "downloading" | "ready" | "waiting-for-tabs",
 *   persisted: boolean | null,
 *   usage: number | null,
 *   quota: number | null,
 *   error: { code: string, message: string } | null,
 * }} OfflineState
 *   offline: whether this site is saved for use without a network ("ready": the service
 *   worker has a complete copy; "pending": not registered yet); build: the id (manifest sha256) of the copy that serves this
 *   page, null before the first copy; update: a newer build's progress; persisted: the answer
 *   of navigator.storage.persist(); usage / quota: bytes, from navigator.storage.estimate();
 *   error: why saving the site failed (`quota_exceeded`, `build_changed`, ...).
 */

const SITE = new URL("../../", import.meta.url); // this file is <site>/_durably/runtime/offline.mjs
const SCRIPT = new URL("durably-sw.js", SITE).href;
const ACTIVATE_TIMEOUT_MS = 3000;
const STORAGE_REFRESH_MS = 30_000;

export class Offline {
  constructor() {
    /** @type {OfflineState} */
    this.state = { offline: "unavailable", build: null, update: "none", persisted: null, usage: null, quota: null, error: null };
    /** @type {Set<(state: OfflineState) => void>} */
    this.listeners = new Set();
    /** @type {Element | null} */
    this.element = null;
    /** @type {ServiceWorkerRegistration | null} */
    this.registration = null;
    /** Ask for persistent storage once the site is saved (startOffline's `persist`). */
    this.persist = true;
    /** @type {Promise<void> | null} */
    this.registering = null;
  }

  /**
   * Register the site's service worker (once; later calls return the same promise). On a
   * first visit it then downloads the whole build: pages that want the engine's boot to have
   * the network to itself call this when the engine is ready (`startOffline({register:
   * false})`, then `onStatus`); browsers check for a new build on every visit anyway.
   * @returns {Promise<void>}
   */
  register() {
    const container = navigator.serviceWorker;
    if (!container) return Promise.resolve();
    this.registering ??= container.register(SCRIPT, { scope: SITE.href, updateViaCache: "none" }).then(
      (registration) => this.follow(registration),
      (error) => {
        this.set({ offline: "failed", error: { code: "register_failed", message: String(error) } });
        void this.refreshStorage();
      },
    );
    return this.registering;
  }

  /** Keep `state` in step with a registration's workers (once per registration). @param {ServiceWorkerRegistration} registration */
  follow(registration) {
    if (this.registration === registration) return;
    this.registration = registration;
    follow(this, registration, this.persist);
  }

  /** @param {(state: OfflineState) => void} listener @returns {() => void} unsubscribe */
  onChange(listener) {
    this.listeners.add(listener);
    listener(this.state);
    return () => void this.listeners.delete(listener);
  }

  /** @param {Partial<OfflineState>} change */
  set(change) {
    this.state = { ...this.state, ...change };
    this.render();
    for (const listener of this.listeners) listener(this.state);
    globalThis.dispatchEvent?.(new CustomEvent("durably-offline", { detail: this.state }));
  }

  /** Reload into the waiting build now (the "Reload" button). */
  async applyUpdate() {
    const waiting = this.registration?.waiting;
    if (!waiting) return location.reload();
    const outcome = await activate(waiting);
    if (outcome === "busy") this.set({ update: "waiting-for-tabs" });
  }

  /** Read the storage estimate again (after a job wrote a lot, say). */
  async refreshStorage() {
    const storage = navigator.storage;
    if (!storage?.estimate) return;
    const { usage = null, quota = null } = await storage.estimate();
    const persisted = storage.persisted ? await storage.persisted() : null;
    this.set({ usage, quota, persisted });
  }

  /** Show the state in `element` (two lines, and the Reload button when an update waits). */
  render() {
    if (!this.element) return;
    const s = this.state;
    const el = /** @type {HTMLElement} */ (this.element);
    el.dataset.offline = s.offline;
    el.dataset.update = s.update;
    el.dataset.persisted = String(s.persisted);
    const site = [
      {
        unavailable: "Online only (this browser gives the page no service worker)",
        pending: "Not saved for offline use yet",
        installing: "Saving for offline use…",
        ready: "Works offline",
        failed: `Not saved for offline use: ${s.error?.message ?? "unknown error"}`,
      }[s.offline],
    ];
    if (s.build) site.push(`build ${s.build.slice(0, 8)}`);
    if (s.error && s.offline === "ready") site.push(`the update failed: ${s.error.message}`);
    const storage = [];
    if (s.persisted !== null) {
      storage.push(s.persisted ? "Storage persistent" : "Storage best-effort (may be cleared when space runs low)");
    }
    if (s.usage !== null && s.quota !== null) storage.push(`${megabytes(s.usage)} used of ${megabytes(s.quota)}`);
    const line = (/** @type {string} */ className, /** @type {string[]} */ parts) => {
      const span = document.createElement("span");
      span.className = className;
      span.textContent = parts.join(" · ");
      return span;
    };
    el.replaceChildren(line("durably-offline-site", site));
    if (storage.length) el.append(document.createElement("br"), line("durably-offline-storage", storage));
    if (s.update === "ready" || s.update === "waiting-for-tabs") {
      const note = document.createElement("span");
      note.className = "durably-update";
      note.textContent = s.update === "ready" ? "Update ready: " : "Update ready: close the site's other tabs, then ";
      const button = document.createElement("button");
      button.type = "button";
      button.className = "durably-update-button";
      button.textContent = "Reload";
      button.addEventListener("click", () => void this.applyUpdate());
      note.append(button);
      el.append(document.createElement("br"), note);
    }
  }
}

/** @param {number} bytes */
function megabytes(bytes) {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)}\u00a0GB` : `${(bytes / 1e6).toFixed(1)}\u00a0MB`;
}

/**
 * Ask a waiting service worker to take over; resolves "reloading" (the page reloads once it
 * controls the page), "busy" (other tabs are open) or "timeout".
 * @param {ServiceWorker} waiting
 * @returns {Promise<"reloading" | "busy" | "timeout">}
 */
function activate(waiting) {
  return new Promise((resolve) => {
    const container = navigator.serviceWorker;
    const done = (/** @type {"reloading" | "busy" | "timeout"} */ outcome) => {
      clearTimeout(timer);
      container.removeEventListener("message", onMessage);
      container.removeEventListener("controllerchange", onChange);
      resolve(outcome);
    };
    const onChange = () => {
      done("reloading");
      location.reload();
    };
    const onMessage = (/** @type {MessageEvent} */ event) => {
      if (event.data?.type === "durably:busy") done("busy");
    };
    const timer = setTimeout(() => done("timeout"), ACTIVATE_TIMEOUT_MS);
    container.addEventListener("controllerchange", onChange);
    container.addEventListener("message", onMessage);
    waiting.postMessage({ type: "durably:activate" });
  });
}

/** @param {ServiceWorker | null | undefined} worker @returns {Promise<string | null>} */
function buildOf(worker) {
  if (!worker) return Promise.resolve(null);
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    const timer = setTimeout(() => resolve(null), ACTIVATE_TIMEOUT_MS);
    channel.port1.onmessage = (event) => {
      clearTimeout(timer);
      resolve(event.data?.build ?? null);
    };
    worker.postMessage({ type: "durably:build" }, [channel.port2]);
  });
}

/**
 * Register the site's service worker, take a waiting update, ask for persistent storage.
 * @param {{ element?: string | Element | null, persist?: boolean, register?: boolean }} [options]
 *   element: where to render the summary; persist: ask for persistent storage (default true);
 *   register: register the service worker now (default true); false: call
 *   `offline.register()` later (when the engine is ready, say)
 * @returns {Promise<Offline>} (never resolves in a load that switches to a new build)
 */
export async function startOffline({ element = null, persist = true, register = true } = {}) {
  const offline = new Offline();
  offline.element = typeof element === "string" ? document.querySelector(element) : element;
  offline.persist = persist;
  const container = navigator.serviceWorker;
  if (!container) {
    offline.render();
    void offline.refreshStorage();
    return offline;
  }
  offline.set({ offline: "pending" });
  container.startMessages(); // module scripts run before the queue would start by itself
  const registration = await container.getRegistration(SITE.href).catch(() => undefined);
  if (registration?.waiting && container.controller) {
    // An update was downloaded in an earlier visit: take it before anything starts.
    const outcome = await activate(registration.waiting);
    if (outcome === "reloading") return new Promise(() => {});
    if (outcome === "busy") offline.set({ update: "waiting-for-tabs" });
  }
  container.addEventListener("message", (event) => {
    if (event.data?.type === "durably:install-failed") {
      const error = { code: String(event.data.code), message: String(event.data.message) };
      if (offline.state.offline === "ready") offline.set({ update: "none", error });
      else offline.set({ offline: "failed", error });
    }
  });
  if (registration) offline.follow(registration); // an earlier visit saved the site: show it
  if (register) await offline.register();
  setInterval(() => void offline.refreshStorage(), STORAGE_REFRESH_MS); // jobs fill the database
  return offline;
}

/**
 * Keep `offline.state` in step with the registration's workers.
 * @param {Offline} offline @param {ServiceWorkerRegistration} registration @param {boolean} persist
 */
function follow(offline, registration, persist) {
  let asked = false; // ask once per load: some browsers prompt the user
  const update = async () => {
    const active = registration.active;
    const next = registration.installing ?? registration.waiting;
    /** @type {Partial<OfflineState>} */
    const change = {};
    if (active) {
      change.offline = "ready";
      change.build = await buildOf(active);
      if (next && offline.state.update !== "waiting-for-tabs") {
        change.update = registration.waiting ? "ready" : "downloading";
      }
      if (!next) change.update = "none";
    } else if (next) {
      change.offline = offline.state.offline === "failed" ? "failed" : "installing";
    }
    offline.set(change);
    if (active && persist && !asked) {
      asked = true;
      await askPersistence(offline);
    }
    await offline.refreshStorage();
  };
  const watch = (/** @type {ServiceWorker | null} */ worker) => worker?.addEventListener("statechange", () => void update());
  watch(registration.installing);
  watch(registration.waiting);
  registration.addEventListener("updatefound", () => {
    watch(registration.installing);
    void update();
  });
  void update();
}

/** @param {Offline} offline */
async function askPersistence(offline) {
  const storage = navigator.storage;
  if (!storage?.persist) return;
  try {
    offline.set({ persisted: await storage.persist() });
  } catch {
    offline.set({ persisted: false });
  }
}
