// @ts-check
/**
 * What pages import (src/durably_web/web/client/index.mjs): `connect()` picks the transport
 * from its options, `preconnect()` starts a boot that the first `connect()` takes over.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { DurablyClient, HttpTransport, WorkerTransport, connect, preconnect } from "../../src/durably_web/web/client/index.mjs";
import { FakeEventSource, FakeLocks, FakeServer, FakeWorker, flush, install, wireEvent } from "./fakes.mjs";

test("connect({url}): the HTTP transport, no worker", async (t) => {
  const fake = new FakeServer("http://test/api");
  fake.route("GET", "/jobs", () => [200, []]);
  install(t, { worker: true, eventSource: true, server: fake });
  const client = await connect({ url: "http://test/api/" });
  t.after(() => client.close());
  assert.ok(client instanceof DurablyClient);
  assert.ok(client.transport instanceof HttpTransport);
  assert.equal(client.role, "server");
  assert.equal(FakeWorker.created.length, 0);
});

test("connect({jobs}): the worker transport with the page's options", async (t) => {
  install(t, { worker: true, locks: new FakeLocks() });
  const connecting = connect({ jobs: "http://test/app/jobs.py", database: "/c.db", durability: "FULL", packages: ["x.whl"], options: { preserve_steps: true }, pingInterval: 100 });
  await flush();
  const worker = FakeWorker.created[0];
  assert.match(worker.url, /^file:.*\/web\/runtime\/worker\.mjs$/, "the worker beside the client by default");
  assert.deepEqual(worker.init, { jobsUrl: "http://test/app/jobs.py", packages: ["x.whl"], database: "/c.db", durability: "FULL", options: { preserve_steps: true }, listen: [] });
  worker.ready();
  const client = await connecting;
  t.after(() => client.close());
  assert.ok(client.transport instanceof WorkerTransport);
  assert.equal(client.transport.pingInterval, 100);
  assert.equal(client.role, "leader");
});

test("preconnect: the first connect() for the database takes the boot over", async (t) => {
  install(t, { worker: true, locks: new FakeLocks() });
  preconnect({ jobs: "http://test/jobs.py", database: "/pre.db", listen: ["run:leased"] });
  await flush();
  const worker = FakeWorker.created[0];
  worker.stage("sqlite");
  worker.send({ type: "events", events: [wireEvent("run:leased", { runId: "reclaimed" })] });
  /** @type {string[]} */
  const statuses = [];
  const connecting = connect({ jobs: "http://ignored/jobs.py", database: "/pre.db", listen: ["log:write"], onStatus: (info) => statuses.push(`${info.status}/${info.stage ?? ""}`) });
  assert.deepEqual(statuses, ["booting/worker", "booting/sqlite"], "the statuses so far first");
  worker.ready();
  const client = await connecting;
  t.after(() => client.close());
  assert.equal(FakeWorker.created.length, 1, "one boot");
  assert.equal(worker.init.jobsUrl, "http://test/jobs.py", "the preconnect's options are the ones used");
  assert.deepEqual(statuses.at(-1), "ready/");
  assert.deepEqual(worker.last("listen").events, ["log:write", "run:leased"], "connect's listen types are added");
  /** @type {string[]} */
  const seen = [];
  client.on("run:start", (event) => seen.push(event.runId));
  await new Promise((resolve) => setTimeout(resolve, 1));
  assert.deepEqual(seen, ["reclaimed"], "an event from before connect() reaches the first handler");
  const again = await connect({ jobs: "http://test/jobs.py", database: "/pre.db" });
  t.after(() => again.close());
  assert.equal(again.role, "follower", "a second connect is a second client, following the first");
  assert.equal(FakeWorker.created.length, 1);
});

test("a preconnect nobody takes over fails quietly", async (t) => {
  install(t, { worker: true, locks: null });
  preconnect({ jobs: "http://test/jobs.py", database: "/quiet.db" });
  await flush(); // no unhandled rejection: node:test would fail the file
  assert.equal(FakeWorker.created.length, 0);
  await assert.rejects(connect({ database: "/quiet.db" }), { code: "web_locks_unavailable" });
});

test("preconnect({url}) does nothing: connect() is quick in server mode", (t) => {
  install(t, { worker: true, eventSource: true });
  preconnect({ url: "http://test/api" });
  assert.equal(FakeWorker.created.length, 0);
  assert.equal(FakeEventSource.created.length, 0);
});
