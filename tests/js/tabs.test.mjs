// @ts-check
/**
 * Several tabs of one origin on one database (src/durably_web/web/client/transports/worker.mjs
 * with ./tabs.mjs and ./tab_server.mjs): one leads (runs the worker), the others follow through
 * it; when the leader closes or crashes, the next tab in line takes over. Each tab is a client
 * with its own view of the fake Web Locks (so it can crash) and its own BroadcastChannel.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { DurablyClient } from "../../src/durably_web/web/client/client.mjs";
import { DurablyError, ValidationError } from "../../src/durably_web/web/client/errors.mjs";
import { WorkerTransport } from "../../src/durably_web/web/client/transports/worker.mjs";
import { FakeBroadcastChannel, FakeLocks, FakeWorker, install, settleTabs, wireEvent, wireRun } from "./fakes.mjs";

/** @typedef {import("node:test").TestContext} TestContext */
/** @typedef {import("../../src/durably_web/web/client/transports/transport.js").StatusInfo} StatusInfo */

/**
 * The browser profile of one test: its locks, and tabs opened on database "/t.db".
 * @param {TestContext} t
 */
function profile(t) {
  const locks = new FakeLocks();
  install(t, { worker: true, locks });
  t.mock.method(console, "warn", () => {});
  return {
    locks,
    /**
     * Open a tab and start its client (not awaited).
     * @param {{listen?: string[], readyTimeout?: number, maxAttempts?: number}} [options]
     */
    open({ listen, ...options } = {}) {
      const view = locks.tab();
      /** @type {{locks: unknown}} */ (globalThis.navigator).locks = view; // what this tab's start() takes
      const transport = new WorkerTransport({ workerUrl: "http://test/worker.mjs", config: { jobsUrl: "http://test/jobs.py", database: "/t.db" }, ...options });
      /** @type {StatusInfo[]} */
      const infos = [];
      const client = new DurablyClient(transport, { listen, onStatus: (info) => infos.push(info) });
      const started = client.start();
      started.catch(() => {});
      t.after(() => client.close());
      const tab = {
        client,
        transport,
        started,
        infos,
        /** "status/role" of every status so far. */
        statuses: () => infos.map((i) => `${i.status}/${i.role}${i.stage ? `/${i.stage}` : ""}`),
        /** The tab dies at once: no message, its locks released by the browser, its worker gone. */
        crash() {
          view.crash();
          const tabs = /** @type {import("../../src/durably_web/web/client/transports/tabs.mjs").Tabs} */ (transport.tabs);
          tabs.closed = true;
          tabs.channel.close();
          transport.engine?.stop();
          clearTimeout(transport.helloTimer);
        },
      };
      return tab;
    },
  };
}

/** The newest worker. */
const newest = () => /** @type {FakeWorker} */ (FakeWorker.created.at(-1));

/** A leader tab (ready) and `followers` follower tabs (ready). @param {TestContext} t @param {number} followers @param {{listen?: string[], maxAttempts?: number}} [options] */
async function tabs(t, followers = 1, options = {}) {
  const browser = profile(t);
  const leader = browser.open(options);
  await settleTabs();
  const worker = newest();
  worker.ready();
  await leader.started;
  const rest = [];
  for (let i = 0; i < followers; i++) {
    const tab = browser.open(options);
    await settleTabs();
    await tab.started;
    rest.push(tab);
  }
  return { ...browser, leader, followers: rest, worker };
}

test("a second tab follows the first: ready at once with its jobs, no worker of its own", async (t) => {
  const { leader, followers, worker } = await tabs(t, 1);
  const [follower] = followers;
  assert.equal(FakeWorker.created.length, 1);
  assert.equal(leader.client.role, "leader");
  assert.equal(follower.client.role, "follower");
  assert.equal(follower.client.status, "ready");
  assert.deepEqual(follower.statuses(), ["booting/follower/leader", "ready/follower"]);
  assert.deepEqual(Object.keys(follower.client.jobs), ["import_csv"]);
  assert.deepEqual(follower.client.marks, { ready: 42 });
  assert.equal(worker.requests().length, 0, "saying hello asks nothing of the engine");
});

test("a follower that starts while the leader boots shows the leader's stages, then is ready with it", async (t) => {
  const browser = profile(t);
  const leader = browser.open();
  await settleTabs();
  const follower = browser.open();
  await settleTabs();
  newest().stage("sqlite");
  await settleTabs();
  newest().ready();
  await Promise.all([leader.started, follower.started]);
  await settleTabs();
  assert.deepEqual(follower.statuses(), ["booting/follower/leader", "booting/follower/worker", "booting/follower/sqlite", "ready/follower"]);
  assert.equal(FakeWorker.created.length, 1);
});

