// @ts-check
/**
 * The client core (src/durably_web/web/client/client.mjs) over a scripted Transport: what it
 * asks of a transport (operation, wire arguments, repeatable), job handles, status, and
 * waiting for runs (subscription.mjs followRun). A transport is anything with the interface
 * of transports/transport.d.ts: this one is the smallest.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { DurablyClient, repeatable } from "../../src/durably_web/web/client/client.mjs";
import { DurablyError, NotFoundError, RunCancelled, RunFailed, ValidationError } from "../../src/durably_web/web/client/errors.mjs";
import { OPERATIONS } from "../../src/durably_web/web/client/protocol.mjs";
import { flush, wireEvent, wireRun } from "./fakes.mjs";

/**
 * @typedef {import("../../src/durably_web/web/client/transports/transport.js").Transport} Transport
 * @typedef {import("../../src/durably_web/web/client/transports/transport.js").TransportHooks} TransportHooks
 * @typedef {import("../../src/durably_web/web/client/transports/transport.js").SubscriptionSink} SubscriptionSink
 */

/** A transport the test scripts: requests are recorded and answered by `answer`. @implements {Transport} */
class ScriptedTransport {
  /** @type {"follower"} */
  role = "follower";
  /** @type {TransportHooks | null} */
  hooks = null;
  /** @type {{op: string, args: any, repeatable: boolean}[]} */
  requests = [];
  /** @type {string[][]} */
  listened = [];
  /** @type {Map<string, SubscriptionSink>} */
  sinks = new Map();
  /** @type {string[]} */
  stopped = [];
  /** @type {string[]} */
  settled = [];
  closedWith = "";
  /** @param {(op: string, args: any) => unknown} answer */
  constructor(answer = () => null) {
    this.answer = answer;
  }

  /** @param {TransportHooks} hooks */
  async start(hooks) {
    this.hooks = hooks;
    hooks.status({ status: "ready", role: this.role, attempt: 1, at: 0 });
    const info = { jobs: [{ key: "import_csv", name: "import-csv" }], marks: { t: 1 } };
    hooks.ready(info);
    return info;
  }

  /** @type {Transport["request"]} */
  async request(op, args, { repeatable }) {
    this.requests.push({ op, args, repeatable });
    return /** @type {any} */ (await this.answer(op, args));
  }

  /** @param {string[]} types */
  listen(types) {
    this.listened.push(types);
  }

  /** @param {string} runId @param {SubscriptionSink} sink */
  subscribe(runId, sink) {
    this.sinks.set(runId, sink);
    return () => this.stopped.push(runId);
  }

  /** @param {string} runId */
  async settle(runId) {
    this.settled.push(runId);
  }

  /** @param {string} reason */
  async close(reason) {
    this.closedWith = reason;
  }

  /** Push one of a run's events into its subscription. @param {string} runId @param {any} event */
  push(runId, event) {
    const sink = this.sinks.get(runId);
    if (!sink) throw new Error(`no subscription to ${runId}`);
    sink.event(event);
  }
}

/** @param {(op: string, args: any) => unknown} [answer] */
async function client(answer) {
  const transport = new ScriptedTransport(answer);
  const started = await new DurablyClient(transport).start();
  return { client: started, transport };
}

test("repeatable follows the protocol table: reads always, writes never, triggers with a key", () => {
  assert.equal(repeatable("getRuns", {}), true);
  assert.equal(repeatable("purgeRuns", { olderThan: "7d" }), true);
  assert.equal(repeatable("cancel", { runId: "r1" }), false);
  assert.equal(repeatable("retrigger", { runId: "r1" }), false);
  assert.equal(repeatable("trigger", { jobName: "j" }), false);
  assert.equal(repeatable("trigger", { jobName: "j", idempotencyKey: "k" }), true);
  assert.equal(repeatable("batchTrigger", { jobName: "j", items: [{ input: 1, idempotencyKey: "a" }, { input: 2, idempotencyKey: "b" }] }), true);
  assert.equal(repeatable("batchTrigger", { jobName: "j", items: [{ input: 1, idempotencyKey: "a" }, { input: 2 }] }), false);
  for (const [name, info] of Object.entries(OPERATIONS)) {
    assert.ok(["always", "never", "idempotency-key"].includes(info.repeatable), `${name}: an unknown repeatable rule ${info.repeatable}`);
  }
});

