// @ts-check
/**
 * The worker transport's state machine (src/durably_web/web/client/transports/worker.mjs)
 * under the client core, in one tab (the leader), against a fake Worker and fake Web Locks:
 * boot, the lead lock, requests, the ping watchdog, restarts, re-sending, subscriptions
 * across a restart, listen. Several tabs: ./tabs.test.mjs.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { DurablyClient } from "../../src/durably_web/web/client/client.mjs";
import { DurablyError, StorageError, ValidationError } from "../../src/durably_web/web/client/errors.mjs";
import { WorkerTransport } from "../../src/durably_web/web/client/transports/worker.mjs";
import { FakeLocks, FakeWorker, flush, install, wireEvent, wireRun } from "./fakes.mjs";

/** @typedef {import("node:test").TestContext} TestContext */

/**
 * A client over a worker transport, started (not yet ready unless `ready`).
 * @param {TestContext} t
 * @param {Partial<import("../../src/durably_web/web/client/transports/worker.mjs").WorkerTransportOptions> & {listen?: string[], locks?: FakeLocks | null}} [options]
 */
function startClient(t, { listen, locks = new FakeLocks(), ...options } = {}) {
  install(t, { worker: true, locks });
  t.mock.method(console, "warn", () => {});
  /** @type {string[]} */
  const statuses = [];
  /** @type {import("../../src/durably_web/web/client/transports/transport.js").StatusInfo[]} */
  const infos = [];
  const transport = new WorkerTransport({ workerUrl: "http://test/_durably/runtime/worker.mjs", config: { jobsUrl: "http://test/jobs.py", database: "/t.db" }, ...options });
  const client = new DurablyClient(transport, {
    listen,
    onStatus: (info) => {
      statuses.push(info.status);
      infos.push(info);
    },
  });
  const started = client.start();
  t.after(() => client.close());
  return { client, transport, started, statuses, infos, locks };
}

/** A client whose first worker reported ready. @param {TestContext} t @param {Parameters<typeof startClient>[1]} [options] */
async function readyClient(t, options) {
  const setup = startClient(t, options);
  await flush(); // the lock is taken, the worker created
  const worker = FakeWorker.created[0];
  worker.ready();
  await setup.started;
  const locks = setup.locks;
  assert.ok(locks);
  return { ...setup, worker, locks };
}

/** The newest worker (after a restart). */
const newest = () => /** @type {FakeWorker} */ (FakeWorker.created.at(-1));

test("boot: init config first, stages, then ready with the engine's jobs", async (t) => {
  const { client, started, infos } = startClient(t, { listen: ["run:progress"] });
  await flush();
  const worker = FakeWorker.created[0];
  assert.equal(worker.url, "http://test/_durably/runtime/worker.mjs");
  assert.deepEqual(worker.options, { type: "module" });
  assert.deepEqual(worker.init, {
    jobsUrl: "http://test/jobs.py",
    packages: [],
    database: "/t.db",
    durability: "NORMAL",
    options: {},
    listen: ["run:progress"],
  });
  worker.stage("sqlite");
  worker.ready([{ key: "import_csv", name: "import-csv" }]);
  assert.equal(await started, client);
  assert.deepEqual(
    infos.map((i) => [i.status, i.stage, i.role]),
    [
      ["booting", "worker", "leader"],
      ["booting", "sqlite", "leader"],
      ["ready", undefined, "leader"],
    ],
  );
  assert.equal(client.status, "ready");
  assert.equal(client.role, "leader");
  assert.deepEqual(client.marks, { ready: 42 });
  assert.deepEqual(Object.keys(client.jobs), ["import_csv"]);
  assert.equal(client.jobs.import_csv.name, "import-csv");
});

test("another database is another lock", async (t) => {
  const { locks } = await readyClient(t);
  const other = new WorkerTransport({ workerUrl: "http://test/w.mjs", config: { jobsUrl: null, database: "/other.db" } });
  const started = new DurablyClient(other).start();
  await flush();
  newest().ready();
  await started;
  assert.deepEqual(locks.leads(), ["durably-web:/other.db", "durably-web:/t.db"]);
  await other.close("done");
});

test("a browser without Web Locks fails at once with web_locks_unavailable", async (t) => {
  const { started, statuses } = startClient(t, { locks: null });
  await assert.rejects(started, { code: "web_locks_unavailable" });
  assert.deepEqual(statuses, ["failed"]);
  assert.equal(FakeWorker.created.length, 0);
});

