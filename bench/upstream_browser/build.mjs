// @ts-check
/**
 * Bundle the upstream browser benchmark into dist/ (gitignored), as an app would ship it:
 *
 * - dist/page.js (+ chunks): page.mjs with @coji/durably, kysely, zod and SQLocal's client,
 *   ESM with code splitting (SQLocal's client imports sqlite-wasm lazily, for in-page
 *   databases only: that chunk is never loaded here);
 * - dist/sqlocal-worker.js: sqlocal-worker.mjs (SQLocal's own worker entry, plus a global
 *   the driver reads sqlite-wasm's memory size from) with sqlite-wasm, given to SQLocal as
 *   its `processor` (its default `new URL('./worker', import.meta.url)` does not survive
 *   bundling);
 * - dist/sqlite3.wasm and dist/sqlite3-opfs-async-proxy.js, which sqlite-wasm loads from
 *   beside its own module (`new URL(..., import.meta.url)`).
 *
 * Run by bench/run.py's set-up after `npm ci`; `node build.mjs` by hand.
 */
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "dist");
const wasmDir = join(here, "node_modules/@sqlite.org/sqlite-wasm/dist");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const common = /** @type {const} */ ({
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  legalComments: "none",
  logLevel: "warning",
});
await build({ ...common, entryPoints: { page: join(here, "page.mjs") }, outdir: out, splitting: true });
await build({
  ...common,
  entryPoints: { "sqlocal-worker": join(here, "sqlocal-worker.mjs") },
  outdir: out,
});
for (const name of ["sqlite3.wasm", "sqlite3-opfs-async-proxy.js"]) copyFileSync(join(wasmDir, name), join(out, name));
console.log(`bundled into ${out}`);