test("the client passes the table's verdict to the transport", async () => {
  const { client: c, transport } = await client();
  await c.getRun("r1");
  await c.cancel("r1");
  await c.jobs.import_csv.trigger({ rows: 1 }, { idempotencyKey: "k" });
  assert.deepEqual(transport.requests.map((r) => [r.op, r.repeatable]), [["getRun", true], ["cancel", false], ["trigger", true]]);
});

test("the client has a method for every call operation of the table but the job handle's", () => {
  const methods = new Set(Object.getOwnPropertyNames(DurablyClient.prototype));
  const calls = Object.entries(OPERATIONS).filter(([, info]) => info.kind === "call" && info.worker).map(([name]) => name);
  const missing = calls.filter((name) => !methods.has(name) && !["trigger", "batchTrigger", "getJobs"].includes(name));
  assert.deepEqual(missing, []);
});

test("status, role and marks come from the transport", async () => {
  const { client: c, transport } = await client();
  assert.equal(c.status, "ready");
  assert.equal(c.role, "follower");
  assert.deepEqual(c.marks, { t: 1 });
  /** @type {string[]} */
  const seen = [];
  const off = c.on("status", (info) => seen.push(info.status));
  transport.hooks?.status({ status: "restarting", role: "follower", attempt: 2, at: 1 });
  off();
  transport.hooks?.status({ status: "ready", role: "follower", attempt: 2, at: 2 });
  assert.deepEqual(seen, ["restarting"]);
  assert.throws(() => c.on("status", /** @type {any} */ ("nope")), ValidationError);
});

test("jobs: by key or name; an unknown job is NotFoundError while the engine lists its jobs", async () => {
  const { client: c, transport } = await client();
  assert.equal(c.job("import_csv"), c.jobs.import_csv);
  assert.equal(c.job("import-csv"), c.jobs.import_csv);
  assert.throws(() => c.job("nope"), (e) => e instanceof NotFoundError && e.message === "Unknown job: nope");
  transport.hooks?.ready({ jobs: [{ key: "import_csv", name: "import-csv" }, { key: "audit", name: "audit" }], marks: {} });
  assert.equal(c.job("audit").name, "audit", "jobs of a restarted engine are added");
  assert.equal(c.jobs.import_csv, c.job("import_csv"), "existing handles are kept");
});

test("trigger input is checked on the page: nothing is sent for a value JSON would mangle", async () => {
  const { client: c, transport } = await client();
  await assert.rejects(c.jobs.import_csv.trigger({ price: NaN }), { name: "ValidationError", message: "input for job 'import-csv': price: numbers must be finite, got NaN" });
  await assert.rejects(c.jobs.import_csv.batchTrigger([1, { input: { n: 10n } }]), { message: /input for job 'import-csv' at index 1: n: a BigInt is not JSON/ });
  await assert.rejects(c.jobs.import_csv.batchTrigger(/** @type {any} */ ("nope")), ValidationError);
  assert.deepEqual(transport.requests, []);
});

test("trigger options: unset ones are left out of the wire arguments", async () => {
  const { client: c, transport } = await client();
  await c.jobs.import_csv.trigger(undefined, { idempotencyKey: undefined, labels: { a: "b" }, coalesce: "skip" });
  assert.deepEqual(transport.requests[0].args, { jobName: "import-csv", input: undefined, labels: { a: "b" }, coalesce: "skip" });
});

