// @ts-check
/**
 * The service worker of a built site: after one online visit, the site loads, boots the
 * engine and runs jobs with the server stopped or the browser offline.
 *
 * Loaded by the site's generated `durably-sw.js` (a classic script at the top of the site, so
 * its scope is the whole site), which first sets `self.DURABLY_BUILD`: the sha256 of
 * `_durably/manifest.json`, the list of every file of that build with its sha256.
 *
 * - install: fetch the manifest (revalidated with the server, never a stale HTTP-cache
 *   copy), check that its sha256 is DURABLY_BUILD, then fetch every file it lists but the
 *   ON_DEMAND ones, check each one's sha256 and put it into the cache `durably-site-<build>`
 *   (CACHE_PREFIX). A file of another build (a deploy in progress) or a full quota fails the
 *   install: the partial cache is deleted, the pages are told why (message
 *   `durably:install-failed`), and the previous build keeps serving. So a cache only ever
 *   holds one complete, verified build.
 * - ON_DEMAND files (the wheels and the whole stdlib zip: the engine worker loads its
 *   packages from the engine tar and the core stdlib zip; only Pyodide pages of PyScript,
 *   `packages` and the test runner load these, ~8 MB) are not precached: the first time a
 *   page of this build fetches one, it is fetched, checked against the manifest and cached,
 *   so it is there offline from then on. One that does not match is passed on uncached.
 * - fetch: a GET of this origin for a file of the build or its manifest (which the engine
 *   worker hashes: the build id keys its memory snapshots), a directory meaning its
 *   index.html, the query ignored, is answered from this build's cache, with the header
 *   `X-Durably-Build: <build>` (so the engine worker can tell which build it runs: the key a
 *   later Pyodide memory snapshot needs); anything else goes to the network untouched (APIs,
 *   files added to the site after the build).
 * - activate: delete the caches of other builds (`durably-site-*` only: other caches of the
 *   origin, such as `durably-snapshots` (the engine worker's Pyodide memory snapshots, keyed
 *   by the build id: ./snapshot.mjs), are not this worker's to delete). It never claims open
 *   pages: a page keeps the build it was loaded with (./offline.mjs decides when a waiting
 *   build takes over).
 * - message `durably:activate` (from ./offline.mjs, while this worker waits): activate now
 *   if the asking page is the only window of the site, else answer `durably:busy`.
 * - message `durably:build`: answer `{type: "durably:build", build}`.
 */

/** @type {any} */
const sw = self;
/** @type {string} */
const BUILD = sw.DURABLY_BUILD;
const CACHE_PREFIX = "durably-site-";
const CACHE = `${CACHE_PREFIX}${BUILD}`;
const SCOPE = new URL("./", sw.registration.scope).href; // the site's top, ending with "/"
const MANIFEST = "_durably/manifest.json";
const PARALLEL = 6;
/** Files of a build fetched and cached on first use, not at install (see above). */
const ON_DEMAND = [/\.whl$/, /(^|\/)python_stdlib\.zip$/];
const onDemand = (/** @type {string} */ path) => ON_DEMAND.some((pattern) => pattern.test(path));

/** @param {ArrayBuffer} bytes */
async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Fetch one file of the build and check its content; return a response of exactly those bytes.
 * @param {string} path @param {string} expected
 */
async function verified(path, expected) {
  // "no-cache": the HTTP cache may answer only after the server confirmed its copy (304).
  const response = await fetch(SCOPE + path, { cache: "no-cache", credentials: "same-origin" });
  if (!response.ok) throw new InstallError("fetch_failed", `GET ${path}: HTTP ${response.status}`);
  const bytes = await response.arrayBuffer();
  if ((await sha256(bytes)) !== expected) {
    throw new InstallError("build_changed", `${path} is not the file of build ${BUILD.slice(0, 12)} (a new deploy?)`);
  }
  const type = response.headers.get("Content-Type") ?? "application/octet-stream";
  return new Response(bytes, { headers: { "Content-Type": type, "X-Durably-Build": BUILD } });
}

