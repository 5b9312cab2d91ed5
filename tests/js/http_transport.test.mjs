// @ts-check
/**
 * The HTTP transport (src/durably_web/web/client/transports/http.mjs) under the client core,
 * against a fake server (`fetch`) and a fake EventSource: requests placed by the protocol
 * table, upstream's answers turned into the engine's results, error decoding, the events
 * stream, run subscriptions, and reconnects after the server cuts a stream off.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { DurablyClient } from "../../src/durably_web/web/client/client.mjs";
import { DurablyError, NotFoundError, RunFailed, ValidationError } from "../../src/durably_web/web/client/errors.mjs";
import { OPERATIONS } from "../../src/durably_web/web/client/protocol.mjs";
import { HttpTransport, KNOWN_ANSWERS, fullRun } from "../../src/durably_web/web/client/transports/http.mjs";
import { FakeEventSource, FakeServer, clientRun, flush, install, wireEvent, wireRun } from "./fakes.mjs";

/** @typedef {import("node:test").TestContext} TestContext */

const URL_ = "http://test/api/durably";

/** A fake server with `GET /jobs` and runs kept by id. */
function server() {
  const fake = new FakeServer(URL_);
  /** @type {Map<string, Record<string, unknown>>} */
  const runs = new Map([["r1", clientRun()]]);
  fake.route("GET", "/jobs", () => [200, [{ key: "import_csv", name: "import-csv" }]]);
  fake.route("GET", "/run", (url) => {
    const run = runs.get(url.searchParams.get("runId") ?? "");
    return run ? [200, run] : [404, { error: "Run not found" }];
  });
  return Object.assign(fake, { runs });
}

/**
 * A client over an HTTP transport, started.
 * @param {TestContext} t @param {ReturnType<typeof server>} fake
 * @param {{listen?: string[], streamTimeout?: number}} [options]
 */
function startClient(t, fake, { listen, streamTimeout } = {}) {
  install(t, { eventSource: true, server: fake });
  t.mock.method(console, "error", () => {});
  /** @type {import("../../src/durably_web/web/client/transports/transport.js").StatusInfo[]} */
  const infos = [];
  const client = new DurablyClient(new HttpTransport({ url: `${URL_}/`, streamTimeout }), { listen, onStatus: (info) => infos.push(info) });
  const started = client.start();
  t.after(() => client.close());
  return { client, started, infos };
}

/** @param {TestContext} t @param {ReturnType<typeof server>} [fake] */
async function readyClient(t, fake = server()) {
  const setup = startClient(t, fake);
  await setup.started;
  return { ...setup, fake };
}

test("start: the server's jobs, status booting (stage server) then ready, role server", async (t) => {
  const { client, infos, fake } = await readyClient(t);
  assert.deepEqual(fake.log, ["GET /jobs"]);
  assert.deepEqual(Object.keys(client.jobs), ["import_csv"]);
  assert.deepEqual(infos.map((i) => [i.status, i.stage, i.role]), [["booting", "server", "server"], ["ready", undefined, "server"]]);
  assert.deepEqual(client.marks, {});
  assert.deepEqual(FakeEventSource.created, [], "no events stream while nothing is listened for");
});

test("an upstream server lists no jobs: job(name) makes a handle for any name", async (t) => {
  const fake = server();
  fake.routes.delete("GET /jobs");
  const { client } = await readyClient(t, fake);
  assert.equal(client.listed, false);
  const handle = client.job("importCsv");
  assert.equal(handle.name, "importCsv");
  fake.route("POST", "/trigger", () => [200, { runId: "r1", disposition: "created" }]);
  await handle.trigger({ rows: 1 });
  assert.deepEqual(fake.bodies.at(-2), { jobName: "importCsv", input: { rows: 1 } });
});

test("an unreachable server fails the start with network_error", async (t) => {
  const fake = server();
  fake.down = true;
  const { started, infos } = startClient(t, fake);
  await assert.rejects(started, (error) => error instanceof DurablyError && error.code === "network_error" && /cannot reach the durably server at http:\/\/test\/api\/durably \(GET \/jobs\)/.test(error.message));
  assert.equal(infos.at(-1)?.status, "failed");
});

test("arguments are placed as the protocol table says", async (t) => {
  const { client, fake } = await readyClient(t);
  fake.route("GET", "/runs", () => [200, []]);
  await client.getRuns({ status: ["failed", "cancelled"], jobName: "import-csv", labels: { team: "a b" }, limit: 5, offset: 0 });
  assert.equal(fake.log.at(-1), "GET /runs?jobName=import-csv&label.team=a+b&status=failed&status=cancelled&limit=5&offset=0");
  fake.route("GET", "/steps", () => [200, [{ id: "s1" }]]);
  assert.deepEqual(await client.getSteps("r 1"), [{ id: "s1" }]);
  assert.equal(fake.log.at(-1), "GET /steps?runId=r+1");
});

