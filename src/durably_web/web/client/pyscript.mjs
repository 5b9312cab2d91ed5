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
 * interpreter's path, then loads PyScript itself from the site's `_durably/vendor/`.
 */

/** The page-side package, as `durably-web build` serves it (PAGE_PACKAGE_FILES + __init__). */
export const PAGE_PACKAGE_FILES = [
  "__init__.py",
  "errors.py",
  "json_value.py",
  "client/__init__.py",
  "client/dispatch.py",
  "client/jobs.py",
  "client/page.py",
  "client/page_client.py",
  "client/values.py",
  "client/live/__init__.py",
  "client/live/dom.py",
  "client/live/hub.py",
  "client/live/job_view.py",
  "client/live/log_view.py",
  "client/live/observable.py",
  "client/live/run_actions.py",
  "client/live/run_list.py",
  "client/live/run_view.py",
  "client/live/status.py",
  "protocol/__init__.py",
  "protocol/wire.py",
];

const VENDOR = new URL("../vendor/", import.meta.url);

/**
 * The PyScript config for a page script.
 * @param {"mpy" | "py"} interpreter
 * @param {Record<string, any>} [extra] more config (packages for Pyodide, more files, ...)
 */
export function pyscriptConfig(interpreter, extra = {}) {
  /** @type {Record<string, string>} */
  const files = {};
  for (const path of PAGE_PACKAGE_FILES) {
    files[new URL(`py/durably_web/${path}`, VENDOR).href] = `./durably_web/${path}`;
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
  script.setAttribute("config", JSON.stringify(pyscriptConfig(interpreter, config)));
  document.body.append(script);
  await import(new URL("pyscript/core.js", VENDOR).href);
}