test("a follower's calls go to the leader's worker and their answers come back", async (t) => {
  const { followers, worker } = await tabs(t, 1);
  const client = followers[0].client;
  const runs = client.getRuns({ status: "failed", limit: 5 });
  await settleTabs();
  const request = worker.last("getRuns");
  assert.deepEqual(request, { type: "getRuns", status: "failed", limit: 5, id: request.id });
  worker.respond(request.id, [wireRun()]);
  await settleTabs();
  assert.deepEqual(await runs, [wireRun()]);

  const bad = client.jobs.import_csv.trigger({ rows: -1 }, { idempotencyKey: "k" });
  bad.catch(() => {}); // checked below
  await settleTabs();
  const trigger = worker.last("trigger");
  assert.deepEqual(trigger, { type: "trigger", jobName: "import-csv", input: { rows: -1 }, idempotencyKey: "k", id: trigger.id });
  worker.refuse(trigger.id, "rows must be > 0", "validation_error");
  await settleTabs();
  await assert.rejects(bad, (error) => error instanceof ValidationError && error.message === "rows must be > 0");

  for (const [call, type] of /** @type {[() => Promise<unknown>, string][]} */ ([
    [() => client.cancel("r1"), "cancel"],
    [() => client.retry("r1"), "retry"],
    [() => client.retrigger("r1"), "retrigger"],
    [() => client.deleteRun("r1"), "deleteRun"],
    [() => client.getSteps("r1"), "getSteps"],
    [() => client.getLogs("r1"), "getLogs"],
    [() => client.purgeRuns({ olderThan: "7d" }), "purgeRuns"],
    [() => client.jobs.import_csv.batchTrigger([1]), "batchTrigger"],
  ])) {
    const answer = call();
    await settleTabs();
    worker.respond(worker.last(type).id, `${type} done`);
    await settleTabs();
    assert.equal(await answer, `${type} done`);
  }
});

test("events: the worker forwards what every tab listens for; each tab gets only its own types", async (t) => {
  const { leader, followers, worker } = await tabs(t, 1, { listen: ["run:complete"] });
  const follower = followers[0];
  /** @type {string[]} */
  const seen = [];
  follower.client.on("run:progress", (event) => seen.push(`follower ${event.type} ${event.progress.current}`));
  follower.client.on("run:start", (event) => seen.push(`follower ${event.type}`));
  leader.client.on("run:complete", (event) => seen.push(`leader ${event.type}`));
  await settleTabs();
  assert.deepEqual(worker.last("listen").events, ["run:complete", "run:progress", "run:start"]);
  worker.send(JSON.stringify({ type: "events", events: [wireEvent("run:leased"), wireEvent("run:progress", { progress: { current: 1 } }), wireEvent("run:complete")] }));
  await settleTabs();
  assert.deepEqual(seen, ["leader run:complete", "follower run:leased", "follower run:progress 1"]);
  // The leader never asked for progress: it did not keep it for a later handler either.
  leader.client.on("run:progress", (event) => seen.push(`leader late ${event.type}`));
  await settleTabs();
  assert.ok(!seen.some((s) => s.startsWith("leader late")), seen.join(", "));
});

test("a follower's triggerAndWait: progress through the leader, the result after its events", async (t) => {
  const { followers, worker } = await tabs(t, 1);
  /** @type {unknown[]} */
  const progress = [];
  const waiting = followers[0].client.jobs.import_csv.triggerAndWait({ rows: 2 }, { onProgress: (p) => progress.push(p.current) });
  await settleTabs();
  const trigger = worker.last("trigger");
  worker.send(JSON.stringify({ type: "events", events: [wireEvent("run:progress", { runId: "r9", progress: { current: 1 } })] }));
  worker.respond(trigger.id, wireRun({ id: "r9", disposition: "created" }));
  await settleTabs();
  const subscribe = worker.last("subscribe");
  assert.equal(subscribe.runId, "r9");
  worker.send(JSON.stringify({ type: "events", events: [wireEvent("run:progress", { runId: "r9", sequence: 2, progress: { current: 2 } })] }));
  worker.send(JSON.stringify({ type: "subscription", id: String(subscribe.id), event: wireEvent("run:complete", { runId: "r9", sequence: 3 }) }));
  await settleTabs();
  worker.pong(); // the settle round trip (the follower's ping is the leader's)
  await settleTabs();
  worker.respond(worker.last("getRun").id, wireRun({ id: "r9", status: "completed" }));
  await settleTabs();
  assert.equal((await waiting).status, "completed");
  assert.deepEqual(progress, [1, 2]);
});

