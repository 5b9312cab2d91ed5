// @ts-check
/**
 * The JSON adapter the Python page client calls (src/durably_web/web/client/python.mjs): every
 * answer is JSON text `{ok, result | error}` (never a rejection), pushes go through one
 * callback. The shapes here are what src/durably_web/client/*.py reads.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { pyConnect } from "../../src/durably_web/web/client/python.mjs";
import { FakeEventSource, FakeLocks, FakeServer, FakeWorker, clientRun, flush, install, wireEvent } from "./fakes.mjs";

/** @typedef {import("node:test").TestContext} TestContext */

/** A Python page's adapter in server mode, ready. @param {TestContext} t */
async function serverAdapter(t) {
  const fake = new FakeServer("http://test/api");
  fake.route("GET", "/jobs", () => [200, [{ key: "import_csv", name: "import-csv" }]]);
  fake.route("GET", "/run", (url) => (url.searchParams.get("runId") === "r1" ? [200, clientRun({ status: "completed" })] : [404, { error: "Run not found" }]));
  fake.route("POST", "/trigger", () => [200, { runId: "r1", disposition: "created" }]);
  install(t, { eventSource: true, server: fake });
  /** @type {[string, any][]} */
  const pushes = [];
  const adapter = pyConnect(JSON.stringify({ url: "http://test/api" }), (kind, json) => pushes.push([kind, JSON.parse(json)]));
  t.after(() => adapter.close());
  const ready = JSON.parse(await adapter.ready);
  return { adapter, ready, pushes, fake };
}

test("ready: {ok, result: {jobs}}; status pushes carry role and stage", async (t) => {
  const { adapter, ready, pushes } = await serverAdapter(t);
  assert.deepEqual(ready, { ok: true, result: { jobs: [{ key: "import_csv", name: "import-csv" }] } });
  assert.deepEqual(pushes.map(([kind, info]) => [kind, info.status, info.role, info.stage]), [["status", "booting", "server", "server"], ["status", "ready", "server", undefined]]);
  assert.equal(JSON.parse(adapter.status()).status, "ready");
  assert.deepEqual(JSON.parse(adapter.jobs()), [{ key: "import_csv", name: "import-csv" }]);
});

test("call: positional JSON arguments, a JSON answer; errors as {error, code}", async (t) => {
  const { adapter } = await serverAdapter(t);
  const run = JSON.parse(await adapter.call("getRun", '["r1"]'));
  assert.equal(run.ok, true);
  assert.equal(run.result.status, "completed");
  assert.deepEqual(JSON.parse(await adapter.call("getRun", '["nope"]')), { ok: true, result: null });
  const triggered = JSON.parse(await adapter.call("trigger", '["import_csv", {"rows": 1}, {"idempotencyKey": "k"}]'));
  assert.deepEqual([triggered.result.disposition, triggered.result.idempotencyKey], ["created", "k"]);
  assert.deepEqual(JSON.parse(await adapter.call("trigger", '["nope", {}]')), { ok: false, error: { error: "Unknown job: nope", code: "not_found" } });
  assert.deepEqual(JSON.parse(await adapter.call("purgeRuns", '[{"olderThan": "7d"}]')).error.code, "not_supported");
  assert.deepEqual(JSON.parse(await adapter.call("close", "[]")), { ok: false, error: { error: "unknown client method close", code: "internal_error" } });
});

test("the methods Python may call are the table's call operations the client has", async (t) => {
  const { adapter } = await serverAdapter(t);
  for (const method of ["getRuns", "getSteps", "getLogs", "cancel", "retry", "retrigger", "deleteRun", "purgeRuns"]) {
    const answer = JSON.parse(await adapter.call(method, '["r1"]'));
    assert.notEqual(answer.error?.error, `unknown client method ${method}`, method);
  }
});

test("on/off: events pushed as {token, event}; an unknown type is a validation_error answer", async (t) => {
  const { adapter, pushes } = await serverAdapter(t);
  assert.deepEqual(JSON.parse(adapter.on("run:bogus")).error.code, "validation_error");
  const { ok, result: token } = JSON.parse(adapter.on("run:complete"));
  assert.equal(ok, true);
  const stream = FakeEventSource.last("/runs/subscribe");
  stream.open();
  stream.emit(wireEvent("run:complete"));
  assert.deepEqual(pushes.at(-1), ["event", { token, event: wireEvent("run:complete") }]);
  adapter.off(token);
  assert.ok(stream.closed);
});

test("subscribe / next / unsubscribe", async (t) => {
  const { adapter } = await serverAdapter(t);
  const id = adapter.subscribe("r1");
  await flush();
  const stream = FakeEventSource.last("/subscribe?runId=r1");
  stream.open();
  stream.emit(wireEvent("run:progress", { sequence: 0 }));
  assert.deepEqual(JSON.parse(await adapter.next(id)), { ok: true, result: { done: false, value: wireEvent("run:progress", { sequence: 0 }) } });
  adapter.unsubscribe(id);
  assert.ok(stream.closed);
  assert.deepEqual(JSON.parse(await adapter.next(id)), { ok: true, result: { done: true } });
});

test("wait: progress pushed as {token, kind, value}, then the completed run", async (t) => {
  const { adapter, pushes } = await serverAdapter(t);
  const waiting = adapter.wait("r1", 0, 7);
  await flush();
  const events = FakeEventSource.last("/runs/subscribe");
  events.open();
  await flush();
  const stream = FakeEventSource.last("/subscribe?runId=r1");
  stream.open();
  stream.emit(wireEvent("run:progress", { sequence: 0, progress: { current: 4 } }));
  await flush();
  stream.emit(wireEvent("run:complete"));
  events.emit(wireEvent("run:complete")); // what the result waits for (settle)
  const done = JSON.parse(await waiting);
  assert.equal(done.result.status, "completed");
  assert.deepEqual(pushes.filter(([kind]) => kind === "wait"), [["wait", { token: 7, kind: "progress", value: { current: 4 } }]]);
});

test("a failed boot answers ready with the error, and status pushes carry it", async (t) => {
  const fake = new FakeServer("http://test/api");
  fake.down = true;
  install(t, { eventSource: true, server: fake });
  /** @type {any[]} */
  const statuses = [];
  const adapter = pyConnect(JSON.stringify({ url: "http://test/api" }), (kind, json) => statuses.push(JSON.parse(json)));
  const ready = JSON.parse(await adapter.ready);
  assert.equal(ready.ok, false);
  assert.equal(ready.error.code, "network_error");
  assert.deepEqual(statuses.at(-1).error, ready.error);
  assert.deepEqual(JSON.parse(await adapter.call("getRun", '["r1"]')).error, { error: "the engine is not ready", code: "closed" });
});

test("worker mode: killWorker terminates the worker behind the client's back", async (t) => {
  install(t, { worker: true, locks: new FakeLocks() });
  const adapter = pyConnect(JSON.stringify({ jobs: "http://test/jobs.py", database: "/py.db" }), () => {});
  t.after(() => adapter.close());
  await flush();
  const worker = FakeWorker.created[0];
  assert.match(worker.url, /\/runtime\/worker\.mjs$/);
  assert.equal(worker.init.jobsUrl, "http://test/jobs.py");
  worker.ready();
  assert.equal(JSON.parse(await adapter.ready).ok, true);
  adapter.killWorker();
  assert.ok(worker.terminated);
  assert.deepEqual(JSON.parse(await adapter.close()), { ok: true, result: null });
});
