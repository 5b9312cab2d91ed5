// @ts-check
/**
 * Run the engine's test suite on Pyodide (CPython 3.14 on WASM) under Node, over the real
 * synchronous SQLite bridge (src/durably_web/web/runtime/sqlite_bridge.mjs) with sqlite-wasm:
 * no browser needed.
 *
 * Usage (from anywhere; paths are relative to the repository root):
 *   node tests/pyodide/run_in_node.mjs [--vendor .build/site/_durably/vendor] [--src]
 *        [--npm-packages .build/npm/packages]
 *        [--wheels .build/test-wheels] [--backend memory] [--backend file]
 *        [-k SUBSTRING] [--module tests/contract/test_store.py] [--timeout 60] [--watchdog 60]
 *        [--verbose] [--gc] [--json FILE]
 *
 *   --vendor   the vendored runtime (`durably-web build` output): pyodide.mjs, our
 *              pyodide-lock.json, the .pyc stdlib and the wheels.
 *   --npm-packages  the npm packages the build extracted (sqlite-wasm's Node build is taken from there).
 *   --src      mount the repository's src/ instead of loading the durably-web wheel from the
 *              lock (implied when the lock has no durably-web, e.g. the spike's vendor dir).
 *   --wheels   pytest and its dependencies (tests/pyodide/requirements.txt), fetched by
 *              `python -m tests.pyodide.assets`.
 *   --backend  "memory" (one :memory: connection per test) and/or "file" (a new connection per
 *              connect() to one file in sqlite-wasm's in-memory file system, "unix" VFS with
 *              real locks); default both. See BACKENDS in tests/pyodide/runner.py.
 *   --timeout  seconds per test (an async timeout: it cannot stop a test that never yields).
 *   --watchdog seconds without a new test after which Python gets a KeyboardInterrupt (through
 *              Pyodide's interrupt buffer, set from a worker thread), so a test stuck in a
 *              loop that never yields fails with a traceback instead of hanging the run.
 *   --gc       collect garbage after every test, so an unraisable exception (an unclosed
 *              database's ResourceWarning) fails the test that caused it (slower).
 *
 * Nothing is fetched from the network: every lock entry must exist in --vendor, and `fetch` of
 * anything but a local file throws (Pyodide would otherwise quietly download a missing wheel
 * from its CDN). Python's output goes to stderr; stdout gets only the JSON summary
 * (tests/pyodide/runner.py). Exit status: 0 when every test passed or was skipped and at least
 * one passed, 1 on any failure, 2 when the harness itself failed.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const MOUNT = "/home/pyodide/durably"; // the repository's tests/ (and src/) appear here

const { values: opts } = parseArgs({
  options: {
    vendor: { type: "string", default: ".build/site/_durably/vendor" },
    "npm-packages": { type: "string", default: ".build/npm/packages" },
    src: { type: "boolean", default: false },
    wheels: { type: "string", default: ".build/test-wheels" },
    backend: { type: "string", multiple: true },
    k: { type: "string", short: "k" },
    module: { type: "string", multiple: true },
    timeout: { type: "string", default: "60" },
    watchdog: { type: "string", default: "60" },
    verbose: { type: "boolean", default: false },
    gc: { type: "boolean", default: false },
    json: { type: "string" },
  },
});

/** @param {string} message @returns {never} */
function die(message) {
  process.stderr.write(`run_in_node: ${message}\n`);
  process.exit(2);
}

/** Refuse every network fetch: a missing vendored file must fail, not come from a CDN. */
function blockNetwork() {
  const realFetch = globalThis.fetch;
  globalThis.fetch = /** @type {typeof fetch} */ (
    async (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !url.startsWith("file:")) {
        throw new Error(`run_in_node: network fetch refused: ${url}`);
      }
      return realFetch(input, init);
    }
  );
}

/**
 * Check the vendored lock: every entry's wheel must be on disk.
 * @param {string} pyodideDir @returns {Record<string, any>} the lock's packages
 */
