// @ts-check
/**
 * Pyodide memory snapshots of the engine worker's interpreter (Pyodide's experimental
 * `makeMemorySnapshot` / `_loadSnapshot`), kept in Cache Storage.
 *
 * After a normal boot of the engine worker is ready, a snapshot worker (./snapshot_worker.mjs)
 * boots the same files, imports the engine (engine.json `imports`) and the page's job module
 * and, before anything else happens in Python, copies the wasm memory; the engine worker
 * stores it. The next boot restores it instead of starting CPython and importing
 * (./boot.mjs): the job module's top level does not run again. Rules, from
 * Pyodide's snapshot.ts and measurements (bench/BOOT-NOTES.md):
 *
 * - Python must hold no JS object but the ones Pyodide expects, so the snapshot is taken
 *   before the SQLite bridge is registered and the engine starts. Pyodide checks its own
 *   table entries; the 7th is `pyodide.loadedPackages`, which it expects empty ("Unexpected
 *   hiwire entry at index 6" otherwise): it is emptied for the copy, and its names are kept in
 *   our header and put back after a restore.
 * - Extension modules must be at the same addresses: ./engine_site.mjs loads them before
 *   the runtime starts. Python's dlopen handles are JS-side state: kept in our header.
 * - A snapshot is only valid for the same bytes (Pyodide's build, the stdlib zip, the engine
 *   tar; the job module) and the same JS engine: one made under Node fails in Chromium
 *   ("function signature mismatch"). The cache key holds the build id (the sha256 of the
 *   site's manifest of content hashes), the vendor URL, the user agent and the job module's
 *   URL and sha256.
 *
 * Container: "DWSNAP1\n", a uint32 (little-endian) header length, the header (JSON), zero
 * padding to a multiple of 16, then Pyodide's snapshot.
 */

const MAGIC = new TextEncoder().encode("DWSNAP1\n");
/** The Cache Storage cache of snapshots (not `durably-site-*`: the service worker's). */
export const SNAPSHOT_CACHE = "durably-snapshots";

/**
 * @typedef {{ key: string, loadedPackages: Record<string, string>, handles: [number, string][] }} SnapshotHeader
 * @typedef {{ find(key: string): Promise<Blob | null>, save(key: string, bytes: Uint8Array): Promise<void>,
 *             remove(key: string): Promise<void> }} SnapshotStore
 *   find: the stored container under `key` (not read yet: a boot starts Pyodide meanwhile).
 */

/**
 * The cache key of a snapshot made from this build (at this URL: Python keeps the URLs it was
 * booted with), with this job module, in this browser.
 * @param {string} build the build id: the sha256 of the site's `_durably/manifest.json`, which
 *   lists every file of the build with its sha256 (Pyodide, the stdlib, the engine tar, ...)
 * @param {string} indexURL
 * @param {{ url: string, source: string } | null} jobs the page's job module, when imported
 * @returns {Promise<string>}
 */
export async function snapshotKey(build, indexURL, jobs) {
  let key = `${build} ${indexURL} ${globalThis.navigator?.userAgent ?? "unknown"}`;
  if (jobs) key += ` ${jobs.url} ${await sha256Hex(new TextEncoder().encode(jobs.source))}`;
  return key;
}

/**
 * The sha256 of `bytes`, in hex.
 * @param {BufferSource} bytes
 */
export async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Snapshots in Cache Storage (one per origin: saving one deletes the others), or null where
 * the browser has no Cache Storage (not a secure context).
 * @param {string} scope an absolute URL the cache entries are filed under
 * @returns {SnapshotStore | null}
 */
