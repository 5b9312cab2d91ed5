// @ts-check
/**
 * The event hub (src/durably_web/web/client/events.mjs): `on()` handlers, the `listen` types
 * and the events kept for a handler attached later, and the Subscription iterator
 * (subscription.mjs).
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { ValidationError } from "../../src/durably_web/web/client/errors.mjs";
import { EventHub, MAX_EARLY, checkEventType } from "../../src/durably_web/web/client/events.mjs";
import { Subscription } from "../../src/durably_web/web/client/subscription.mjs";
import { wireEvent } from "./fakes.mjs";

/** A hub, and how often it said its types changed. @param {string[]} [listen] */
function hub(listen) {
  const changes = { count: 0 };
  return { hub: new EventHub({ listen, onChange: () => changes.count++ }), changes };
}

/** Let the hub's scheduled drain run. */
const later = () => new Promise((resolve) => setTimeout(resolve, 1));

test("types: the handled ones and the listen ones, sorted; a change is reported", () => {
  const { hub: h, changes } = hub(["run:trigger"]);
  assert.deepEqual(h.types(), ["run:trigger"]);
  const off = h.on("run:complete", () => {});
  assert.deepEqual(h.types(), ["run:complete", "run:trigger"]);
  off();
  assert.deepEqual(h.types(), ["run:trigger"]);
  h.addListen(["log:write"]);
  assert.deepEqual(h.types(), ["log:write", "run:trigger"]);
  assert.equal(changes.count, 3);
});

test("unknown types and non-function handlers are ValidationErrors", () => {
  assert.throws(() => new EventHub({ listen: ["run:bogus"], onChange: () => {} }), ValidationError);
  const { hub: h } = hub();
  assert.throws(() => h.on("status", () => {}), { message: /unknown event type "status"; known: \*, status, run:trigger/ });
  assert.throws(() => h.on("run:complete", /** @type {any} */ (null)), { message: "event handler must be a function, got object" });
  assert.equal(checkEventType("*"), "*");
  assert.equal(checkEventType("run:leased"), "run:leased");
});

test("events of a listen type before any handler are kept and delivered first, in order", async () => {
  const { hub: h } = hub(["run:progress"]);
  h.deliver(wireEvent("run:progress", { sequence: 1 }));
  h.deliver(wireEvent("run:progress", { sequence: 2 }));
  /** @type {number[]} */
  const seen = [];
  h.on("run:progress", (event) => seen.push(event.sequence));
  assert.deepEqual(seen, [], "not during on(): the caller stores its side of the handler first");
  await later();
  assert.deepEqual(seen, [1, 2]);
  h.deliver(wireEvent("run:progress", { sequence: 3 }));
  assert.deepEqual(seen, [1, 2, 3]);
});

test("a new event delivers the kept ones before itself", () => {
  const { hub: h } = hub(["log:write"]);
  h.deliver(wireEvent("log:write", { sequence: 1 }));
  /** @type {number[]} */
  const seen = [];
  h.on("log:write", (event) => seen.push(event.sequence));
  h.deliver(wireEvent("log:write", { sequence: 2 }));
  assert.deepEqual(seen, [1, 2]);
});

test("at most MAX_EARLY events are kept, the oldest dropped first", async () => {
  const { hub: h } = hub(["run:progress"]);
  for (let i = 1; i <= MAX_EARLY + 5; i++) h.deliver(wireEvent("run:progress", { sequence: i }));
  /** @type {number[]} */
  const seen = [];
  h.on("*", (event) => seen.push(event.sequence));
  await later();
  assert.equal(seen.length, MAX_EARLY);
  assert.equal(seen[0], 6);
});

test("a type that had a handler (since removed) is not kept again", async () => {
  const { hub: h } = hub(["run:complete"]);
  h.on("run:complete", () => {})();
  h.deliver(wireEvent("run:complete"));
  /** @type {string[]} */
  const seen = [];
  h.on("run:complete", (event) => seen.push(event.type));
  await later();
  assert.deepEqual(seen, []);
});

test("run:leased is delivered to run:start handlers too, and kept for either", async () => {
  const { hub: h } = hub(["run:start"]);
  h.deliver(wireEvent("run:leased", { runId: "early" }));
  /** @type {string[]} */
  const seen = [];
  h.on("run:start", (event) => seen.push(`start ${event.runId}`));
  h.on("run:leased", (event) => seen.push(`leased ${event.runId}`));
  await later();
  h.deliver(wireEvent("run:leased", { runId: "live" }));
  assert.deepEqual(seen, ["leased early", "start early", "leased live", "start live"]);
});

test("a failing handler is reported and the others still run", (t) => {
  const error = t.mock.method(console, "error", () => {});
  const { hub: h } = hub();
  /** @type {string[]} */
  const seen = [];
  h.on("run:complete", () => {
    throw new Error("bad handler");
  });
  h.on("*", (event) => seen.push(event.type));
  h.deliver(wireEvent("run:complete"));
  assert.deepEqual(seen, ["run:complete"]);
  assert.equal(error.mock.calls.length, 1);
});

test("clear forgets handlers and kept events", async () => {
  const { hub: h } = hub(["run:complete"]);
  h.deliver(wireEvent("run:complete"));
  h.clear();
  /** @type {string[]} */
  const seen = [];
  h.on("run:complete", (event) => seen.push(event.type));
  await later();
  assert.deepEqual(seen, []);
});

test("Subscription: queued and awaited events, the end after the terminal event, stop once", async () => {
  /** @type {import("../../src/durably_web/web/client/transports/transport.js").SubscriptionSink | null} */
  let sink = null;
  let stops = 0;
  const sub = new Subscription("r1", (s) => {
    sink = s;
    return () => stops++;
  });
  assert.ok(sink);
  const feed = /** @type {import("../../src/durably_web/web/client/transports/transport.js").SubscriptionSink} */ (sink);
  feed.event(wireEvent("run:progress"));
  const waiting = [sub.next(), sub.next()];
  feed.event(wireEvent("run:complete"));
  feed.event(wireEvent("run:progress")); // after the end: dropped
  assert.deepEqual((await Promise.all(waiting)).map((r) => r.value?.type), ["run:progress", "run:complete"]);
  assert.deepEqual(await sub.next(), { value: undefined, done: true });
  assert.equal(stops, 1);
  feed.end(null);
  assert.equal(stops, 1);
});

test("Subscription: an error end rejects a waiting next() once, then it is done", async () => {
  /** @type {(error: any) => void} */
  let end = () => {};
  const sub = new Subscription("r1", (sink) => {
    end = (error) => sink.end(error);
    return () => {};
  });
  const waiting = sub.next();
  end(new ValidationError("bad"));
  await assert.rejects(waiting, ValidationError);
  assert.deepEqual(await sub.next(), { value: undefined, done: true });
});

test("Subscription: an end while opening stops the transport's side at once", () => {
  let stopped = false;
  const sub = new Subscription("r1", (sink) => {
    sink.end(null);
    return () => (stopped = true);
  });
  assert.ok(stopped);
  assert.equal(sub.done, true);
});