function checkLock(pyodideDir) {
  const lockPath = path.join(pyodideDir, "pyodide-lock.json");
  if (!existsSync(path.join(pyodideDir, "pyodide.mjs")) || !existsSync(lockPath)) {
    die(`no vendored Pyodide in ${pyodideDir}: run \`durably-web build\` first`);
  }
  const packages = JSON.parse(readFileSync(lockPath, "utf8")).packages ?? {};
  for (const [name, entry] of Object.entries(packages)) {
    if (!existsSync(path.join(pyodideDir, entry.file_name))) {
      die(`the lock lists ${name} but ${entry.file_name} is not in ${pyodideDir}`);
    }
  }
  return packages;
}

/**
 * Interrupt Python (KeyboardInterrupt) when no test starts for `seconds`: a worker thread
 * watches a progress counter and writes SIGINT into Pyodide's interrupt buffer.
 * @param {any} pyodide @param {number} seconds @returns {() => void} call at each test start
 */
function startWatchdog(pyodide, seconds) {
  const interrupt = new Int32Array(new SharedArrayBuffer(4));
  const progress = new Int32Array(new SharedArrayBuffer(4));
  pyodide.setInterruptBuffer(interrupt);
  const source = `
    const { workerData } = require("node:worker_threads");
    const interrupt = new Int32Array(workerData.interrupt);
    const progress = new Int32Array(workerData.progress);
    let last = -1;
    let since = Date.now();
    setInterval(() => {
      const now = Atomics.load(progress, 0);
      if (now !== last) {
        last = now;
        since = Date.now();
      } else if (Date.now() - since > workerData.limitMs) {
        Atomics.store(interrupt, 0, 2); // SIGINT: KeyboardInterrupt at the next bytecode check
        since = Date.now();
      }
    }, 250);`;
  const worker = new Worker(source, {
    eval: true,
    workerData: { interrupt: interrupt.buffer, progress: progress.buffer, limitMs: seconds * 1000 },
  });
  worker.unref();
  return () => Atomics.add(progress, 0, 1);
}

/**
 * The JS side of the runner's `host` argument under Node.
 * @param {any} sqlite3 @param {() => void} onTest
 */
function nodeHost(sqlite3, onTest) {
  const unlink = sqlite3.wasm.xWrap("sqlite3__wasm_vfs_unlink", "int", ["sqlite3_vfs*", "string"]);
  const vfs = sqlite3.capi.sqlite3_vfs_find("unix");
  return {
    /** Called by the runner as each test starts. @param {string} _name */
    testStarted(_name) {
      onTest();
    },
    /** Delete a database and its journals from sqlite-wasm's file system. @param {string} filename */
    deleteDatabase(filename) {
      let deleted = 0;
      for (const suffix of ["", "-journal", "-wal", "-shm"]) {
        if (unlink(vfs, filename + suffix) === 0) deleted++;
      }
      return deleted;
    },
  };
}

