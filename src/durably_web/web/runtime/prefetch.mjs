// @ts-check
/**
 * Start Pyodide's two big downloads at the worker's start and hand them to loadPyodide later.
 *
 * The engine worker opens its OPFS VFS before it loads Pyodide (./worker.mjs says why), and
 * loadPyodide only then fetches `pyodide.asm.wasm` and the stdlib zip and compiles the wasm:
 * ~0.3-0.5 s of a cold load spent after the VFS is open. Here both are fetched at once, and
 * the wasm compiled meanwhile (`WebAssembly.compileStreaming`: compiled as it arrives, on
 * background threads; the browser's code cache makes a warm compile cheap). Compiling is not
 * instantiating: no memory is made and nothing runs until loadPyodide.
 *
 * Pyodide 314 has no option to take a compiled module or a fetched stdlib, so while loadPyodide
 * runs, {@link withPrefetched} answers the worker's `fetch` of those two URLs with the early
 * bytes, and `WebAssembly.instantiateStreaming` of the wasm's with an instance of the
 * compiled module (with the imports Pyodide passes). Any other request goes through
 * untouched, and both functions are put back when loadPyodide settles. If the early fetch or
 * compile failed, that file is not replaced: Pyodide fetches (and compiles) it as without
 * this module, and reports its own error. The early fetch asks for the wasm's versioned URL
 * (./engine_site.mjs `bootFileUrl`); Pyodide asks for the plain one, which is what is answered.
 */
import { bootFileUrl } from "./engine_site.mjs";

/**
 * @typedef {{ wasmUrl: string, compiled: Promise<WebAssembly.Module | null>,
 *             stdlib: Promise<{ url: string, bytes: ArrayBuffer } | null> }} Prefetched
 *   compiled: the wasm, compiled (null: that failed); stdlib: the stdlib zip's URL and bytes
 *   (null: the fetch failed)
 */

/**
 * Fetch and compile Pyodide's wasm now; fetch the stdlib zip as soon as its URL is known.
 * @param {string} indexURL absolute URL of the directory of pyodide.mjs, ending in "/"
 * @param {Promise<string>} stdlibUrl the stdlib zip loadPyodide will be given (`stdLibURL`)
 * @returns {Prefetched}
 */
export function prefetch(indexURL, stdlibUrl) {
  const compiled = WebAssembly.compileStreaming(fetch(bootFileUrl(indexURL, "pyodide.asm.wasm"))).catch((error) => {
    console.warn("durably_web: cannot compile pyodide.asm.wasm early (Pyodide will):", error);
    return null;
  });
  const stdlib = stdlibUrl
    .then(async (url) => {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
      return { url, bytes: await response.arrayBuffer() };
    })
    .catch(() => null); // loadPyodide fetches it again and reports the error
  return { wasmUrl: pyodideWasm(indexURL), compiled, stdlib };
}

/**
 * Files fetched before, as {@link prefetch} gives them (a snapshot worker gets them from the
 * engine worker: ./boot.mjs `makeSnapshot`).
 * @param {string} indexURL absolute URL of the directory of pyodide.mjs, ending in "/"
 * @param {WebAssembly.Module | null} compiled Pyodide's wasm, compiled (null: Pyodide fetches it)
 * @param {{ url: string, bytes: ArrayBuffer } | null} stdlib the stdlib zip (null: Pyodide fetches it)
 * @returns {Prefetched}
 */
export function prefetched(indexURL, compiled, stdlib) {
  return { wasmUrl: pyodideWasm(indexURL), compiled: Promise.resolve(compiled), stdlib: Promise.resolve(stdlib) };
}

/** The URL Pyodide fetches its wasm from. @param {string} indexURL */
const pyodideWasm = (indexURL) => `${indexURL}pyodide.asm.wasm`;

/**
 * Run `load` (a loadPyodide call) with the prefetched files answering its requests.
 * @template T
 * @param {Prefetched} prefetched
 * @param {() => Promise<T>} load
 * @returns {Promise<T>}
 */
export async function withPrefetched({ wasmUrl, compiled, stdlib }, load) {
  const module = await compiled;
  const early = await stdlib;
  const realFetch = globalThis.fetch;
  const realInstantiate = WebAssembly.instantiateStreaming;
  /** @type {WeakSet<Response>} */
  const standIns = new WeakSet();
  globalThis.fetch = (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    if (module && url === wasmUrl) {
      const standIn = new Response(null, { headers: { "Content-Type": "application/wasm" } });
      standIns.add(standIn);
      return Promise.resolve(standIn);
    }
    // A copy: a second boot (after a snapshot failed to restore) needs the bytes again.
    if (early && url === early.url) return Promise.resolve(new Response(early.bytes.slice(0)));
    return realFetch.call(globalThis, input, init);
  };
  WebAssembly.instantiateStreaming = async (source, imports) => {
    const response = await source;
    if (module && standIns.has(response)) {
      return { module, instance: await WebAssembly.instantiate(module, imports) };
    }
    return realInstantiate.call(WebAssembly, response, imports);
  };
  try {
    return await load();
  } finally {
    globalThis.fetch = realFetch;
    WebAssembly.instantiateStreaming = realInstantiate;
  }
}
