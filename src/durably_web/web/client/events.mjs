// @ts-check
/**
 * Engine events on the page: the `on()` handlers of a client, worker or server mode alike.
 *
 * A client listens for the union of the types its handlers want and the types given to
 * `connect({listen})`. The `listen` types are listened for from the start (worker mode: in the
 * worker's init config, before the engine claims its first run), so events that arrive before
 * the page has attached a handler are not lost: they are kept (at most `MAX_EARLY`) and
 * delivered, in order, to the first handler attached for their type. Events of a type that
 * already had a handler (since removed) are not kept.
 */
import { ValidationError } from "./errors.mjs";

/** The engine's event types (durably_web.events), `run:leased` being upstream's `run:start`. */
export const EVENT_TYPES = new Set([
  "run:trigger", "run:coalesced", "run:start", "run:leased", "run:lease-renewed", "run:progress",
  "run:complete", "run:fail", "run:cancel", "run:retry", "run:delete", "step:start",
  "step:complete", "step:fail", "step:cancel", "log:write", "worker:error",
]);

/** How many early events (no handler yet) are kept at most; the oldest go first. */
export const MAX_EARLY = 1000;

/**
 * Check an event type for `on()` / `listen`.
 * @param {unknown} type
 * @returns {string}
 */
export function checkEventType(type) {
  if (type !== "*" && !EVENT_TYPES.has(/** @type {string} */ (type))) {
    throw new ValidationError(`unknown event type ${JSON.stringify(type)}; known: *, status, ${[...EVENT_TYPES].join(", ")}`);
  }
  return /** @type {string} */ (type);
}

/** The handler keys an event is delivered to. @param {any} event */
const keysOf = (event) => (event.type === "run:leased" ? ["run:leased", "run:start", "*"] : [event.type, "*"]);

/**
 * Whether a client listening for `types` (its `EventHub.types()`) wants `event`: a tab gets
 * the events every tab of its database listens for and keeps its own.
 * @param {string[]} types @param {any} event
 */
export const wanted = (types, event) => keysOf(event).some((key) => types.includes(key));

export class EventHub {
  /**
   * @param {{ listen?: string[], onChange: () => void }} options
   *   listen: types to listen for from the start (kept until a handler takes them);
   *   onChange: called when `types()` may have changed (a handler added or removed)
   */
  constructor({ listen = [], onChange }) {
    /** @type {Map<string, Set<(event: any) => void>>} */
    this.handlers = new Map();
    /** @type {Set<string>} */
    this.initial = new Set(listen.map(checkEventType));
    /** Types that have had a handler: their events are no longer kept for later. @type {Set<string>} */
    this.handled = new Set();
    /** @type {any[]} */
    this.early = [];
    this.drainScheduled = false;
    this.onChange = onChange;
  }

  /** The event types to listen for: the handled ones and the `listen` ones, sorted. */
  types() {
    return [...new Set([...this.handlers.keys(), ...this.initial])].sort();
  }

  /** Listen for more types from now on (a later `connect({listen})` taking a boot over). @param {string[]} types */
  addListen(types) {
    for (const type of types) this.initial.add(checkEventType(type));
    this.onChange();
  }

  /**
   * Call `handler` for each event of `type` ("*": all); returns a function that removes it.
   * Events of that type that arrived before any handler for it are delivered first.
   * @param {string} type @param {(event: any) => void} handler
   */
  on(type, handler) {
    if (typeof handler !== "function") throw new ValidationError(`event handler must be a function, got ${typeof handler}`);
    checkEventType(type);
    const set = this.handlers.get(type) ?? new Set();
    set.add(handler);
    this.handlers.set(type, set);
    this.handled.add(type);
    if (type === "run:start" || type === "run:leased") this.handled.add(type === "run:start" ? "run:leased" : "run:start");
    if (this.early.length && !this.drainScheduled) {
      // Not now: the caller (e.g. the Python wrapper) stores its side of the handler after
      // `on()` returns; a later turn delivers the early events, before any newer event.
      this.drainScheduled = true;
      setTimeout(() => this.drain(), 0);
    }
    this.onChange();
    return () => {
      set.delete(handler);
      if (!set.size && this.handlers.get(type) === set) this.handlers.delete(type);
      this.onChange();
    };
  }

  /** Deliver an event from the engine (or keep it until a handler for it is attached). @param {any} event */
  deliver(event) {
    if (this.drainScheduled) this.drain();
    const keys = keysOf(event);
    if (keys.some((key) => this.handlers.get(key)?.size)) {
      this.dispatch(event, keys);
    } else if (!keys.some((key) => this.handled.has(key))) {
      if (this.early.length >= MAX_EARLY) this.early.shift();
      this.early.push(event);
    }
  }

  /** Deliver the kept events that now have a handler, in arrival order. */
  drain() {
    this.drainScheduled = false;
    /** @type {any[]} */
    const keep = [];
    for (const event of this.early.splice(0)) {
      const keys = keysOf(event);
      if (keys.some((key) => this.handlers.get(key)?.size)) this.dispatch(event, keys);
      else if (!keys.some((key) => this.handled.has(key))) keep.push(event);
    }
    this.early.push(...keep);
  }

  /** @param {any} event @param {string[]} keys */
  dispatch(event, keys) {
    for (const key of keys) {
      for (const handler of [...(this.handlers.get(key) ?? [])]) {
        try {
          handler(event);
        } catch (error) {
          console.error(`durably_web: a ${event.type} handler failed`, error);
        }
      }
    }
  }

  /** Forget every handler and kept event (the client closed). */
  clear() {
    this.handlers.clear();
    this.early = [];
  }
}
