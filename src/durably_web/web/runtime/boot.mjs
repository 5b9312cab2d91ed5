// @ts-check
/**
 * The engine worker's interpreter boot: Pyodide with the engine's packages imported, restored
 * from a memory snapshot (./snapshot.mjs) when one of this build is stored, else booted
 * normally; after such a boot (once the engine is ready: `save()`), a short-lived worker
 * (./snapshot_worker.mjs) boots the same files again, takes the snapshot for the next boot
 * and hands it back to be stored, off the critical path. Any snapshot failure falls back to a
 * normal boot. The engine's packages come from the build's engine tar (./engine_site.mjs), written
 * into site-packages before Python starts, not from Pyodide's loadPackage; its stdlib is the
 * build's core stdlib zip, the rest fetched on first import (durably_web.browser.stdlib).
 *
 * ./runtime.mjs's `bootPyodide` stays the plain boot (loadPackage, no snapshot) of the
 * benchmark and test-runner workers.
 */
import { bootFileUrl, fetchEngineManifest, fetchEngineSite, installEngineSite } from "./engine_site.mjs";
import { prefetch, prefetched, withPrefetched } from "./prefetch.mjs";
import { JOB_DIR, writeJobModule } from "./runtime.mjs";
import { openSnapshot, restoreDynlibHandles, snapshotKey, takeSnapshot } from "./snapshot.mjs";
import { TIMEOUTS, within } from "./timeouts.mjs";

/**
 * @typedef {{ importModule?: (url: string) => Promise<any>, before?: Promise<unknown>,
 *             build?: Promise<string | null> | null,
 *             snapshots?: import("./snapshot.mjs").SnapshotStore | null,
 *             jobs?: Promise<{ url: string, source: string } | null>,
 *             marks?: Record<string, number>,
 *             makeSnapshot?: (request: SnapshotRequest) => Promise<Uint8Array> }} BootOptions
 *   importModule: how to import Pyodide's modules; before: Pyodide is loaded only once this
 *   settles (the worker passes its VFS install: the fetches, the tar unpack, the compile of
 *   Pyodide's wasm and of the extensions overlap it; Pyodide's instantiation overlapping it made the install hang on 2 of
 *   12 loads, see bench/BOOT-NOTES.md); build: the build id (the sha256 of the site's
 *   manifest) the snapshot key starts with (null: no snapshot); snapshots: where memory snapshots are kept
 *   (without a store or a build id: always a normal boot, outcome "off"); jobs: the page's
 *   job module, imported after the engine so that a snapshot holds it too (startEngine's
 *   import of it is then free); marks: gets the `performance.now()` of the boot's steps
 *   (site, compiled, snapshotFound, before, instantiated, installed (the engine's files
 *   written), extensions (its extension modules loaded: before `installed` in a restore, at
 *   Python's first import of one in a normal boot, absent if none was imported before
 *   `ready`), module, then snapshotRead and restored, or booted and imported); makeSnapshot: how `save()` makes the snapshot of a
 *   normal boot (default {@link makeInWorker}).
 * @typedef {"restored" | "made" | "replaced" | "off"} SnapshotOutcome
 *   restored: booted from a snapshot; made: a normal boot, whose `save()` makes and stores a
 *   snapshot; replaced: a stored snapshot failed to restore (and was deleted), so a normal
 *   boot, whose `save()` makes a new one; off: no store or no build id, no snapshot.
 * @typedef {{ pyodide: any, snapshot: SnapshotOutcome, save: () => Promise<void> }} BootedInterpreter
 *   save: after a normal boot, make the snapshot (in another worker) and store it; rejects
 *   if that failed (the engine is not affected: the next boot is a normal one again).
 * @typedef {{ key: string, jobs: { url: string, source: string } | null,
 *             site: import("./engine_site.mjs").EngineSite, compiled: WebAssembly.Module | null,
 *             stdlib: { url: string, bytes: ArrayBuffer } | null }} SnapshotRequest
 *   What a snapshot worker boots from: the snapshot's key, the job module, the engine's files
 *   and Pyodide's compiled wasm and stdlib zip as the engine worker's normal boot had them
 *   (null: its early fetch failed, Pyodide fetches the file itself). Structured-cloneable.
 * @typedef {Promise<{ header: import("./snapshot.mjs").SnapshotHeader, memory: Uint8Array }>} OpenedSnapshot
 * @typedef {import("./engine_site.mjs").EngineManifest} EngineManifest
 */

/**
 * Boot the engine's interpreter (see the module docstring). Call `save()` of the result once
 * the engine is ready: after a normal boot it makes a snapshot in another worker and stores
 * it (~36 MB, off the critical path).
 * @param {string} vendorUrl absolute URL of the vendored files, ending in "/"
 * @param {BootOptions} [options]
 * @returns {Promise<BootedInterpreter>}
 */