test("a follower's subscription: through the leader; breaking out of it unsubscribes on the worker", async (t) => {
  const { followers, worker } = await tabs(t, 1);
  const sub = followers[0].client.subscribe("r1");
  await settleTabs();
  const request = worker.last("subscribe");
  worker.respond(request.id, String(request.id));
  worker.send(JSON.stringify({ type: "subscription", id: String(request.id), event: wireEvent("run:progress", { sequence: 0 }) }));
  await settleTabs();
  for await (const event of sub) {
    assert.equal(event.type, "run:progress");
    break;
  }
  await settleTabs();
  assert.equal(worker.last("unsubscribe").subscription, String(request.id));
});

test("the leader's worker restarts: a follower's repeatable call is re-sent there, an unsafe one rejects", async (t) => {
  const { followers, worker } = await tabs(t, 1);
  const follower = followers[0];
  const read = follower.client.getRuns();
  const unsafe = follower.client.jobs.import_csv.trigger({ rows: 1 });
  unsafe.catch(() => {}); // checked below
  const sub = follower.client.subscribe("r1");
  await settleTabs();
  const first = worker.last("subscribe");
  worker.crash("out of memory");
  await settleTabs();
  await assert.rejects(unsafe, (error) => error instanceof DurablyError && error.code === "worker_restarted" && /the worker crashed: out of memory/.test(error.message));
  assert.equal(follower.client.status, "restarting");
  const second = newest();
  second.ready();
  await settleTabs();
  assert.equal(follower.client.status, "ready");
  second.respond(second.last("getRuns").id, []);
  const again = second.last("subscribe");
  assert.notEqual(again.id, first.id);
  assert.equal(second.requestsOf("subscribe").length, 1, "re-opened once, by the leader");
  second.send(JSON.stringify({ type: "subscription", id: String(again.id), event: wireEvent("run:complete") }));
  await settleTabs();
  assert.deepEqual(await read, []);
  const events = [];
  for await (const event of sub) events.push(event.type);
  assert.deepEqual(events, ["run:complete"]);
  assert.deepEqual(follower.statuses().slice(-3), ["ready/follower", "restarting/follower/worker", "ready/follower"]);
});

test("the leader closes: the next tab leads, re-sends what is safe, re-opens subscriptions; the others follow it", async (t) => {
  const { leader, followers, worker, locks } = await tabs(t, 2, { listen: ["run:start"] });
  const [next, other] = followers;
  other.client.on("log:write", () => {});
  await settleTabs();
  const reads = [next.client.getRuns(), other.client.getRuns()];
  const keyed = other.client.jobs.import_csv.trigger({ rows: 1 }, { idempotencyKey: "k1" });
  const unsafe = [next.client.cancel("r1"), other.client.cancel("r1")];
  for (const call of unsafe) call.catch(() => {}); // checked below
  const subs = [next.client.subscribe("r1"), other.client.subscribe("r1")];
  await settleTabs();
  assert.equal(worker.requestsOf("subscribe").length, 2);

  await leader.client.close("the page was hidden (pagehide)");
  await settleTabs();
  for (const call of unsafe) {
    await assert.rejects(call, (error) => error instanceof DurablyError && error.code === "worker_restarted" && /^The tab that ran the engine closed while this cancel request was in flight/.test(error.message));
  }
  assert.ok(worker.terminated);
  assert.equal(next.client.role, "leader");
  assert.equal(other.client.role, "follower");
  assert.equal(FakeWorker.created.length, 2);
  const second = newest();
  assert.deepEqual(second.init.listen, ["log:write", "run:start"], "the new engine listens for every tab from its boot");
  assert.deepEqual(second.requests(), [], "nothing goes to a worker before it is ready");
  assert.equal(other.client.status, "restarting");
  second.ready();
  await settleTabs();
  assert.deepEqual(second.requestsOf("getRuns").length, 2);
  assert.equal(second.last("trigger").idempotencyKey, "k1");
  assert.equal(second.requestsOf("subscribe").length, 2);
  assert.equal(second.requestsOf("cancel").length, 0);
  for (const request of second.requestsOf("getRuns")) second.respond(request.id, []);
  second.respond(second.last("trigger").id, wireRun({ idempotencyKey: "k1", disposition: "existing" }));
  for (const request of second.requestsOf("subscribe")) second.send(JSON.stringify({ type: "subscription", id: String(request.id), event: wireEvent("run:complete") }));
  await settleTabs();
  assert.deepEqual(await Promise.all(reads), [[], []]);
  assert.equal((await keyed).idempotencyKey, "k1");
  for (const sub of subs) assert.equal((await sub.next()).value?.type, "run:complete");
  assert.deepEqual(next.statuses().slice(-3), ["ready/follower", "restarting/leader/worker", "ready/leader"]);
  assert.deepEqual(other.statuses().slice(-4), ["ready/follower", "restarting/follower/leader", "restarting/follower/worker", "ready/follower"]);
  assert.deepEqual(locks.leads(), ["durably-web:/t.db"]);
});

