// @ts-check
/**
 * What ./stuck-worker.mjs changes before the product's engine worker runs, read from the
 * worker's URL (`self.location`):
 *
 * - `vfs=N`: the Nth `createSyncAccessHandle()` request of the first such worker of the
 *   profile never settles, as Chromium sometimes leaves one (bench/BOOT-NOTES.md): the
 *   handles the pool install got before it stay held by that worker. The next workers (a
 *   marker in Cache Storage) boot normally.
 * - `snapshot=stuck`: the snapshot worker this engine worker starts after `ready` is
 *   ./stuck-snapshot-worker.mjs, which never answers (and holds a Web Lock while it lives).
 * - `snapshotTimeout=MS`: `TIMEOUTS.snapshotWorker` for this worker (runtime/timeouts.mjs).
 */
import { TIMEOUTS } from "../_durably/runtime/timeouts.mjs";

const params = new URL(self.location.href).searchParams;
if (params.has("snapshotTimeout")) TIMEOUTS.snapshotWorker = Number(params.get("snapshotTimeout"));

const stallAt = Number(params.get("vfs") ?? 0);
if (stallAt) {
  const MARKER = new URL("./stuck-worker-marker", import.meta.url).href;
  // Only the first worker of the profile gets stuck: the page's restart must boot normally.
  const first = caches.open("durably-test-stuck").then(async (cache) => {
    if (await cache.match(MARKER)) return false;
    await cache.put(MARKER, new Response("stuck once"));
    return true;
  });
  const proto = /** @type {any} */ (FileSystemFileHandle.prototype);
  const original = proto.createSyncAccessHandle;
  let calls = 0;
  proto.createSyncAccessHandle = function (/** @type {any[]} */ ...args) {
    const call = ++calls;
    return first.then((stuck) => (stuck && call === stallAt ? new Promise(() => {}) : original.apply(this, args)));
  };
}

if (params.get("snapshot") === "stuck") {
  const Real = Worker;
  const stuck = new URL("./stuck-snapshot-worker.mjs", import.meta.url);
  /** @type {any} */ (globalThis).Worker = class extends Real {
    /** @param {string | URL} url @param {WorkerOptions} [options] */
    constructor(url, options) {
      super(options?.name === "durably_web snapshot" ? stuck : url, options);
    }
  };
}