test("a boot error is final: rebuilt by its code, no restart, the lock released", async (t) => {
  const { started, statuses, locks } = startClient(t);
  await flush();
  FakeWorker.created[0].send({ type: "boot-error", error: { error: "no OPFS here", code: "opfs_unavailable" } });
  await assert.rejects(started, (error) => error instanceof StorageError && error.code === "opfs_unavailable" && error.message === "no OPFS here");
  assert.deepEqual(statuses, ["booting", "failed"]);
  assert.equal(FakeWorker.created.length, 1);
  assert.ok(FakeWorker.created[0].terminated);
  await flush();
  assert.equal(locks?.held.size, 0);
});

test("a boot_stuck boot error restarts the worker at once, counted against maxAttempts", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  const { started, statuses } = startClient(t, { readyTimeout: 30_000, maxAttempts: 2 });
  await flush();
  const stuck = { type: "boot-error", error: { error: "installing the OPFS pool (attempt 1) did not finish within 5000 ms", code: "boot_stuck" } };
  FakeWorker.created[0].send(stuck);
  // No wait for readyTimeout: the stuck worker is ended (its handles go with it), a new one starts.
  assert.equal(FakeWorker.created.length, 2);
  assert.ok(FakeWorker.created[0].terminated);
  assert.equal(FakeWorker.created[1].init.database, "/t.db");
  FakeWorker.created[1].send(stuck);
  await assert.rejects(started, { code: "worker_failed", message: /failed 2 times in a row \(last: installing the OPFS pool \(attempt 1\) did not finish within 5000 ms\)/ });
  assert.deepEqual(statuses, ["booting", "restarting", "failed"]);
});

test("a stuck boot recovers: the restarted worker's ready is the client's ready", async (t) => {
  const { started, statuses } = startClient(t);
  await flush();
  FakeWorker.created[0].send({ type: "boot-error", error: { error: "stuck", code: "boot_stuck" } });
  newest().ready();
  await started;
  assert.deepEqual(statuses, ["booting", "restarting", "ready"]);
});

test("a worker script that fails to load rejects with worker_failed", async (t) => {
  const { started } = startClient(t);
  await flush();
  FakeWorker.created[0].crash("404");
  await assert.rejects(started, (error) => error instanceof DurablyError && error.code === "worker_failed" && /failed to load: 404/.test(error.message));
});

test("a worker never ready is restarted, then given up after maxAttempts", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  const { started, statuses } = startClient(t, { readyTimeout: 700, maxAttempts: 2 });
  await flush();
  t.mock.timers.tick(700);
  assert.equal(FakeWorker.created.length, 2);
  assert.ok(FakeWorker.created[0].terminated);
  t.mock.timers.tick(700);
  await assert.rejects(started, { code: "worker_failed", message: /failed 2 times in a row \(last: the worker did not report ready within 700 ms\)/ });
  assert.deepEqual(statuses, ["booting", "restarting", "failed"]);
});

test("requests: JSON text with the id last, one answer each, errors rebuilt by code", async (t) => {
  const { client, worker } = await readyClient(t);
  const runs = client.getRuns({ status: "failed", limit: 5 });
  const text = /** @type {string} */ (worker.posted.at(-1));
  assert.match(text, /,"id":\d+\}$/);
  const request = worker.last("getRuns");
  assert.deepEqual(request, { type: "getRuns", status: "failed", limit: 5, id: request.id });
  worker.respond(request.id, [wireRun()]);
  assert.deepEqual(await runs, [wireRun()]);

  const bad = client.jobs.import_csv.trigger({ rows: -1 }, { idempotencyKey: "k", labels: { a: "b" } });
  const trigger = worker.last("trigger");
  assert.deepEqual(trigger, { type: "trigger", jobName: "import-csv", input: { rows: -1 }, idempotencyKey: "k", labels: { a: "b" }, id: trigger.id });
  worker.refuse(trigger.id, "rows must be > 0", "validation_error");
  await assert.rejects(bad, (error) => error instanceof ValidationError && error.statusCode === 400 && error.message === "rows must be > 0");
});