test("every HTTP answer shape of the protocol table is one the transport can read", () => {
  for (const [name, info] of Object.entries(OPERATIONS)) {
    if (info.http) assert.ok(KNOWN_ANSWERS.includes(info.http.result), `${name} answers ${info.http.result}: teach READINGS in transports/http.mjs`);
  }
});

test("an operation without a route is not_supported, with no request", async (t) => {
  const { client, fake } = await readyClient(t);
  await assert.rejects(client.purgeRuns({ olderThan: "7d" }), { code: "not_supported", message: /purgeRuns is not available over HTTP/ });
  assert.deepEqual(fake.log, ["GET /jobs"]);
});

test("trigger: the body, then the run read back with its keys and disposition", async (t) => {
  const { client, fake } = await readyClient(t);
  fake.route("POST", "/trigger", () => [200, { runId: "r1", disposition: "idempotent" }]);
  const run = await client.jobs.import_csv.trigger({ rows: 1 }, { idempotencyKey: "k", concurrencyKey: "c", labels: { a: "b" } });
  assert.deepEqual(fake.log.slice(1), ["POST /trigger", "GET /run?runId=r1"]);
  assert.deepEqual(fake.bodies[1], { jobName: "import-csv", input: { rows: 1 }, idempotencyKey: "k", concurrencyKey: "c", labels: { a: "b" } });
  assert.deepEqual(run, { ...wireRun({ idempotencyKey: "k", concurrencyKey: "c" }), disposition: "idempotent" });
});

test("batchTrigger: each answer read back with its own item's keys", async (t) => {
  const { client, fake } = await readyClient(t);
  fake.runs.set("r2", clientRun({ id: "r2" }));
  fake.route("POST", "/batch-trigger", () => [200, [{ runId: "r1", disposition: "created" }, { runId: "r2", disposition: "created" }]]);
  const runs = await client.jobs.import_csv.batchTrigger([{ input: 1, options: { idempotencyKey: "a" } }, 2]);
  assert.deepEqual(fake.bodies[1], { jobName: "import-csv", items: [{ input: 1, idempotencyKey: "a" }, { input: 2 }] });
  assert.deepEqual(runs.map((r) => [r.id, r.idempotencyKey, r.disposition]), [["r1", "a", "created"], ["r2", null, "created"]]);
});

test("writes answering ids only read the run: after, or before for a DELETE", async (t) => {
  const { client, fake } = await readyClient(t);
  fake.runs.set("r2", clientRun({ id: "r2", status: "pending" }));
  fake.route("POST", "/cancel", () => [200, { success: true }]);
  fake.route("POST", "/retry", () => [200, { success: true, runId: "r1" }]);
  fake.route("POST", "/retrigger", () => [200, { success: true, runId: "r2" }]);
  fake.route("DELETE", "/run", (url) => {
    fake.runs.delete(url.searchParams.get("runId") ?? "");
    return [200, { success: true }];
  });
  assert.equal((await client.cancel("r1")).id, "r1");
  assert.deepEqual(fake.log.slice(-2), ["POST /cancel?runId=r1", "GET /run?runId=r1"]);
  assert.equal((await client.retry("r1")).id, "r1");
  assert.equal((await client.retrigger("r1")).id, "r2");
  assert.deepEqual(fake.log.slice(-2), ["POST /retrigger?runId=r1", "GET /run?runId=r2"]);
  const deleted = await client.deleteRun("r2");
  assert.equal(deleted.id, "r2");
  assert.deepEqual(fake.log.slice(-2), ["GET /run?runId=r2", "DELETE /run?runId=r2"]);
  assert.equal(await client.getRun("r2"), null, "GET /run of a missing run: null");
  await assert.rejects(client.deleteRun("r2"), { name: "NotFoundError", message: "Run not found: r2" });
});

test("runs come in the engine's wire form: the lease fields upstream lacks are null or 0", async (t) => {
  const { client, fake } = await readyClient(t);
  fake.route("GET", "/runs", () => [200, [clientRun({ status: "completed", completedAt: "2026-01-01T00:00:09Z" })]]);
  const [run] = await client.getRuns();
  assert.deepEqual(run, wireRun({ status: "completed", completedAt: "2026-01-01T00:00:09Z", updatedAt: "2026-01-01T00:00:09Z" }));
  assert.deepEqual(fullRun(/** @type {any} */ (clientRun())), wireRun());
});