export async function bootInterpreter(vendorUrl, options = {}) {
  const { importModule = (/** @type {string} */ url) => import(url), before = Promise.resolve(), snapshots = null } = options;
  const marks = options.marks ?? {};
  const mark = (/** @type {string} */ name) => void (marks[name] = performance.now());
  const indexURL = `${vendorUrl}pyodide/`;
  // Everything that is only bytes starts now, side by side: Pyodide's JS, its wasm (compiled
  // as it arrives) and the stdlib (./prefetch.mjs), the engine's files, the job module, the
  // stored snapshot (a Cache Storage read).
  // Their URLs are versioned (./engine_site.mjs `bootFileUrl`): a warm load reads them from
  // the HTTP cache without a revalidation round trip.
  const pyodideJs = importModule(bootFileUrl(indexURL, "pyodide.mjs"));
  const asmJs = importModule(bootFileUrl(indexURL, "pyodide.asm.mjs"));
  const manifest = fetchEngineManifest(indexURL);
  const early = prefetch(indexURL, manifest.then((m) => bootFileUrl(indexURL, m.stdlib)));
  early.compiled.then(() => mark("compiled"));
  const site = manifest.then((m) => fetchEngineSite(indexURL, m)).finally(() => mark("site"));
  site.catch(() => {}); // awaited by every load
  const jobs = (await options.jobs?.catch(() => null)) ?? null;
  const build = (await options.build?.catch(() => null)) ?? null;
  const store = build ? snapshots : null;
  const key = store && build ? await snapshotKey(build, indexURL, jobs) : "";
  /** @type {OpenedSnapshot | null} */
  let stored = null;
  try {
    const blob = store && (await store.find(key));
    stored = blob && blob.arrayBuffer().then((bytes) => openSnapshot(new Uint8Array(bytes), key));
    stored?.then(() => mark("snapshotRead")).catch(() => {}); // a bad one fails its restore below
  } catch (error) {
    console.warn("durably_web: cannot read the boot snapshot:", error);
  }
  mark("snapshotFound");
  const interpreter = {
    loadPyodide: (await pyodideJs).loadPyodide,
    createModule: (await asmJs).default,
    indexURL,
    stdlib: (await manifest).stdlib,
    site,
    early,
    mark,
  };
  await before.catch(() => {});
  mark("before");

  let replaced = false;
  if (stored) {
    try {
      const pyodide = await loadInterpreter(interpreter, { snapshot: stored });
      Object.assign(pyodide.loadedPackages, (await stored).header.loadedPackages);
      stored = null; // the ~35 MB read can go: Pyodide's config would keep it for good
      pyodide._api.config._loadSnapshot = undefined;
      pyodide.runPython("from durably_web.browser.boot import refresh_after_restore; refresh_after_restore()");
      mark("restored");
      return { pyodide, snapshot: "restored", save: async () => {} };
    } catch (error) {
      console.warn("durably_web: the boot snapshot failed to restore; booting normally:", error);
      stored = null;
      await store?.remove(key).catch(() => {});
      replaced = true;
    }
  }
  // Nothing copies this boot's memory: its extensions load when Python first imports them.
  const pyodide = await loadInterpreter(interpreter, { lazyExtensions: true });
  mark("booted");
  importEngine(pyodide, indexURL, await manifest, jobs);
  mark("imported");
  if (!store) return { pyodide, snapshot: "off", save: async () => {} };
  // The snapshot is made off the critical path: by another worker, after `ready`, from the
  // files this boot already holds (./snapshot_worker.mjs).
  /** @type {SnapshotRequest | null} */
  let request = { key, jobs, site: await site, compiled: await early.compiled, stdlib: await early.stdlib };
  const make = options.makeSnapshot ?? makeInWorker;
  return {
    pyodide,
    snapshot: replaced ? "replaced" : "made",
    save: async () => {
      const taken = request;
      request = null; // made once; the files can go
      if (taken) await store.save(key, await make(taken));
    },
  };
}

/**
 * Make the snapshot of a normal boot in a short-lived worker of its own
 * (./snapshot_worker.mjs), which boots Pyodide from `request`'s files as the engine worker
 * did (no VFS, no database: the OPFS pool is the engine worker's), imports the engine and the
 * job module, takes the snapshot and hands its bytes back. The worker is ended either way,
 * at the latest after `TIMEOUTS.snapshotWorker` (./timeouts.mjs): nothing is stored then.
 * @param {SnapshotRequest} request
 * @returns {Promise<Uint8Array>}
 */
export function makeInWorker(request) {
  const worker = new Worker(new URL("./snapshot_worker.mjs", import.meta.url), { type: "module", name: "durably_web snapshot" });
  /** @type {Promise<Uint8Array>} */
  const made = new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => (data?.bytes ? resolve(data.bytes) : reject(new Error(data?.error ?? "no snapshot")));
    worker.onerror = (event) => reject(new Error(`the snapshot worker failed: ${event.message ?? "cannot load it"}`));
    worker.postMessage(request);
  });
  return within(made, TIMEOUTS.snapshotWorker, "the snapshot worker").finally(() => worker.terminate());
}

