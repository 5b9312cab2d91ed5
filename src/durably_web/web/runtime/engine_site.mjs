// @ts-check
/**
 * The engine's Python packages, as the build bundles them beside pyodide.mjs
 * (src/durably_web/sitebuild/engine_site.py): `engine.json` and one tar of every file the
 * engine worker's packages install (pydantic, pydantic_core, durably_web's browser part, ...).
 *
 * The worker does not use Pyodide's loadPackage for them (a request and a Python-side unzip
 * per wheel, after the interpreter started): it fetches the tar while everything else loads
 * and, from an Emscripten preRun hook (before Python starts), writes its files into
 * site-packages and, in a boot whose memory a snapshot copies or restores, loads its
 * WebAssembly extension modules (pydantic_core). Loaded before the C runtime initialises, an
 * extension lands at the same memory and table addresses at every such boot: that is what
 * lets a memory snapshot taken after the imports be restored (./snapshot.mjs). loadPackage
 * would load it later, at an address that depends on the heap. A normal boot loads it only
 * when Python first imports it (most pages reach `ready` without pydantic).
 */
import { BOOT_FILES } from "./boot_files.mjs";

/**
 * @typedef {{ format: number, site: string, dynlibs: string[], imports: string[],
 *             packages: Record<string, string>, stdlib: string,
 *             stdlib_rest: { file: string, modules: string[] } }} EngineManifest
 *   format: ENGINE_FORMAT; site: the tar's file name; dynlibs: the tar's extension modules,
 *   loaded in this order; imports: the modules a boot imports (and a snapshot holds);
 *   packages: distribution name -> version; stdlib: the core stdlib zip (the worker's
 *   stdlib); stdlib_rest: the rest of it and its modules, fetched on first import
 *   (durably_web.browser.stdlib).
 * @typedef {{ manifest: EngineManifest, files: [string, Uint8Array][], dynlibs: WebAssembly.Module[] }} EngineSite
 */

/** The absolute URL of the site's vendored files (`_durably/vendor/`), ending in "/". */
export const VENDOR_URL = new URL("../vendor/", import.meta.url).href;

/** The `format` of engine.json this runtime reads. */
export const ENGINE_FORMAT = 1;

/**
 * The URL of a file beside pyodide.mjs: `<file>?v=<version>` for a boot file the build
 * versioned (./boot_files.mjs; the server answers it immutable, so a warm load reads the
 * browser's copy without a revalidation round trip), else the plain URL.
 * @param {string} indexURL absolute URL of the directory of pyodide.mjs, ending in "/"
 * @param {string} name the file's name there
 */
export function bootFileUrl(indexURL, name) {
  const version = Object.hasOwn(BOOT_FILES, name) ? BOOT_FILES[name] : undefined;
  return version ? `${indexURL}${name}?v=${encodeURIComponent(version)}` : `${indexURL}${name}`;
}

/** @param {string} url */
async function fetchOk(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return response;
}

/**
 * Fetch engine.json.
 * @param {string} indexURL absolute URL of the directory of pyodide.mjs, ending in "/"
 * @returns {Promise<EngineManifest>}
 */
export async function fetchEngineManifest(indexURL) {
  const manifest = /** @type {EngineManifest} */ (await (await fetchOk(bootFileUrl(indexURL, "engine.json"))).json());
  if (manifest.format !== ENGINE_FORMAT) {
    throw new Error(`engine.json has format ${manifest.format}, this runtime reads ${ENGINE_FORMAT}: rebuild the site (durably-web build)`);
  }
  return manifest;
}

/**
 * Fetch the tar, unpack it and compile its extension modules.
 * @param {string} indexURL @param {EngineManifest} manifest
 * @returns {Promise<EngineSite>}
 */
export async function fetchEngineSite(indexURL, manifest) {
  const files = untar(new Uint8Array(await (await fetchOk(bootFileUrl(indexURL, manifest.site))).arrayBuffer()));
  const byName = new Map(files);
  const dynlibs = await Promise.all(
    manifest.dynlibs.map((name) => {
      const bytes = byName.get(name);
      if (!bytes) throw new Error(`${manifest.site} has no ${name} (engine.json names it)`);
      return WebAssembly.compile(/** @type {Uint8Array<ArrayBuffer>} */ (bytes));
    }),
  );
  return { manifest, files, dynlibs };
}

