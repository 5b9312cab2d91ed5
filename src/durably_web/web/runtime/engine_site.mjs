// @ts-check
/**
 * The engine's Python packages, as the build bundles them beside pyodide.mjs
 * (src/durably_web/sitebuild/engine_site.py): `engine.json` and one tar of every file the
 * engine worker's packages install (pydantic, pydantic_core, durably_web's browser part, ...).
 *
 * The worker does not use Pyodide's loadPackage for them (a request and a Python-side unzip
 * per wheel, after the interpreter started): it fetches the tar while everything else loads
 * and, from an Emscripten preRun hook (before Python starts), writes its files into
 * site-packages and loads its WebAssembly extension modules (pydantic_core). Loaded before the
 * C runtime initialises, an extension lands at the same memory and table addresses at every
 * boot: that is what lets a memory snapshot taken after the imports be restored
 * (./snapshot.mjs). loadPackage would load it later, at an address that depends on the heap.
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

const DECODER = new TextDecoder();

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
  return readEngineSite(await fetchOk(bootFileUrl(indexURL, manifest.site)), manifest);
}

/**
 * Read the engine tar from `response` and compile its extension modules while it arrives:
 * each one (engine.json `dynlibs`) is streamed into `WebAssembly.compileStreaming` as soon as
 * its bytes come (pydantic_core's is 4.7 MB in the middle of the tar), so its compile
 * overlaps the rest of the download and its decoding instead of following them.
 * @param {Response} response the tar, status OK
 * @param {EngineManifest} manifest
 * @returns {Promise<EngineSite>}
 */
export async function readEngineSite(response, manifest) {
  /** @type {Map<string, Promise<WebAssembly.Module>>} */
  const compiling = new Map();
  /** @type {{ from: number, to: number, into: ReadableStreamDefaultController<Uint8Array> } | null} */
  let streaming = null;
  let tar = new Uint8Array(Math.max(1 << 20, Number(response.headers.get("Content-Length")) || 0));
  let length = 0;
  let next = 0; // where the next tar header starts
  /** Pass the dynlib being streamed what arrived of it; find the next dynlib's header. */
  const scan = () => {
    for (;;) {
      if (streaming) {
        const end = Math.min(length, streaming.to);
        if (end > streaming.from) streaming.into.enqueue(tar.slice(streaming.from, end));
        streaming.from = end;
        if (end < streaming.to) return;
        streaming.into.close();
        streaming = null;
      }
      if (next + 512 > length || tar[next] === 0) return;
      const { name, size } = tarHeader(tar.subarray(next, next + 512));
      const from = next + 512;
      next = from + Math.ceil(size / 512) * 512;
      if (manifest.dynlibs.includes(name) && !compiling.has(name)) {
        /** @type {ReadableStreamDefaultController<Uint8Array>} */
        let into = /** @type {any} */ (null);
        const body = new ReadableStream({ start: (controller) => void (into = controller) });
        compiling.set(name, WebAssembly.compileStreaming(new Response(body, { headers: { "Content-Type": "application/wasm" } })));
        compiling.get(name)?.catch(() => {}); // awaited below, or the tar's own error wins
        streaming = { from, to: from + size, into };
      }
    }
  };
  const reader = /** @type {ReadableStream<Uint8Array>} */ (response.body).getReader();
  try {
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      if (length + chunk.value.length > tar.length) {
        const grown = new Uint8Array(Math.max(tar.length * 2, length + chunk.value.length));
        grown.set(tar.subarray(0, length));
        tar = grown;
      }
      tar.set(chunk.value, length);
      length += chunk.value.length;
      scan();
    }
  } catch (error) {
    /** @type {any} */ (streaming)?.into.error(error);
    throw error;
  }
  /** @type {any} */ (streaming)?.into.error(new Error(`${manifest.site} is truncated`));
  // The files are views into the tar, kept by the file system: no spare capacity with them.
  const files = untar(length < tar.length ? tar.slice(0, length) : tar); // throws on a truncated tar
  const byName = new Map(files);
  const dynlibs = await Promise.all(
    manifest.dynlibs.map((name) => {
      if (!byName.has(name)) throw new Error(`${manifest.site} has no ${name} (engine.json names it)`);
      return /** @type {Promise<WebAssembly.Module>} */ (compiling.get(name));
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
  for (let at = 0; at + 512 <= bytes.length; ) {
    if (bytes[at] === 0) break; // the end-of-archive blocks
    const { name, size, type } = tarHeader(bytes.subarray(at, at + 512));
    if (at + 512 + size > bytes.length) throw new Error(`truncated tar entry ${name}`);
    if (type === "0" || type === "") files.push([name, bytes.subarray(at + 512, at + 512 + size)]);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

/**
 * One ustar header block: the member's path, size and type flag.
 * @param {Uint8Array} header 512 bytes
 * @returns {{ name: string, size: number, type: string }}
 */
function tarHeader(header) {
  const field = (/** @type {number} */ offset, /** @type {number} */ length) => {
    const text = DECODER.decode(header.subarray(offset, offset + length));
    const end = text.indexOf("\0");
    return end < 0 ? text : text.slice(0, end);
  };
  const prefix = field(345, 155);
  const name = (prefix ? `${prefix}/` : "") + field(0, 100);
  const size = parseInt(field(124, 12).trim() || "0", 8);
  if (Number.isNaN(size)) throw new Error(`truncated tar entry ${name}`);
  return { name, size, type: field(156, 1) };
}

/**
 * Write the engine's files into site-packages and load its extension modules: call from a
 * preRun hook, i.e. before the C runtime and Python start. The same calls in the same order
 * at every boot give every extension the same memory base and table base.
 * @param {any} Module the Emscripten module
 * @param {EngineSite} site
 */
export function installEngineSite(Module, site) {
  const root = Module.API.sitePackages; // set by Pyodide's own preRun hook, which runs first
  for (const [name, bytes] of site.files) {
    const path = `${root}/${name}`;
    Module.FS.mkdirTree(path.slice(0, path.lastIndexOf("/")));
    Module.FS.writeFile(path, bytes, { canOwn: true });
  }
  site.manifest.dynlibs.forEach((name, i) => {
    // What Emscripten's dlopen would do, minus the heap allocation: before the runtime starts,
    // the module's memory is taken from the heap base, the same at every boot. Python's later
    // dlopen of the same path finds it loaded and only adds a handle.
    const path = `${root}/${name}`;
    const dso = Module.newDSO(path, undefined, "loading");
    dso.refcount = Infinity;
    dso.global = false;
    dso.exports = Module.loadWebAssemblyModule(site.dynlibs[i], { loadAsync: false, nodelete: true }, path, {});
  });
}