/**
 * Boot Pyodide normally from the files of `request` (those a normal boot of the engine worker
 * held: the same calls, so the extensions land at the same addresses), import the engine and
 * the job module, build what they left for first use (the jobs' pydantic adapters:
 * durably_web.browser.boot.prepare_snapshot), and take a memory snapshot (./snapshot.mjs container, under `request.key`).
 * What ./snapshot_worker.mjs runs.
 * @param {string} vendorUrl absolute URL of the vendored files, ending in "/"
 * @param {SnapshotRequest} request
 * @param {(url: string) => Promise<any>} [importModule] how to import Pyodide's modules
 * @returns {Promise<Uint8Array>}
 */
export async function makeSnapshot(vendorUrl, request, importModule = (url) => import(url)) {
  const indexURL = `${vendorUrl}pyodide/`;
  const { manifest } = request.site;
  const interpreter = {
    loadPyodide: (await importModule(bootFileUrl(indexURL, "pyodide.mjs"))).loadPyodide,
    createModule: (await importModule(bootFileUrl(indexURL, "pyodide.asm.mjs"))).default,
    indexURL,
    stdlib: manifest.stdlib,
    site: Promise.resolve(request.site),
    early: prefetched(indexURL, request.compiled, request.stdlib),
    mark: () => {},
  };
  const pyodide = await loadInterpreter(interpreter); // extensions before the runtime, as a restore loads them
  importEngine(pyodide, indexURL, manifest, request.jobs);
  // What the imports left for first use (the job module's pydantic adapters), so that the
  // snapshot holds it: a restored boot never pays it.
  pyodide.runPython("from durably_web.browser.boot import prepare_snapshot; prepare_snapshot()");
  return takeSnapshot(pyodide, request.key);
}

/**
 * Load Pyodide (restoring `snapshot` when given) with the engine's files installed by a
 * preRun hook, after the wasm is instantiated and before the C runtime starts. The engine's
 * extension modules are loaded in that hook too (at the same addresses at every such boot:
 * what a snapshot and its restore need), unless `lazyExtensions`: then only when Python
 * first imports one (./engine_site.mjs `installEngineSite`). Mark `extensions` says when.
 * @param {{ loadPyodide: any, createModule: (settings: any) => Promise<any>, indexURL: string,
 *           stdlib: string, site: Promise<import("./engine_site.mjs").EngineSite>,
 *           early: import("./prefetch.mjs").Prefetched, mark: (name: string) => void }} interpreter
 * @param {{ snapshot?: OpenedSnapshot, lazyExtensions?: boolean }} [how]
 * @returns {Promise<any>} the Pyodide API
 */
function loadInterpreter({ loadPyodide, createModule, indexURL, stdlib, site, early, mark }, { snapshot, lazyExtensions = false } = {}) {
  const loading = withPrefetched(early, () => loadPyodide({
    indexURL,
    lockFileURL: bootFileUrl(indexURL, "pyodide-lock.json"),
    stdLibURL: bootFileUrl(indexURL, stdlib), // the core (the rest comes on first import); as prefetched
    ...(snapshot ? { _loadSnapshot: snapshot.then((s) => s.memory) } : {}),
    /** @param {any} settings */
    createPyodideModule: async (settings) => {
      settings.preRun.push((/** @type {any} */ Module) => {
        mark("instantiated");
        Module.addRunDependency("durably-engine-site");
        Promise.all([site, snapshot]).then(([files, restore]) => {
          installEngineSite(Module, files, { eager: !lazyExtensions, loaded: () => mark("extensions") });
          mark("installed");
          // The wasm exports its memory: Pyodide cannot size it for the snapshot, whose heap
          // may have grown (the job module's imports): grow it to the snapshot's size.
          if (restore && restore.memory.length > Module.HEAP8.length) Module.growMemory(restore.memory.length);
          Module.removeRunDependency("durably-engine-site");
        });
      });
      const Module = await createModule(settings);
      mark("module");
      if (snapshot) restoreDynlibHandles(Module, (await snapshot).header);
      return Module;
    },
  }));
  // A failed tar fetch leaves the run dependency above pending: fail with its error.
  return Promise.race([loading, site.then(() => new Promise(() => {}))]);
}

/**
 * After a normal boot: put the finder of the stdlib's rest in place, import the engine, then
 * the page's job module (its errors are startEngine's to report).
 * @param {any} pyodide @param {string} indexURL @param {EngineManifest} manifest
 * @param {{ url: string, source: string } | null} jobs
 */
function importEngine(pyodide, indexURL, manifest, jobs) {
  const rest = pyodide.pyimport("durably_web.browser.stdlib");
  rest.install(bootFileUrl(indexURL, manifest.stdlib_rest.file), JSON.stringify(manifest.stdlib_rest.modules)).destroy();
  rest.destroy();
  for (const name of manifest.imports) pyodide.pyimport(name).destroy();
  if (!jobs) return;
  const importJobs = pyodide.pyimport("durably_web.browser.boot").import_jobs;
  try {
    importJobs(writeJobModule(pyodide, jobs.source, jobs.url), JOB_DIR).destroy();
  } catch {
    // startEngine writes and imports it again, and reports the error
  } finally {
    importJobs.destroy();
  }
}