test("on() checks event types and tells the transport what to listen for", async () => {
  const { client: c, transport } = await client();
  assert.throws(() => c.on("run:bogus", () => {}), (e) => e instanceof ValidationError && /unknown event type "run:bogus"/.test(e.message));
  const off = c.on("run:complete", () => {});
  c.on("*", () => {});
  off();
  assert.deepEqual(transport.listened, [["run:complete"], ["*", "run:complete"], ["*"]]);
});

test("close closes the transport", async () => {
  const { client: c, transport } = await client();
  await c.close("bye");
  assert.equal(transport.closedWith, "bye");
});

test("waitForRun: the completed run, read once the run's events were settled", async () => {
  const { client: c, transport } = await client((op) => (op === "getRun" ? wireRun({ status: "completed" }) : null));
  /** @type {unknown[]} */
  const progress = [];
  const waiting = c.waitForRun("r1", { onProgress: (p) => progress.push(p) });
  await flush();
  transport.push("r1", wireEvent("run:progress", { sequence: 0, progress: { current: 2 } }));
  transport.push("r1", wireEvent("run:complete", { sequence: 9 }));
  const run = await waiting;
  assert.equal(run.status, "completed");
  assert.deepEqual(progress, [{ current: 2 }], "the subscription's current state counts for a run already underway");
  assert.deepEqual(transport.settled, ["r1"]);
  assert.deepEqual(transport.stopped, ["r1"]);
});

test("waitForRun rejects with the run's end: failed, cancelled, deleted, or a timeout", async () => {
  const { client: c, transport } = await client();
  const ends = [
    [wireEvent("run:fail", { error: "failed on purpose" }), (/** @type {unknown} */ e) => e instanceof RunFailed && e.message === "failed on purpose"],
    [wireEvent("run:cancel"), (/** @type {unknown} */ e) => e instanceof RunCancelled],
    [wireEvent("run:delete"), (/** @type {unknown} */ e) => e instanceof NotFoundError && /deleted/.test(String(e))],
  ];
  for (const [event, check] of /** @type {[any, (e: unknown) => boolean][]} */ (ends)) {
    const waiting = c.waitForRun("r1");
    await flush();
    transport.push("r1", event);
    await assert.rejects(waiting, check);
  }
  await assert.rejects(c.waitForRun("r1", { timeout: 5 }), (e) => e instanceof DurablyError && e.code === "timeout" && e.message === "waitForRun timeout after 5ms");
  await assert.rejects(c.waitForRun("r1", { timeout: -1 }), { code: "validation_error" });
});

test("triggerAndWait: listeners before the trigger see a fast run; each progress once, in order", async () => {
  const { client: c, transport } = await client((op) => {
    if (op === "trigger") {
      // The engine runs it before the trigger's answer arrives: events first.
      for (const n of [1, 2, 2, 3]) transport.hooks?.event(wireEvent("run:progress", { sequence: n * 10 + (n === 2 ? 1 : 0), progress: { current: n } }));
      transport.hooks?.event(wireEvent("log:write", { sequence: 40, message: "done" }));
      transport.hooks?.event(wireEvent("run:progress", { runId: "other", sequence: 50, progress: { current: 99 } }));
      return { ...wireRun(), disposition: "created" };
    }
    return wireRun({ status: "completed" });
  });
  /** @type {number[]} */
  const progress = [];
  /** @type {string[]} */
  const logs = [];
  const waiting = c.jobs.import_csv.triggerAndWait({ rows: 3 }, { onProgress: (p) => progress.push(p.current), onLog: (l) => logs.push(l.message) });
  await flush();
  transport.push("r1", wireEvent("run:progress", { sequence: 0, progress: { current: 3 } })); // the state: already seen
  transport.push("r1", wireEvent("run:complete", { sequence: 60 }));
  const run = await waiting;
  assert.deepEqual(progress, [1, 2, 3]);
  assert.deepEqual(logs, ["done"]);
  assert.equal(run.disposition, "created");
  assert.deepEqual(transport.listened.at(-1), [], "the waiter's handlers are removed");
});
