// @ts-check
/**
 * The engine's imports in Pyodide under Node, as a cold boot of the browser worker does them:
 * the built site's engine tar written into site-packages (as runtime/engine_site.mjs does),
 * then `import durably_web.browser.boot` (engine.json's imports), timed, with and without the
 * build's bytecode for the dataclass methods (durably_web/_dataclass_code.py: "without"
 * deletes its file before the import). Each run is a fresh Node process (a fresh interpreter
 * and wasm JIT, as in a cold boot); the two kinds alternate, and the medians are printed.
 *
 *   node bench/pyodide_imports.mjs [--runs 5] [--site .build/site]
 *
 * CPU is the Node process's (every thread: the wasm compile threads too), wall the import's.
 * Used for bench/BOOT-NOTES.md ("The engine's imports without compiling dataclass code").
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "5" },
    site: { type: "string", default: path.join(ROOT, ".build/site") },
    child: { type: "string" },
  },
});
const pyodideDir = path.join(path.resolve(values.site), "_durably/vendor/pyodide/");

if (values.child) {
  const { untar } = await import(pathToFileURL(path.join(ROOT, "src/durably_web/web/runtime/engine_site.mjs")).href);
  const { loadPyodide } = await import(pathToFileURL(pyodideDir + "pyodide.mjs").href);
  const manifest = JSON.parse(readFileSync(pyodideDir + "engine.json", "utf8"));
  const pyodide = await loadPyodide({ indexURL: pyodideDir, stdLibURL: pyodideDir + manifest.stdlib });
  const root = pyodide._module.API.sitePackages;
  for (const [name, bytes] of untar(new Uint8Array(readFileSync(pyodideDir + manifest.site)))) {
    if (values.child === "without" && name.endsWith("/__dataclass_code__.marshal")) continue;
    const file = `${root}/${name}`;
    pyodide.FS.mkdirTree(file.slice(0, file.lastIndexOf("/")));
    pyodide.FS.writeFile(file, bytes);
  }
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (const name of manifest.imports) pyodide.pyimport(name).destroy();
  const wall = performance.now() - started;
  const used = process.cpuUsage(cpu);
  process.stdout.write(JSON.stringify({ wall, cpu: (used.user + used.system) / 1000 }));
} else {
  /** @type {Record<string, { wall: number, cpu: number }[]>} */
  const results = { with: [], without: [] };
  const me = fileURLToPath(import.meta.url);
  for (let run = 0; run < Number(values.runs); run++) {
    for (const kind of run % 2 ? ["without", "with"] : ["with", "without"]) {
      const out = execFileSync(process.execPath, [me, "--site", values.site, "--child", kind], { encoding: "utf8" });
      results[kind].push(JSON.parse(out));
    }
  }
  const median = (/** @type {number[]} */ xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
  for (const [kind, runs] of Object.entries(results)) {
    const wall = runs.map((r) => Math.round(r.wall));
    const cpu = runs.map((r) => Math.round(r.cpu));
    console.log(`${kind} dataclass code: import ${median([...wall])} ms wall (${wall.join(", ")}), ${median([...cpu])} ms CPU (${cpu.join(", ")})`);
  }
}
