// @ts-check
/**
 * The engine runtime, host-agnostic: boot Pyodide from the vendored files, hand Python the
 * SQLite bridge, load the page's job module and start the durably_web engine.
 *
 * Used by ./worker.mjs (a browser module worker, database on OPFS) and by the Node test
 * harness (in-memory database). Nothing is fetched from a CDN: every URL is under `vendorUrl`
 * or given by the page. URLs must be absolute (a relative lockFileURL fails in a worker).
 */

/**
 * @typedef {{
 *   jobsUrl?: string | null,
 *   jobsSource?: string | null,
 *   packages?: string[],
 *   database?: string,
 *   durability?: "NORMAL" | "FULL",
 *   options?: Record<string, unknown>,
 *   listen?: string[],
 * }} EngineConfig
 *   listen: event types the page listens for from the start (registered before the engine
 *   reclaims and claims runs, so their events reach the page)
 * @typedef {{ error: string, code: string }} WireError the one error shape of every transport
 */

/** An error with a stable code the page can show and tests can check. */
export class BootError extends Error {
  /** @param {string} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.name = "BootError";
    this.code = code;
  }
}

/**
 * Tell whether an error means the origin's storage quota is used up. Chromium's OPFS access
 * handles say "No space available for this operation"; SQLite says SQLITE_FULL.
 * @param {any} error
 */
export function isQuotaError(error) {
  const text = String(error?.message ?? error);
  return error?.name === "QuotaExceededError" || /quota|no space available|SQLITE_FULL/i.test(text);
}

/**
 * Boot Pyodide with the precompiled stdlib and our lock, loading pydantic and durably_web.
 * @param {string} vendorUrl absolute URL (or path under Node) of the vendored files, ending in "/"
 * @param {(url: string) => Promise<any>} importModule how to import pyodide.mjs
 */
export async function bootPyodide(vendorUrl, importModule = (url) => import(url)) {
  const indexURL = `${vendorUrl}pyodide/`;
  const { loadPyodide } = await importModule(`${indexURL}pyodide.mjs`);
  return loadPyodide({
    indexURL,
    lockFileURL: `${indexURL}pyodide-lock.json`,
    stdLibURL: `${indexURL}python_stdlib.zip`,
    packages: ["pydantic", "durably-web"], // fetched while the interpreter boots
  });
}

/**
 * Install extra packages the page's jobs need: names from our lock, or wheel URLs (micropip).
 * @param {any} pyodide @param {string[]} packages
 */
export async function installPackages(pyodide, packages) {
  const named = packages.filter((p) => !p.endsWith(".whl"));
  const wheels = packages.filter((p) => p.endsWith(".whl"));
  if (named.length) {
    try {
      await pyodide.loadPackage(named, { messageCallback: () => {}, errorCallback: () => {} });
    } catch (error) {
      throw new BootError("package_failed", `cannot load packages ${named.join(", ")}: ${String(error)}`);
    }
    for (const name of named) {
      const known = pyodide.runPython(`import importlib.util as u; bool(u.find_spec(${JSON.stringify(name.replace(/-/g, "_"))}))`);
      if (!known && !pyodide.loadedPackages[name]) {
        throw new BootError("package_failed", `package ${name} is not in the vendored lock; give a wheel URL instead`);
      }
    }
  }
  if (wheels.length) {
    await pyodide.loadPackage("micropip");
    const micropip = pyodide.pyimport("micropip");
    try {
      await micropip.install(wheels, { keep_going: true, deps: false });
    } catch (error) {
      throw new BootError("package_failed", `cannot install ${wheels.join(", ")}: ${String(error)}`);
    } finally {
      micropip.destroy();
    }
  }
}

/**
 * Write the page's job module into the file system (JOB_DIR); return its module name.
 * @param {any} pyodide @param {string} source @param {string} url
 */
export function writeJobModule(pyodide, source, url) {
  const file = new URL(url, "file:///").pathname.split("/").pop() || "jobs.py";
  const name = file.replace(/\.py$/, "");
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new BootError("job_module_failed", `the job module file name ${JSON.stringify(file)} is not a Python module name`);
  }
  pyodide.FS.mkdirTree(JOB_DIR);
  pyodide.FS.writeFile(`${JOB_DIR}/${name}.py`, source);
  return name;
}

/** Where the worker writes the page's job module (put on sys.path by the boot). */
export const JOB_DIR = "/home/pyodide/durably_jobs";

/**
 * Start the engine: returns the Python host (call `host.receive(text)` for each request).
 * @param {{ pyodide: any, bridge: any, post: (text: string) => void, config: EngineConfig,
 *           fetchText?: (url: string) => Promise<string> }} args
 */
export async function startEngine({ pyodide, bridge, post, config, fetchText }) {
  pyodide.registerJsModule("durably_sqlite", bridge);
  if (config.packages?.length) await installPackages(pyodide, config.packages);
  let jobsModule = null;
  if (config.jobsSource != null || config.jobsUrl) {
    let source = config.jobsSource;
    if (source == null) {
      if (!fetchText || !config.jobsUrl) throw new BootError("job_module_failed", "no way to fetch the job module");
      try {
        source = await fetchText(config.jobsUrl);
      } catch (error) {
        throw new BootError("job_module_failed", `cannot load the job module ${config.jobsUrl}: ${String(error)}`);
      }
    }
    jobsModule = writeJobModule(pyodide, source, config.jobsUrl || "jobs.py");
  }
  const boot = pyodide.pyimport("durably_web.browser.boot").boot;
  const options = pyodide.toPy(config.options ?? {});
  const listen = pyodide.toPy(config.listen ?? []);
  try {
    return await boot.callKwargs(bridge, post, {
      database: config.database ?? "/durably.db",
      jobs_module: jobsModule,
      module_dir: JOB_DIR,
      durability: config.durability ?? "NORMAL",
      options,
      listen,
    });
  } catch (error) {
    throw pythonError(error);
  } finally {
    options.destroy();
    listen.destroy();
    boot.destroy();
  }
}

/**
 * Turn a PythonError from the boot into a BootError with a useful message.
 * @param {any} error
 */
function pythonError(error) {
  const text = String(error?.message ?? error);
  const last = text.trim().split("\n").pop() || text;
  if (/the job module .* failed to import|defines no job/.test(last)) return new BootError("job_module_failed", last.replace(/^[\w.]+Error: /, ""));
  if (isQuotaError(error)) return new BootError("quota_exceeded", `storage quota exceeded: ${last}`);
  return new BootError("boot_failed", last);
}

/**
 * The wire form of a boot error: `{error, code}`, the one error shape (errors.py).
 * @param {any} error @returns {WireError}
 */
export function wireError(error) {
  return { error: String(error?.message ?? error), code: error?.code ?? "boot_failed" };
}