test("every operation goes out as its protocol message", async (t) => {
  const { client, worker } = await readyClient(t);
  const when = new Date("2026-01-02T00:00:00Z");
  const calls = [
    [() => client.getRun("r1"), { type: "getRun", runId: "r1" }],
    [() => client.getSteps("r1"), { type: "getSteps", runId: "r1" }],
    [() => client.getLogs("r1"), { type: "getLogs", runId: "r1" }],
    [() => client.cancel("r1"), { type: "cancel", runId: "r1" }],
    [() => client.retry("r1"), { type: "retry", runId: "r1" }],
    [() => client.retrigger("r1"), { type: "retrigger", runId: "r1" }],
    [() => client.deleteRun("r1"), { type: "deleteRun", runId: "r1" }],
    [() => client.purgeRuns({ olderThan: when }), { type: "purgeRuns", olderThan: "2026-01-02T00:00:00.000Z", limit: 500 }],
    [() => client.jobs.import_csv.batchTrigger([1, { input: 2, options: { idempotencyKey: "b" } }]), { type: "batchTrigger", jobName: "import-csv", items: [{ input: 1 }, { input: 2, idempotencyKey: "b" }] }],
  ];
  for (const [call, expected] of /** @type {[() => Promise<unknown>, Record<string, unknown>][]} */ (calls)) {
    const answer = call();
    const { id, ...message } = /** @type {Record<string, any>} */ (worker.requests().at(-1));
    assert.deepEqual(message, expected);
    worker.respond(id, "done");
    assert.equal(await answer, "done");
  }
});

test("requests made while the worker boots wait for ready", async (t) => {
  const { client, started } = startClient(t);
  const early = client.getRun("r1");
  await flush();
  const worker = FakeWorker.created[0];
  assert.deepEqual(worker.requests(), []);
  worker.ready();
  await started;
  const request = worker.last("getRun");
  worker.respond(request.id, null);
  assert.equal(await early, null);
});

test("after a crash: reads and keyed triggers are sent again, other writes reject with worker_restarted", async (t) => {
  const { client, worker, statuses } = await readyClient(t);
  const read = client.getRuns({ limit: 5 });
  const unsafe = client.jobs.import_csv.trigger({ rows: 10 });
  const keyed = client.jobs.import_csv.trigger({ rows: 10 }, { idempotencyKey: "after-restart" });
  const batchKeyed = client.jobs.import_csv.batchTrigger([{ input: 1, options: { idempotencyKey: "a" } }]);
  const batchMixed = client.jobs.import_csv.batchTrigger([{ input: 1, options: { idempotencyKey: "a" } }, 2]);
  const cancel = client.cancel("r1");
  worker.crash("out of memory");
  await assert.rejects(unsafe, (error) => error instanceof DurablyError && error.code === "worker_restarted" && /the worker crashed: out of memory/.test(error.message) && /this trigger request/.test(error.message));
  await assert.rejects(batchMixed, { code: "worker_restarted" });
  await assert.rejects(cancel, { code: "worker_restarted" });
  assert.ok(worker.terminated);
  assert.deepEqual(statuses.slice(-1), ["restarting"]);

  const second = newest();
  assert.notEqual(second, worker);
  assert.deepEqual(second.requests(), []); // nothing goes out before ready
  second.ready();
  assert.deepEqual(second.requests().map((r) => r.type).sort(), ["batchTrigger", "getRuns", "trigger"]);
  assert.equal(second.last("trigger").idempotencyKey, "after-restart");
  second.respond(second.last("getRuns").id, []);
  second.respond(second.last("trigger").id, wireRun({ idempotencyKey: "after-restart" }));
  second.respond(second.last("batchTrigger").id, [wireRun()]);
  assert.deepEqual(await read, []);
  assert.equal((await keyed).idempotencyKey, "after-restart");
  assert.equal((await batchKeyed).length, 1);
  assert.equal(client.status, "ready");
});

test("messages of a replaced worker are ignored", async (t) => {
  const { client, worker } = await readyClient(t);
  const read = client.getRun("r1");
  const id = worker.last("getRun").id;
  worker.crash();
  newest().ready();
  worker.respond(id, wireRun({ status: "stale" })); // the old worker's late answer
  const again = newest().last("getRun");
  newest().respond(again.id, wireRun({ status: "completed" }));
  assert.equal((await read)?.status, "completed");
});

test("ping watchdog: missedPings unanswered in a row restart the worker; answered ones do not", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  const { worker, statuses } = await readyClient(t, { pingInterval: 500, missedPings: 3 });
  for (let i = 0; i < 10; i++) {
    t.mock.timers.tick(500);
    worker.pong();
  }
  assert.equal(FakeWorker.created.length, 1, "a worker answering pings is kept");
  assert.equal(worker.requestsOf("ping").length, 10);
  t.mock.timers.tick(500 * 3); // three pings unanswered
  assert.equal(FakeWorker.created.length, 1);
  t.mock.timers.tick(500); // the fourth tick sees them
  assert.equal(FakeWorker.created.length, 2);
  assert.ok(worker.terminated);
  assert.deepEqual(statuses.slice(-2), ["ready", "restarting"]);
});