async function main() {
  const started = performance.now();
  const vendor = path.resolve(ROOT, /** @type {string} */ (opts.vendor));
  const wheels = path.resolve(ROOT, /** @type {string} */ (opts.wheels));
  const pyodideDir = path.join(vendor, "pyodide");
  const lock = checkLock(pyodideDir);
  if (!existsSync(wheels)) die(`no test wheels in ${wheels}: run \`python -m tests.pyodide.assets\``);
  const modules = path.resolve(ROOT, /** @type {string} */ (opts["npm-packages"]));
  const sqliteModule = path.join(modules, "@sqlite.org/sqlite-wasm/dist/node.mjs");
  if (!existsSync(sqliteModule)) die(`no ${sqliteModule}: run \`durably-web build\` first`);
  const useSrc = opts.src || !lock["durably-web"];
  blockNetwork();

  const indexURL = `${pyodideDir}/`;
  const { loadPyodide } = await import(pathToFileURL(path.join(pyodideDir, "pyodide.mjs")).href);
  /** @param {string} line */
  const toStderr = (line) => process.stderr.write(`${line}\n`);
  const pyodide = await loadPyodide({
    indexURL,
    lockFileURL: `${indexURL}pyodide-lock.json`, // absolute and local: never the CDN's
    stdLibURL: `${indexURL}python_stdlib.zip`,
    packages: useSrc ? ["pydantic"] : ["pydantic", "durably-web"],
    stdout: toStderr,
    stderr: toStderr,
  });
  const booted = performance.now();

  const { default: sqlite3InitModule } = await import(pathToFileURL(sqliteModule).href);
  const bridgeModule = path.join(ROOT, "src/durably_web/web/runtime/sqlite_bridge.mjs");
  const { createBridge } = await import(pathToFileURL(bridgeModule).href);
  const sqlite3 = await sqlite3InitModule();
  const bridge = createBridge(sqlite3, (/** @type {string} */ filename) =>
    filename === ":memory:"
      ? new sqlite3.oo1.DB(filename, "c")
      : new sqlite3.oo1.DB({ filename, flags: "c", vfs: "unix" }), // POSIX locks between connections
  );
  pyodide.registerJsModule("durably_sqlite", bridge);
  const host = nodeHost(sqlite3, startWatchdog(pyodide, Number(opts.watchdog)));

  pyodide.FS.mkdirTree(`${MOUNT}/tests`);
  pyodide.mountNodeFS(`${MOUNT}/tests`, path.join(ROOT, "tests"));
  pyodide.FS.mkdirTree("/home/pyodide/test-wheels");
  pyodide.mountNodeFS("/home/pyodide/test-wheels", wheels);
  if (useSrc) {
    pyodide.FS.mkdirTree(`${MOUNT}/src`);
    pyodide.mountNodeFS(`${MOUNT}/src`, path.join(ROOT, "src"));
  }
  const paths = useSrc ? [MOUNT, `${MOUNT}/src`] : [MOUNT];
  const runSuite = pyodide.runPython(`
import sys
sys.dont_write_bytecode = True  # the mounted directories are the host's: leave them clean
for entry in reversed(${JSON.stringify(paths)}):
    sys.path.insert(0, entry)
from tests.pyodide.bootstrap import install_wheels
install_wheels("/home/pyodide/test-wheels")
import durably_web
if ${useSrc ? "True" : "False"}:
    assert durably_web.__file__.startswith("${MOUNT}/src/"), durably_web.__file__
else:
    assert "site-packages" in durably_web.__file__, durably_web.__file__
from tests.pyodide.runner import run_suite
run_suite
`);
  const config = {
    root: MOUNT,
    backends: opts.backend?.length ? opts.backend : ["memory", "file"],
    modules: opts.module ?? null,
    match: opts.k ?? null,
    timeout: Number(opts.timeout),
    verbose: opts.verbose,
    gc: opts.gc,
  };
  const text = await runSuite(bridge, host, JSON.stringify(config));
  runSuite.destroy();
  const summary = JSON.parse(text);
  summary.harness = {
    host: `node ${process.version}`,
    durably_web: useSrc ? "src/ (mounted)" : "durably-web wheel from the lock",
    boot_ms: Math.round(booted - started),
    total_ms: Math.round(performance.now() - started),
  };
  const out = JSON.stringify(summary, null, 1);
  if (opts.json) writeFileSync(path.resolve(opts.json), out);
  process.stdout.write(`${out}\n`);

  for (const failure of summary.failed) {
    process.stderr.write(`\nFAILED ${failure.name} (${failure.phase}): ${failure.error}\n${failure.traceback}\n`);
  }
  const { passed, failed, skipped } = summary.counts;
  process.stderr.write(
    `pyodide (${summary.python.split(" ")[0]}, ${summary.backends.join("+")}): ` +
      `${passed} passed, ${failed} failed, ${skipped} skipped in ${(summary.harness.total_ms / 1000).toFixed(1)} s\n`,
  );
  return failed === 0 && passed > 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`run_in_node: ${error?.stack ?? error}\n`);
    process.exit(2);
  },
);
