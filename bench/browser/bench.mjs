// @ts-check
/**
 * The durably_web benchmark page's script. bench/systems/chromium.py sets
 * `window.__benchConfig = {workload, synchronous, params}` before the page loads and reads
 * what the page reports as console lines `__bench__ <JSON>`: `{type: "stage", name, t}`,
 * `{type: "crashed"}`, then `{type: "done", metrics, info}` or `{type: "error", message}`.
 *
 * - `start`: the product path, `connect({jobs})` from the site's _durably/client/index.mjs with
 *   the product worker _durably/runtime/worker.mjs; reports navigation → engine ready (ms since
 *   this document's navigation) and the worker's boot marks (whether it restored a memory
 *   snapshot: runtime/snapshot.mjs).
 * - `resume`: first load (no `?phase=resume`): the worker runs the long job and says when it
 *   reached the step to die in; this page terminates it at once and reports `crashed`. The
 *   driver then loads `?phase=resume`, whose worker resumes the run.
 * - anything else (`throughput`, `latency`, `queries`, `floor`): one run of bench/worker.mjs.
 */
const config = /** @type {any} */ (window).__benchConfig;
const phase = new URL(location.href).searchParams.get("phase");
/** @param {Record<string, any>} message */
const report = (message) => console.log(`__bench__ ${JSON.stringify(message)}`);
const seconds = () => performance.now() / 1000; // since this document's navigation started

/** @param {string} workload @param {(message: any, worker: Worker) => void} [onOther] */
function runWorker(workload, onOther) {
  const worker = new Worker(new URL("./worker.mjs", import.meta.url), { type: "module" });
  const created = seconds();
  worker.onmessage = (event) => {
    const message = event.data;
    if (message.type === "stage") report(message);
    else if (message.type === "result") {
      const metrics = { ...message.metrics };
      if (workload === "resume") metrics.fresh_to_complete_s = seconds();
      report({ type: "done", metrics, info: { ...message.info, worker_created_s: created } });
    } else if (message.type === "error") report({ type: "error", message: message.message });
    else onOther?.(message, worker);
  };
  worker.onerror = (event) => report({ type: "error", message: `worker error: ${event.message}` });
  worker.postMessage({ type: "run", config: { ...config, workload } });
}

async function start() {
  const { connect } = await import("../_durably/client/index.mjs");
  /** @type {Record<string, number>} */
  const stages = {};
  const client = await connect({
    jobs: "./bench_jobs.py",
    database: "/bench.db",
    durability: config.synchronous === "FULL" ? /** @type {any} */ ("WAL_FULL") : "NORMAL",
    onStatus: (info) => {
      const name = /** @type {any} */ (info).stage ?? info.status;
      if (name) stages[name] = Math.round(performance.now());
    },
  });
  const ready = performance.now();
  // marks: the worker's boot steps (ms since it started), `snapshot-<outcome>` among them
  report({ type: "done", metrics: { ready_ms: ready }, info: { stages, marks: client.marks } });
}

if (config.workload === "start") {
  start().catch((error) => report({ type: "error", message: String(error?.stack ?? error) }));
} else if (config.workload === "resume" && phase !== "resume") {
  runWorker("crash", (message, worker) => {
    if (message.type === "crashing") {
      worker.terminate(); // the tab's engine dies inside step `crash_after`
      report({ type: "crashed" });
    }
  });
} else {
  runWorker(config.workload);
}