test("watchdog counts pings, not time: a throttled timer does not kill a live worker", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  const { worker } = await readyClient(t, { pingInterval: 500, missedPings: 2 });
  t.mock.timers.tick(500);
  worker.pong();
  // A hidden tab: the next interval fires late, once; any message counts as an answer.
  t.mock.timers.tick(500);
  worker.stage("gc");
  t.mock.timers.tick(500);
  t.mock.timers.tick(500);
  assert.equal(FakeWorker.created.length, 1);
});

test("the attempt count resets once a worker stayed healthy", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  const { infos } = await readyClient(t, { readyTimeout: 1000, pingInterval: 100, maxAttempts: 2 });
  newest().crash();
  assert.equal(infos.at(-1)?.attempt, 2);
  newest().ready();
  for (let ms = 0; ms < 1000; ms += 100) {
    t.mock.timers.tick(100); // healthy for max(readyTimeout, 10 pings)
    newest().pong();
  }
  newest().crash();
  assert.equal(infos.at(-1)?.status, "restarting", "a crash after a healthy while is not the last attempt");
  assert.equal(infos.at(-1)?.attempt, 1);
  newest().crash(); // during boot: fails to load, final
  assert.equal(infos.at(-1)?.status, "failed");
});

test("two crashes in a row with maxAttempts 2 fail, and everything pending rejects", async (t) => {
  const { client, statuses } = await readyClient(t, { maxAttempts: 2 });
  newest().crash();
  const read = client.getRuns();
  newest().ready();
  newest().crash("again");
  await assert.rejects(read, { code: "worker_failed", message: /failed 2 times in a row \(last: the worker crashed: again\)/ });
  assert.equal(statuses.at(-1), "failed");
  await assert.rejects(client.getRun("r1"), { code: "closed", message: "the durably_web client is failed" });
});

test("a subscription: current state first, live events, ends after the terminal one without unsubscribing", async (t) => {
  const { client, worker } = await readyClient(t);
  const sub = client.subscribe("r1");
  const request = worker.last("subscribe");
  assert.equal(request.runId, "r1");
  worker.respond(request.id, String(request.id));
  const wire = String(request.id);
  worker.send(JSON.stringify({ type: "subscription", id: wire, event: wireEvent("run:progress", { sequence: 0, progress: { current: 1 } }) }));
  worker.send(JSON.stringify({ type: "subscription", id: wire, event: wireEvent("run:complete", { sequence: 5 }) }));
  worker.send(JSON.stringify({ type: "subscription-end", id: wire }));
  const seen = [];
  for await (const event of sub) seen.push(event.type);
  assert.deepEqual(seen, ["run:progress", "run:complete"]);
  assert.deepEqual(worker.requestsOf("unsubscribe"), []);
});

test("breaking out of a subscription unsubscribes on the worker", async (t) => {
  const { client, worker } = await readyClient(t);
  const sub = client.subscribe("r1");
  const request = worker.last("subscribe");
  worker.send(JSON.stringify({ type: "subscription", id: String(request.id), event: wireEvent("run:progress") }));
  for await (const event of sub) {
    assert.equal(event.type, "run:progress");
    break;
  }
  assert.equal(worker.last("unsubscribe").subscription, String(request.id));
  assert.deepEqual(await sub.next(), { value: undefined, done: true });
});

test("a subscription survives a restart: opened again on the new worker, old ids ignored", async (t) => {
  const { client, worker } = await readyClient(t);
  const sub = client.subscribe("r1");
  const first = worker.last("subscribe");
  worker.respond(first.id, String(first.id));
  worker.send(JSON.stringify({ type: "subscription", id: String(first.id), event: wireEvent("run:progress", { progress: { current: 3 } }) }));
  assert.equal((await sub.next()).value?.type, "run:progress");

  worker.crash();
  const second = newest();
  second.ready();
  const again = second.last("subscribe");
  assert.equal(again.runId, "r1");
  assert.notEqual(again.id, first.id);
  second.send(JSON.stringify({ type: "subscription", id: String(first.id), event: wireEvent("run:fail") })); // a stale id
  second.send(JSON.stringify({ type: "subscription", id: String(again.id), event: wireEvent("run:progress", { sequence: 0 }) }));
  second.send(JSON.stringify({ type: "subscription", id: String(again.id), event: wireEvent("run:complete") }));
  const rest = [];
  for await (const event of sub) rest.push(event.type);
  assert.deepEqual(rest, ["run:progress", "run:complete"]);
});

test("a subscription the engine ends with an error rejects the iteration with that error", async (t) => {
  const { client, worker } = await readyClient(t);
  const sub = client.subscribe("nope");
  const request = worker.last("subscribe");
  worker.send(JSON.stringify({ type: "subscription-end", id: String(request.id), error: { error: "Run not found: nope", code: "not_found" } }));
  await assert.rejects(sub.next(), { name: "NotFoundError", message: "Run not found: nope" });
});