class InstallError extends Error {
  /** @param {string} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** @param {any} error */
function installError(error) {
  if (error instanceof InstallError) return error;
  const text = String(error?.message ?? error);
  if (error?.name === "QuotaExceededError" || /quota/i.test(text)) {
    return new InstallError("quota_exceeded", `storage quota exceeded while saving the site for offline use: ${text}`);
  }
  return new InstallError("install_failed", text);
}

/** @param {Record<string, unknown>} message */
async function tellPages(message) {
  for (const client of await sw.clients.matchAll({ type: "window", includeUncontrolled: true })) {
    client.postMessage(message);
  }
}

async function precache() {
  const response = await fetch(SCOPE + MANIFEST, { cache: "no-cache", credentials: "same-origin" });
  if (!response.ok) throw new InstallError("fetch_failed", `GET ${MANIFEST}: HTTP ${response.status}`);
  const text = await response.arrayBuffer();
  if ((await sha256(text)) !== BUILD) {
    throw new InstallError("build_changed", `${MANIFEST} is not the one of build ${BUILD.slice(0, 12)} (a new deploy?)`);
  }
  /** @type {Record<string, {size: number, sha256: string}>} */
  const manifest = JSON.parse(new TextDecoder().decode(text));
  const cache = await caches.open(CACHE);
  const paths = Object.keys(manifest).filter((path) => !onDemand(path));
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const path = paths[next++];
      await cache.put(SCOPE + path, await verified(path, manifest[path].sha256));
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  await cache.put(SCOPE + MANIFEST, new Response(text, { headers: { "Content-Type": "application/json", "X-Durably-Build": BUILD } }));
}

sw.addEventListener("install", (/** @type {any} */ event) => {
  event.waitUntil(
    precache().catch(async (error) => {
      const failure = installError(error);
      await caches.delete(CACHE); // never keep half a build
      await tellPages({ type: "durably:install-failed", build: BUILD, code: failure.code, message: failure.message });
      throw failure;
    }),
  );
});

sw.addEventListener("activate", (/** @type {any} */ event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(CACHE_PREFIX) && name !== CACHE) await caches.delete(name);
      }
    })(),
  );
});

sw.addEventListener("fetch", (/** @type {any} */ event) => {
  const request = event.request;
  if (request.method !== "GET" || !request.url.startsWith(SCOPE)) return;
  const url = new URL(request.url);
  let path = decodeURIComponent(url.pathname).slice(new URL(SCOPE).pathname.length);
  if (path === "" || path.endsWith("/")) path += "index.html";
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      const hit = await cache.match(SCOPE + path);
      if (hit) return hit;
      if (onDemand(path)) {
        const saved = await saveOnDemand(cache, path).catch(() => null);
        if (saved) return saved;
      }
      return fetch(request);
    })(),
  );
});

/** @type {Promise<Record<string, {size: number, sha256: string}> | null> | null} */
let cachedManifest = null;

/**
 * Fetch an ON_DEMAND file of this build, check it against the manifest, cache it; return a
 * response of it, or null if it is not one of this build (a new deploy): the page then gets
 * the network's answer, uncached.
 * @param {Cache} cache @param {string} path
 */
async function saveOnDemand(cache, path) {
  cachedManifest ??= cache
    .match(SCOPE + MANIFEST)
    .then((response) => (response ? response.json() : null))
    .catch(() => null);
  const entry = (await cachedManifest)?.[path];
  if (!entry) return null;
  const response = await verified(path, entry.sha256).catch(() => null);
  if (!response) return null;
  await cache.put(SCOPE + path, response.clone());
  return response;
}

sw.addEventListener("message", (/** @type {any} */ event) => {
  const type = event.data?.type;
  const reply = (/** @type {Record<string, unknown>} */ message) => (event.ports?.[0] ?? event.source)?.postMessage(message);
  if (type === "durably:build") {
    reply({ type: "durably:build", build: BUILD });
  } else if (type === "durably:activate") {
    event.waitUntil(
      (async () => {
        const windows = await sw.clients.matchAll({ type: "window", includeUncontrolled: true });
        if (windows.length <= 1) await sw.skipWaiting();
        else reply({ type: "durably:busy", build: BUILD, windows: windows.length });
      })(),
    );
  }
});
