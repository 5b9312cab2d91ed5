// @ts-check
/**
 * Compile the stdlib zip and wheels to .pyc with Pyodide's own CPython.
 *
 * Usage: node sitebuild/tools/precompile.mjs <pyodide-dir> <jobs.json> [<stdlib.zip>]
 *   jobs.json: [{"kind": "stdlib" | "wheel", "src": "/abs/in.zip", "dst": "/abs/out.zip"}, ...]
 * Prints a JSON report on stdout. The work is done by pyc_compile.py (beside this
 * file) inside Pyodide; host directories are mounted with NODEFS.
 * Run by `durably-web build` (src/durably_web/sitebuild/precompile.py), which caches
 * each output by the hash of its input and of these two files.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const [pyodideDir, jobsFile, stdLib] = process.argv.slice(2);
if (!pyodideDir || !jobsFile) {
  console.error("usage: node precompile.mjs <pyodide-dir> <jobs.json> [<stdlib.zip>]");
  process.exit(2);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const indexURL = path.resolve(pyodideDir) + "/";
const { loadPyodide } = await import(pathToFileURL(indexURL + "pyodide.mjs").href);

/** @type {{kind: string, src: string, dst: string}[]} */
const jobs = JSON.parse(await readFile(jobsFile, "utf8"));

// <stdlib.zip>: an already precompiled stdlib, which boots ~2 s faster than the stock one
// (.py only); the compiled output does not depend on which one runs the compiler.
// lockFileURL is local so nothing can fall back to the CDN.
const pyodide = await loadPyodide({
  indexURL,
  ...(stdLib ? { stdLibURL: path.resolve(stdLib) } : {}),
  lockFileURL: indexURL + "pyodide-lock.json",
  stdout: (/** @type {string} */ s) => console.error(s),
  stderr: (/** @type {string} */ s) => console.error(s),
});

// Mount each host directory once, and rewrite job paths into the mounts.
/** @type {Map<string, string>} */
const mounts = new Map();
const toWasmPath = (/** @type {string} */ hostPath) => {
  const dir = path.dirname(path.resolve(hostPath));
  let mount = mounts.get(dir);
  if (!mount) {
    mount = `/mnt/host${mounts.size}`;
    pyodide.FS.mkdirTree(mount);
    pyodide.mountNodeFS(mount, dir);
    mounts.set(dir, mount);
  }
  return `${mount}/${path.basename(hostPath)}`;
};
const wasmJobs = jobs.map((job) => ({ ...job, src: toWasmPath(job.src), dst: toWasmPath(job.dst) }));

const module = pyodide.runPython(
  `import types; m = types.ModuleType("pyc_compile"); exec(compile(src, "pyc_compile.py", "exec"), m.__dict__); m`,
  { globals: pyodide.toPy({ src: await readFile(path.join(here, "pyc_compile.py"), "utf8") }) },
);
const report = JSON.parse(module.main(JSON.stringify(wasmJobs)));
module.destroy();
process.stdout.write(JSON.stringify(report, null, 2) + "\n");