test("error answers: {error, code} rebuilt by code; no code: by status; no JSON: the text", async (t) => {
  const { client, fake } = await readyClient(t);
  const answers = /** @type {[number, unknown][]} */ ([
    [400, { error: "rows must be > 0" }],
    [409, { error: "busy", code: "conflict" }],
    [401, { error: "sign in", code: "unauthorized" }],
    [403, "Forbidden"],
    [502, "<html>Bad gateway</html>"],
    [200, "not json"],
  ]);
  let next = 0;
  fake.route("GET", "/logs", () => answers[next++]);
  await assert.rejects(client.getLogs("r1"), (e) => e instanceof ValidationError && e.message === "rows must be > 0" && e.code === "validation_error");
  await assert.rejects(client.getLogs("r1"), { name: "ConflictError", code: "conflict", message: "busy" });
  await assert.rejects(client.getLogs("r1"), { name: "DurablyError", code: "unauthorized", message: "sign in" });
  await assert.rejects(client.getLogs("r1"), { code: "http_403", message: "Forbidden" });
  await assert.rejects(client.getLogs("r1"), { code: "internal_error", message: "<html>Bad gateway</html>" });
  await assert.rejects(client.getLogs("r1"), { code: "internal_error", message: "GET /logs: the server did not answer with JSON" });
});

test("on() opens the events stream; a request waits until it is open, then handlers see its events", async (t) => {
  const { client, fake } = await readyClient(t);
  /** @type {string[]} */
  const seen = [];
  const off = client.on("run:trigger", (event) => seen.push(event.runId));
  const stream = FakeEventSource.last("/runs/subscribe");
  assert.equal(stream.url, `${URL_}/runs/subscribe`);
  fake.route("GET", "/steps", () => [200, []]);
  const steps = client.getSteps("r1");
  await flush();
  assert.equal(fake.log.length, 1, "the request waits for the stream");
  stream.open();
  await steps;
  assert.equal(fake.log.at(-1), "GET /steps?runId=r1");
  stream.emit(wireEvent("run:trigger"));
  stream.emit("not json: skipped");
  assert.deepEqual(seen, ["r1"]);
  off();
  assert.ok(stream.closed, "no handler left: the stream is closed");
});

test("listen types open the events stream at start; start resolves once it is open", async (t) => {
  const fake = server();
  const { started } = startClient(t, fake, { listen: ["run:complete"] });
  await flush();
  let ready = false;
  started.then(() => (ready = true));
  await flush();
  assert.equal(ready, false);
  FakeEventSource.last("/runs/subscribe").open();
  await started;
});

test("a stream that never opens blocks requests for streamTimeout at most", async (t) => {
  const fake = server();
  fake.route("GET", "/logs", () => [200, []]);
  const { client, started } = startClient(t, fake, { listen: ["run:complete"], streamTimeout: 20 });
  await started; // not opened: waited 20 ms
  assert.deepEqual(await client.getLogs("r1"), []);
});

test("the server cuts the events stream off: restarting, then ready when EventSource reconnects", async (t) => {
  const { client, infos } = await readyClient(t);
  /** @type {string[]} */
  const seen = [];
  client.on("*", (event) => seen.push(event.type));
  const stream = FakeEventSource.last("/runs/subscribe");
  stream.open();
  stream.emit(wireEvent("run:progress"));
  stream.cutOff();
  assert.deepEqual([infos.at(-1)?.status, infos.at(-1)?.stage], ["restarting", "events"]);
  stream.open(); // EventSource reconnected by itself
  assert.equal(client.status, "ready");
  stream.emit(wireEvent("run:complete"));
  assert.deepEqual(seen, ["run:progress", "run:complete"]);
  assert.equal(FakeEventSource.created.length, 1);
});

test("a refused events stream is given up, and requests no longer wait for it", async (t) => {
  const { client, fake } = await readyClient(t);
  client.on("run:complete", () => {});
  FakeEventSource.last("/runs/subscribe").refuse();
  fake.route("GET", "/logs", () => [200, []]);
  assert.deepEqual(await client.getLogs("r1"), []);
  assert.equal(client.status, "ready");
});

test("subscribe: GET /subscribe, the state first, closed on the terminal event", async (t) => {
  const { client } = await readyClient(t);
  const sub = client.subscribe("r1");
  await flush();
  const stream = FakeEventSource.last("/subscribe?runId=r1");
  stream.open();
  stream.emit(wireEvent("run:progress", { sequence: 0 }));
  stream.emit(wireEvent("run:complete"));
  assert.ok(stream.closed, "closed before EventSource could reconnect");
  const seen = [];
  for await (const event of sub) seen.push(event.type);
  assert.deepEqual(seen, ["run:progress", "run:complete"]);
});

test("the transport itself closes a run stream at its terminal event, before EventSource reconnects", async (t) => {
  const { client } = await readyClient(t);
  /** @type {string[]} */
  const seen = [];
  client.transport.subscribe("r1", { event: (event) => seen.push(event.type), end: () => seen.push("end") });
  await flush();
  const stream = FakeEventSource.last("/subscribe?runId=r1");
  stream.open();
  stream.emit(wireEvent("run:cancel"));
  assert.ok(stream.closed);
  assert.deepEqual(seen, ["run:cancel"]);
});