test("a refused subscribe request ends the subscription with its error", async (t) => {
  const { client, worker } = await readyClient(t);
  const sub = client.subscribe("r1");
  worker.refuse(worker.last("subscribe").id, "runId is required", "validation_error");
  await assert.rejects(sub.next(), ValidationError);
});

test("a failing transport ends open subscriptions with its error", async (t) => {
  const { client } = await readyClient(t, { maxAttempts: 1 });
  const sub = client.subscribe("r1");
  newest().crash();
  await assert.rejects(sub.next(), { code: "worker_failed" });
});

test("listen: the types go in each init config, a listen request only when they change", async (t) => {
  const { client, worker } = await readyClient(t, { listen: ["run:complete"] });
  assert.deepEqual(worker.init.listen, ["run:complete"]);
  const off = client.on("run:progress", () => {});
  assert.deepEqual(worker.last("listen").events, ["run:complete", "run:progress"]);
  const off2 = client.on("run:progress", () => {}); // the same set: no request
  assert.equal(worker.requestsOf("listen").length, 1);
  worker.crash();
  assert.deepEqual(newest().init.listen, ["run:complete", "run:progress"]);
  off();
  off2(); // while the new worker boots: not sent now
  assert.deepEqual(newest().requests(), []);
  newest().ready(); // sent at ready: the worker booted with the old set
  assert.deepEqual(newest().requestsOf("listen").map((r) => r.events), [["run:complete"]]);
});

test("listen while booting goes in the init config of the next start, not as a stale request", async (t) => {
  const { client, worker } = await readyClient(t);
  client.on("run:fail", () => {});
  worker.crash();
  const second = newest();
  assert.deepEqual(second.init.listen, ["run:fail"]);
  client.on("log:write", () => {});
  second.ready();
  assert.deepEqual(second.requestsOf("listen").map((r) => r.events), [["log:write", "run:fail"]]);
});

test("forwarded events reach on() handlers; events before ready are kept for listen types", async (t) => {
  const { client, started } = startClient(t, { listen: ["run:leased"] });
  await flush();
  const worker = FakeWorker.created[0];
  worker.send({ type: "events", events: [wireEvent("run:leased", { runId: "reclaimed" })] }); // before ready
  worker.ready();
  await started;
  /** @type {string[]} */
  const seen = [];
  client.on("run:start", (event) => seen.push(`${event.type} ${event.runId}`));
  worker.send(JSON.stringify({ type: "events", events: [wireEvent("run:leased", { runId: "live" })] }));
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.deepEqual(seen, ["run:leased reclaimed", "run:leased live"]);
});

test("settle is a ping round trip", async (t) => {
  const { client, worker } = await readyClient(t);
  let settled = false;
  const done = client.settle("r1").then(() => (settled = true));
  await flush();
  assert.equal(settled, false);
  worker.pong();
  await done;
  assert.equal(settled, true);
});

test("close: the worker stops, the lock is released, pending requests and subscriptions end", async (t) => {
  const { client, worker, locks, statuses } = await readyClient(t);
  const read = client.getRun("r1");
  const sub = client.subscribe("r1");
  await client.close("bye");
  await assert.rejects(read, { code: "closed", message: "bye" });
  assert.deepEqual(await sub.next(), { value: undefined, done: true });
  assert.ok(worker.terminated);
  assert.equal(locks.held.size, 0);
  assert.equal(statuses.at(-1), "closed");
  await assert.rejects(client.getRuns(), { code: "closed" });
  const late = client.subscribe("r2");
  await assert.rejects(late.next(), { code: "closed" });
  await client.close(); // twice is fine
});

test("after close another client can take the database", async (t) => {
  const { client } = await readyClient(t);
  await client.close();
  const next = new DurablyClient(new WorkerTransport({ workerUrl: "http://test/w.mjs", config: { jobsUrl: null, database: "/t.db" } }));
  const started = next.start();
  await flush();
  newest().ready();
  assert.equal(await started, next);
  await next.close();
});

test("an unknown message from the worker is reported, not fatal", async (t) => {
  const { client, worker } = await readyClient(t);
  const warn = /** @type {import("node:test").Mock<typeof console.warn>} */ (/** @type {unknown} */ (console.warn));
  worker.send(JSON.stringify({ type: "mystery" }));
  assert.equal(warn.mock.calls.length, 1);
  assert.equal(client.status, "ready");
});
