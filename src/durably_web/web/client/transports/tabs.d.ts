// The messages between the tabs of one origin that use one database (./tabs.mjs).
//
// Every tab of the origin that connected to database D opens the BroadcastChannel
// `durably-web:<D>` (the name of D's Web Lock too). The tab holding the lock (the leader)
// runs the engine worker; the others (followers) reach it over this channel. A
// BroadcastChannel gives every message to every other tab: `to` names the tab a message is
// for, and every tab also reads the others' `hello` and `listen` messages, so whichever
// tab leads next knows at once what every tab listens for. Messages from one tab arrive in
// the order it sent them. The payloads are the worker protocol's (../protocol.d.ts): a
// follower's `call` carries a worker request, a leader's `reply` a worker answer or push.

import type { WorkerPush, WorkerResponse } from "../protocol.js";
import type { ReadyInfo, Status } from "./transport.js";

/** Every message on the channel; `from` is the sending tab's id (random, one per client). */
export type TabMessage = Hello | LeaderStatus | Call | Reply | Bye;

/** A follower looks for the leader (at its start, and whenever a new leader appears). */
export interface Hello {
  kind: "hello";
  from: string;
  /** The event types the follower listens for. */
  events: string[];
}

/** The leader's status: at every change, and in answer to a `hello` (then `to` is set). */
export interface LeaderStatus {
  kind: "leader";
  from: string;
  to?: string;
  status: Status;
  stage?: string;
  attempt: number;
  marks?: Record<string, number>;
  /** With status `ready`: what its engine is (jobs, worker id, boot marks). */
  ready?: ReadyInfo;
}

/** A follower's request to the leader: one worker request (`listen`, `ping`, `subscribe`... too). */
export interface Call {
  kind: "call";
  from: string;
  to: string;
  id: number;
  message: { type: string; [field: string]: unknown };
  /** Safe to send again to another engine (the protocol table's `repeatable`). */
  repeatable: boolean;
}

/** The leader's answer to a call, a subscription's push, or (`to` null) events for every follower. */
export interface Reply {
  kind: "reply";
  from: string;
  to: string | null;
  message: WorkerResponse | WorkerPush;
}

/** A tab closes its client: the leader ends its subscriptions and forgets its event types. */
export interface Bye {
  kind: "bye";
  from: string;
}