test("a subscription cut off by the server resumes from the run's current state", async (t) => {
  const { client } = await readyClient(t);
  const sub = client.subscribe("r1");
  await flush();
  const stream = FakeEventSource.last("/subscribe?runId=r1");
  stream.open();
  stream.emit(wireEvent("run:progress", { sequence: 0, progress: { current: 1 } }));
  stream.cutOff(); // a slow reader: the server dropped its frames and ended the response
  assert.equal(stream.closed, false, "EventSource reconnects by itself");
  stream.open();
  stream.emit(wireEvent("run:progress", { sequence: 0, progress: { current: 7 } })); // the state again
  stream.emit(wireEvent("run:complete"));
  const seen = [];
  for await (const event of sub) seen.push(event.type === "run:progress" ? event.progress.current : event.type);
  assert.deepEqual(seen, [1, 7, "run:complete"]);
});

test("a refused run stream ends with what GET /run says: not found, or subscribe_failed", async (t) => {
  const { client } = await readyClient(t);
  const missing = client.subscribe("nope");
  await flush();
  FakeEventSource.last("runId=nope").refuse();
  await assert.rejects(missing.next(), (e) => e instanceof NotFoundError && e.message === "Run not found: nope");
  const refused = client.subscribe("r1");
  await flush();
  FakeEventSource.last("runId=r1").refuse();
  await assert.rejects(refused.next(), { code: "subscribe_failed" });
});

test("breaking out of a subscription closes its stream", async (t) => {
  const { client } = await readyClient(t);
  const sub = client.subscribe("r1");
  await flush();
  const stream = FakeEventSource.last("runId=r1");
  stream.open();
  stream.emit(wireEvent("run:progress"));
  for await (const _ of sub) break;
  assert.ok(stream.closed);
});

test("settle waits for the run's terminal event on the events stream", async (t) => {
  const { client } = await readyClient(t);
  client.on("run:complete", () => {});
  const stream = FakeEventSource.last("/runs/subscribe");
  stream.open();
  let settled = false;
  const done = client.settle("r1").then(() => (settled = true));
  await flush();
  assert.equal(settled, false);
  stream.emit(wireEvent("run:complete"));
  await done;
  await client.settle("r1"); // seen already: at once
});

test("waitForRun over HTTP: progress from the events stream, the completed run read back", async (t) => {
  const { client, fake } = await readyClient(t);
  fake.runs.set("r1", clientRun({ status: "completed", output: { rows: 3 } }));
  /** @type {number[]} */
  const progress = [];
  const waiting = client.waitForRun("r1", { onProgress: (p) => progress.push(p.current) });
  const events = FakeEventSource.last("/runs/subscribe");
  events.open();
  await flush();
  const run = FakeEventSource.last("/subscribe?runId=r1");
  run.open();
  run.emit(wireEvent("run:progress", { sequence: 0, progress: { current: 1 } }));
  await flush(); // two streams: their order is not kept, so this test keeps it
  events.emit({ type: "run:progress", runId: "r1", jobName: "import-csv", labels: {}, progress: { current: 2 } });
  events.emit({ type: "run:progress", runId: "r1", jobName: "import-csv", labels: {}, progress: { current: 2 } }); // the same: once
  events.emit({ type: "run:complete", runId: "r1", jobName: "import-csv", labels: {} });
  run.emit(wireEvent("run:complete"));
  const done = await waiting;
  assert.deepEqual(progress, [1, 2]);
  assert.deepEqual(done.output, { rows: 3 });
  assert.ok(events.closed, "the waiter's handlers are gone: no stream needed");
});

test("a failed run rejects waitForRun with RunFailed and the run's error", async (t) => {
  const { client } = await readyClient(t);
  const waiting = client.waitForRun("r1");
  await flush();
  const run = FakeEventSource.last("/subscribe?runId=r1");
  run.open();
  run.emit(wireEvent("run:fail", { error: "failed on purpose" }));
  await assert.rejects(waiting, (e) => e instanceof RunFailed && e.message === "failed on purpose");
});

test("close: streams closed, subscriptions end, later requests reject with closed", async (t) => {
  const { client, infos } = await readyClient(t);
  client.on("run:complete", () => {});
  const sub = client.subscribe("r1");
  await flush();
  FakeEventSource.last("/runs/subscribe").open();
  await flush();
  await client.close();
  assert.ok(FakeEventSource.created.every((s) => s.closed));
  assert.deepEqual(await sub.next(), { value: undefined, done: true });
  assert.equal(infos.at(-1)?.status, "closed");
  await assert.rejects(client.getRun("r1"), { code: "closed" });
  await assert.rejects(client.subscribe("r1").next(), { code: "closed" });
});
