// @ts-check
/**
 * Start a PyScript page that uses `durably_web.client`, offline, under MicroPython
 * (default: the page is interactive in ~1 s) or Pyodide.
 *
 *     <script type="module">
 *       import { startPyScript } from "./_durably/client/pyscript.mjs";
 *       startPyScript({ src: "./app.py" });   // or { src, interpreter: "py" }
 *     </script>
 *
 * It adds the `<script type="mpy|py">` tag with a config whose `interpreter` is the vendored
 * one (absolute URL: PyScript would otherwise load one from a CDN) and whose `files` put the
 * page-side package (`_durably/vendor/py/durably_web/`, written by `durably-web build`) on the
 * interpreter's path, then loads PyScript itself from the site's `_durably/vendor/`. The
 * package's files are listed by the build in `_durably/vendor/py/files.json` (from
 * `PAGE_PACKAGE_FILES` in `durably_web/sitebuild/build.py`, their one home).
 */

const VENDOR = new URL("../vendor/", import.meta.url);

/** The build's list of the page package's files, paths below `_durably/vendor/py/`. */
export const PAGE_FILES = new URL("py/files.json", VENDOR);

/**
 * Read the page package's file list the build wrote (`PAGE_FILES`).
 * @param {typeof fetch} [fetchImpl]
 * @returns {Promise<string[]>} paths below `_durably/vendor/py/` ("durably_web/errors.py", ...)
 */
export async function pageFiles(fetchImpl = fetch) {
  const response = await fetchImpl(PAGE_FILES.href);
  if (!response.ok) {
    throw new Error(`${PAGE_FILES.href}: HTTP ${response.status} (is this a site \`durably-web build\` wrote?)`);
  }
  const files = await response.json();
  if (!Array.isArray(files) || !files.every((path) => typeof path === "string")) {
    throw new Error(`${PAGE_FILES.href}: not a JSON list of paths`);
  }
  return files;
}

/**
 * The PyScript config for a page script.
 * @param {"mpy" | "py"} interpreter
 * @param {string[]} pagePackage the page package's files (`pageFiles()`)
 * @param {Record<string, any>} [extra] more config (packages for Pyodide, more files, ...)
 */
export function pyscriptConfig(interpreter, pagePackage, extra = {}) {
  /** @type {Record<string, string>} */
  const files = {};
  for (const path of pagePackage) {
    files[new URL(`py/${path}`, VENDOR).href] = `./${path}`;
  }
  const runtime = interpreter === "py" ? "pyodide/pyodide.mjs" : "micropython/micropython.mjs";
  return { ...extra, interpreter: new URL(runtime, VENDOR).href, files: { ...files, ...(extra.files ?? {}) } };
}

/**
 * Add the page's Python script and start PyScript.
 * @param {{ src: string, interpreter?: "mpy" | "py", config?: Record<string, any> }} options
 *   src: the page's Python file (relative to the page)
 */
export async function startPyScript({ src, interpreter = "mpy", config = {} }) {
  const script = document.createElement("script");
  script.type = interpreter;
  script.src = src;
  script.setAttribute("config", JSON.stringify(pyscriptConfig(interpreter, await pageFiles(), config)));
  document.body.append(script);
  await import(new URL("pyscript/core.js", VENDOR).href);
}