test("the leader crashes: the next tab in line leads; events reach every tab from the new engine's boot", async (t) => {
  const { leader, followers } = await tabs(t, 2, { listen: ["run:start", "run:progress"] });
  const [next, other] = followers;
  /** @type {string[]} */
  const seen = [];
  other.client.on("run:start", (event) => seen.push(event.runId));
  const read = other.client.getRun("r1");
  await settleTabs();
  leader.crash(); // no message: only the lock tells
  await settleTabs();
  assert.equal(next.client.role, "leader");
  const second = newest();
  second.send({ type: "events", events: [wireEvent("run:leased", { runId: "reclaimed" })] }); // at boot, before ready
  second.ready();
  await settleTabs();
  assert.deepEqual(seen, ["reclaimed"]);
  second.respond(second.last("getRun").id, wireRun({ status: "leased" }));
  await settleTabs();
  assert.equal((await read)?.status, "leased");
  assert.equal(other.client.status, "ready");
});

test("requests a follower makes while no tab leads wait for the next leader", async (t) => {
  const { leader, followers } = await tabs(t, 2);
  const [next, other] = followers;
  leader.crash();
  const during = other.client.getRun("r2"); // before the next leader is known
  await settleTabs();
  assert.equal(next.client.role, "leader");
  newest().ready();
  await settleTabs();
  newest().respond(newest().last("getRun").id, null);
  await settleTabs();
  assert.equal(await during, null);
});

test("a follower that hears from no leader fails with leader_unreachable and never takes over later", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  const browser = profile(t);
  // Another tab holds the lock but never answers (an older version of the app, say).
  const release = /** @type {(value?: unknown) => void} */ (await new Promise((granted) => {
    browser.locks.request("durably-web:/t.db", {}, () => new Promise((resolve) => granted(resolve)));
  }));
  const tab = browser.open({ readyTimeout: 1000 });
  await settleTabs();
  const early = tab.client.getRuns(); // asked before the client was connected
  early.catch(() => {});
  t.mock.timers.tick(1000);
  await assert.rejects(tab.started, (error) => error instanceof DurablyError && error.code === "leader_unreachable" && /no tab running its engine answered within 1000 ms/.test(error.message));
  await assert.rejects(early, { code: "leader_unreachable" });
  assert.deepEqual(tab.statuses(), ["booting/follower/leader", "failed/follower"]);
  release(); // the other tab goes away: the failed tab must not start an engine now
  await settleTabs();
  assert.equal(FakeWorker.created.length, 0);
  assert.deepEqual(browser.locks.leads(), []);
  await assert.rejects(tab.client.getRuns(), { code: "closed" });
});

test("a follower that closes says goodbye: the leader ends its subscriptions and stops listening for it", async (t) => {
  const { leader, followers, worker } = await tabs(t, 1);
  const follower = followers[0];
  follower.client.on("log:write", () => {});
  follower.client.subscribe("r1");
  await settleTabs();
  const request = worker.last("subscribe");
  assert.deepEqual(worker.last("listen").events, ["log:write"]);
  await follower.client.close();
  await settleTabs();
  assert.equal(worker.last("unsubscribe").subscription, String(request.id));
  assert.deepEqual(worker.last("listen").events, []);
  assert.equal(FakeBroadcastChannel.of("bye").length, 1);
  // It no longer waits for the lead lock: the leader closing starts no worker.
  await leader.client.close();
  await settleTabs();
  assert.equal(FakeWorker.created.length, 1);
});

test("a follower that crashes is forgotten by the leader (its presence lock frees)", async (t) => {
  const { followers, worker } = await tabs(t, 1);
  const follower = followers[0];
  follower.client.on("run:fail", () => {});
  follower.client.subscribe("r1");
  await settleTabs();
  const request = worker.last("subscribe");
  follower.crash();
  await settleTabs();
  assert.equal(worker.last("unsubscribe").subscription, String(request.id));
  assert.deepEqual(worker.last("listen").events, []);
});

test("a leader whose engine fails hands over: the next tab tries its own engine", async (t) => {
  const { followers, worker } = await tabs(t, 1, { maxAttempts: 1 });
  const follower = followers[0];
  const read = follower.client.getRuns();
  await settleTabs();
  worker.crash("again and again");
  await settleTabs();
  assert.equal(follower.client.role, "leader");
  newest().ready();
  await settleTabs();
  newest().respond(newest().last("getRuns").id, []);
  assert.deepEqual(await read, []);
});