export function cacheStore(scope) {
  if (!globalThis.caches) return null;
  const request = (/** @type {string} */ key) => new Request(`${scope}?snapshot=${encodeURIComponent(key)}`);
  return {
    async find(key) {
      const response = await (await caches.open(SNAPSHOT_CACHE)).match(request(key));
      return response ? response.blob() : null;
    },
    async save(key, bytes) {
      const cache = await caches.open(SNAPSHOT_CACHE);
      const current = request(key);
      await cache.put(current, new Response(/** @type {BlobPart} */ (bytes)));
      for (const old of await cache.keys()) if (old.url !== current.url) await cache.delete(old);
    },
    async remove(key) {
      await (await caches.open(SNAPSHOT_CACHE)).delete(request(key));
    },
  };
}

/**
 * Copy the interpreter's memory into a snapshot container. Call right after the imports,
 * before Python holds any JS object (no registerJsModule, no proxies kept).
 * @param {any} pyodide @param {string} key
 * @returns {Uint8Array}
 */
export function takeSnapshot(pyodide, key) {
  const api = pyodide._api;
  const ldso = pyodide._module.LDSO;
  /** @type {[number, string][]} */
  const handles = Object.entries(ldso.loadedLibsByHandle)
    .filter(([handle]) => Number(handle) !== 0) // 0 is the main module
    .map(([handle, dso]) => [Number(handle), /** @type {any} */ (dso).name]);
  const loadedPackages = { ...pyodide.loadedPackages };
  for (const name of Object.keys(loadedPackages)) delete pyodide.loadedPackages[name];
  // Pyodide only allows a snapshot when booted with `_makeSnapshot`, which also wraps every JS
  // global Python reaches in a recording Proxy for the rest of the worker's life (and breaks
  // `instanceof` through it). Python holds no JS object here, so the flag is set for the copy only.
  const flag = api.config._makeSnapshot;
  api.config._makeSnapshot = true;
  let memory;
  try {
    memory = pyodide.makeMemorySnapshot();
  } finally {
    api.config._makeSnapshot = flag;
    Object.assign(pyodide.loadedPackages, loadedPackages);
  }
  /** @type {SnapshotHeader} */
  const header = { key, loadedPackages, handles };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const offset = Math.ceil((MAGIC.length + 4 + json.length) / 16) * 16;
  const out = new Uint8Array(offset + memory.length);
  out.set(MAGIC);
  new DataView(out.buffer).setUint32(MAGIC.length, json.length, true);
  out.set(json, MAGIC.length + 4);
  out.set(memory, offset);
  return out;
}

/**
 * Split a container into its header and Pyodide's snapshot; throw if it is not one made
 * under `key`.
 * @param {Uint8Array} bytes @param {string} key
 * @returns {{ header: SnapshotHeader, memory: Uint8Array }}
 */
export function openSnapshot(bytes, key) {
  if (bytes.length < MAGIC.length + 4 || MAGIC.some((byte, i) => bytes[i] !== byte)) {
    throw new Error("not a durably_web snapshot");
  }
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(MAGIC.length, true);
  const header = /** @type {SnapshotHeader} */ (
    JSON.parse(new TextDecoder().decode(bytes.subarray(MAGIC.length + 4, MAGIC.length + 4 + length)))
  );
  if (header.key !== key) throw new Error("the snapshot was made from other files or another browser");
  const offset = Math.ceil((MAGIC.length + 4 + length) / 16) * 16;
  return { header, memory: bytes.subarray(offset) };
}

/**
 * Put back the JS-side state a snapshot does not hold: Python's dlopen handles (before
 * Pyodide finishes its own restore) — call on the Emscripten module, before loadPyodide's
 * bootstrap restores the memory.
 * @param {any} Module @param {SnapshotHeader} header
 */
export function restoreDynlibHandles(Module, header) {
  const restore = Module.API.restoreSnapshot;
  Module.API.restoreSnapshot = (/** @type {Uint8Array} */ memory) => {
    const config = restore(memory);
    for (const [handle, name] of header.handles) {
      const dso = Module.LDSO.loadedLibsByName[name];
      if (!dso) throw new Error(`the snapshot's ${name} is not loaded`);
      Module.LDSO.loadedLibsByHandle[handle] = dso;
    }
    return config;
  };
}
