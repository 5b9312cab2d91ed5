// The seam between the one client core (../client.mjs) and the ways to reach an engine.
//
// A transport carries the remote operations of ../protocol.d.ts to one engine and brings its
// answers, events and subscriptions back, as httpx's Transport does for its Client. The core
// decides *what* to ask (operation, wire arguments, whether a repeat is safe); the transport
// decides *how*, and owns everything that depends on the way: boot, leader and follower
// tabs, restarts, reconnects, re-sending and re-subscribing. Today: ./worker.mjs (the engine in a Web Worker
// of this tab, or of another tab of the origin that this one forwards through) and ./http.mjs
// (a server, over fetch and server-sent events).

import type { DurablyError } from "../errors.mjs";
import type { Job, OperationArgs, WireEvent, WorkerResults } from "../protocol.js";

/** Where the engine runs, seen from this tab: its own worker, another tab's, a server. */
export type Role = "leader" | "follower" | "server";

/**
 * The client's state. `restarting`: the transport is getting its engine back (a new worker,
 * a reconnecting stream, a new leader tab); `failed` and `closed` are final: every request
 * rejects.
 */
export type Status = "booting" | "ready" | "restarting" | "failed" | "closed";

/** One status change, as `onStatus` and `on("status")` get it. */
export interface StatusInfo {
  status: Status;
  role: Role;
  /** The boot stage (`worker`, `sqlite`, `vfs`, `pyodide`, `engine`; `leader`: a follower looks for the leader tab; `server`; `events`). */
  stage?: string;
  /** Starts of the engine in a row (the watchdog's count); 1 for a server. */
  attempt: number;
  error?: DurablyError;
  /** Boot marks of a ready worker (ms since it started). */
  marks?: Record<string, number>;
  /** When it happened (`performance.now()` of the page). */
  at: number;
}

/** What a transport knows once its engine is ready (again). */
export interface ReadyInfo {
  /** The engine's jobs; null when it cannot list them (upstream's server has no `GET /jobs`). */
  jobs: Job[] | null;
  marks: Record<string, number>;
  workerId?: string;
}

/** The operations a client sends with `request` (the others are a transport's own). */
export type CallName = Exclude<keyof WorkerResults, "subscribe" | "ping" | "listen" | "unsubscribe">;

export interface RequestOptions {
  /**
   * Safe to send again if the transport lost its engine while the request was in flight
   * (a read; a trigger with an idempotency key). Otherwise such a request rejects with
   * DurablyError `worker_restarted`: the engine may or may not have applied it.
   */
  repeatable: boolean;
}

/** How a transport reports to the client that started it. */
export interface TransportHooks {
  /** Every status change. */
  status(info: StatusInfo): void;
  /** The engine is ready: at the first start and after every restart. */
  ready(info: ReadyInfo): void;
  /** One engine event of a type the client listens for. */
  event(event: WireEvent): void;
  /** The event types the client wants now (read at each (re)start of the engine). */
  listening(): string[];
}

/** Where a subscription's events go. */
export interface SubscriptionSink {
  /** One of the run's events: its current state first, then live ones. */
  event(event: WireEvent): void;
  /** The engine ended the subscription (with an error, or null after its last event). */
  end(error: DurablyError | null): void;
}

export interface Transport {
  /** Where the engine runs (also in every StatusInfo); a follower tab becomes the leader when the leader tab goes away. */
  readonly role: Role;
  /** Reach the engine; resolves once it is ready, rejects with the boot's error. */
  start(hooks: TransportHooks): Promise<ReadyInfo>;
  /**
   * Send one operation; resolves with the engine's result (the worker's wire form, whatever
   * the transport), rejects with a DurablyError. Waits while the engine is (re)starting.
   */
  request<K extends CallName>(op: K, args: OperationArgs[K], options: RequestOptions): Promise<WorkerResults[K]>;
  /** From now on, deliver engine events of these types (sorted; `"*"`: all; none: stop). */
  listen(types: string[]): void;
  /**
   * Follow one run's events into `sink` until its terminal event, across restarts and
   * reconnects (which start again from the run's current state). Returns a function that
   * stops it early.
   */
  subscribe(runId: string, sink: SubscriptionSink): () => void;
  /** Resolves once the events the engine sent about `runId` before now reached `event`. */
  settle(runId: string): Promise<void>;
  /** Let go of the engine; requests reject with `closed`, subscriptions end. */
  close(reason: string): Promise<void>;
}