/**
 * The regular files of a ustar archive, as [path, bytes] (views into `bytes`, no copies).
 * @param {Uint8Array} bytes
 * @returns {[string, Uint8Array][]}
 */
export function untar(bytes) {
  /** @type {[string, Uint8Array][]} */
  const files = [];
  const decoder = new TextDecoder();
  for (let at = 0; at + 512 <= bytes.length; ) {
    const header = bytes.subarray(at, at + 512);
    if (header[0] === 0) break; // the end-of-archive blocks
    const field = (/** @type {number} */ offset, /** @type {number} */ length) => {
      const text = decoder.decode(header.subarray(offset, offset + length));
      const end = text.indexOf("\0");
      return end < 0 ? text : text.slice(0, end);
    };
    const prefix = field(345, 155);
    const name = (prefix ? `${prefix}/` : "") + field(0, 100);
    const size = parseInt(field(124, 12).trim() || "0", 8);
    const type = field(156, 1);
    if (Number.isNaN(size) || at + 512 + size > bytes.length) throw new Error(`truncated tar entry ${name}`);
    if (type === "0" || type === "") files.push([name, bytes.subarray(at + 512, at + 512 + size)]);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

/**
 * Write the engine's files into site-packages and make its extension modules loadable: call
 * from a preRun hook, i.e. before the C runtime and Python start.
 *
 * `eager`: load the extensions now, before the runtime starts. The same calls in the same
 * order at every boot give every extension the same memory base and table base: what a boot
 * that takes a memory snapshot and one that restores it need (./snapshot.mjs). Otherwise
 * (a normal boot, whose memory no snapshot copies) an extension is loaded only when Python
 * first imports it (pydantic_core: when a job module imports pydantic, or on the first
 * validation), from its compiled module: its instantiation, data relocations and
 * constructors (~50 ms of a cold boot, bench/BOOT-NOTES.md) are not paid before then.
 * @param {any} Module the Emscripten module
 * @param {EngineSite} site
 * @param {{ eager?: boolean, loaded?: () => void }} [options] loaded: called once the
 *   extensions are loaded (in the hook if eager, else at Python's first dlopen of one)
 */
export function installEngineSite(Module, site, { eager = true, loaded = () => {} } = {}) {
  const root = Module.API.sitePackages; // set by Pyodide's own preRun hook, which runs first
  const made = new Set(); // folders made so far: mkdirTree walks every level of its path
  for (const [name, bytes] of site.files) {
    const path = `${root}/${name}`;
    const folder = path.slice(0, path.lastIndexOf("/"));
    if (!made.has(folder)) {
      Module.FS.mkdirTree(folder);
      made.add(folder);
    }
    Module.FS.writeFile(path, bytes, { canOwn: true });
  }
  const paths = site.manifest.dynlibs.map((name) => `${root}/${name}`);
  if (eager) {
    paths.forEach((path, i) => {
      // What Emscripten's dlopen would do, minus the heap allocation: before the runtime
      // starts, the module's memory is taken from the heap base, the same at every boot.
      // Python's later dlopen of the same path finds it loaded and only adds a handle.
      const dso = Module.newDSO(path, undefined, "loading");
      dso.refcount = Infinity;
      dso.global = false;
      dso.exports = Module.loadWebAssemblyModule(site.dynlibs[i], { loadAsync: false, nodelete: true }, path, {});
    });
    loaded();
    return;
  }
  paths.forEach((path, i) => {
    // Emscripten's dlopen takes a library's exports from `preloadedWasm` when they are there
    // (what Pyodide's package loader fills): a getter instantiates the compiled module at
    // that first lookup, in the heap of the running interpreter, instead of dlopen reading
    // the file back and compiling it again synchronously.
    Object.defineProperty(Module.preloadedWasm, path, {
      configurable: true,
      enumerable: true,
      get() {
        const exports = Module.loadWebAssemblyModule(site.dynlibs[i], { loadAsync: false, nodelete: true }, path, {});
        Object.defineProperty(Module.preloadedWasm, path, { value: exports, configurable: true, enumerable: true });
        if (paths.every((other) => Object.getOwnPropertyDescriptor(Module.preloadedWasm, other)?.get === undefined)) loaded();
        return exports;
      },
    });
  });
}
