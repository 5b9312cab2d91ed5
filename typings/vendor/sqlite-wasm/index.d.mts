// What the runtime uses of the vendored sqlite-wasm (`_durably/vendor/sqlite-wasm/index.mjs`
// of a built site, from npm @sqlite.org/sqlite-wasm; not in this repository). tsconfig's
// `rootDirs` lays typings/ over src/durably_web/web/, so the runtime's
// `../vendor/sqlite-wasm/index.mjs` resolves here. Only the entry point is typed closely: the
// namespace is handed to runtime/opfs.mjs and runtime/sqlite_bridge.mjs, which read their parts.

/** Options of `installOpfsSAHPoolVfs` (sqlite-wasm's opfs-sahpool VFS). */
export interface SAHPoolOptions {
  name?: string;
  directory?: string;
  initialCapacity?: number;
  clearOnInit?: boolean;
  forceReinitIfPreviouslyFailed?: boolean;
  preserveOnInitFailure?: boolean;
}

/** The `sqlite3` namespace `sqlite3InitModule()` resolves with. */
export interface Sqlite3Static {
  readonly version: { libVersion: string; [key: string]: unknown };
  installOpfsSAHPoolVfs(options: SAHPoolOptions): Promise<unknown>;
  readonly capi: Record<string, unknown>;
  readonly wasm: Record<string, unknown>;
  readonly SQLite3Error: new (code: number, message?: string) => Error;
}

/** Load and initialise the WebAssembly module. */
export default function sqlite3InitModule(options?: {
  print?: (...args: unknown[]) => void;
  printErr?: (...args: unknown[]) => void;
}): Promise<Sqlite3Static>;
