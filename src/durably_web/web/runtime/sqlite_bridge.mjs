// @ts-check
/**
 * The synchronous SQLite bridge Python calls from Pyodide, in the same worker.
 *
 * Contract (the Python side is src/durably_web/adapters/pyodide.py):
 * - Every function is synchronous and takes and returns primitives only (number, bigint,
 *   string, boolean, undefined), or arrays of them for rows. Python calls with variadic
 *   positional arguments (`run(h, stmt, *params)`): a list would arrive as a PyProxy whose
 *   every element read crosses the FFI again.
 * - Databases are integer handles from `open`; statements are integer ids from `prepare`,
 *   prepared once and cached until `close`, so SQL text crosses the bridge once per query.
 * - SQL NULL is returned as `undefined` (Python None); JS `null` would arrive as
 *   `pyodide.ffi.jsnull`.
 * - Errors are `sqlite3.SQLite3Error` with `resultCode` = the extended result code
 *   (`resultCode & 0xff` is the primary one: 19 = constraint). A statement is always reset
 *   after use, even on error, so a failed call never leaves a statement or its lock open.
 * - An I/O error the host explains as a full storage quota (`ioFault`) is SQLITE_FULL with
 *   the words "storage quota exceeded": SQLite itself only says "disk I/O error" when the
 *   VFS's write throws (Python raises DatabaseFull for it; the engine stops its worker).
 * - `batch` runs several statements in one BEGIN IMMEDIATE ... COMMIT with one call: a lease
 *   holder's checkpoint is one bridge crossing.
 *
 * Host-agnostic: `openDb` turns a filename into an oo1 database (an in-memory `oo1.DB` under
 * Node, an `OpfsSAHPoolDb` in the browser worker).
 *
 * The hot path calls the raw WASM exports (`sqlite3.wasm.exports`): every `capi.*` function is
 * an adapter costing ~0.8 us per call, oo1's `Stmt.step()` logs every failing step, and
 * `capi.sqlite3_bind_text` with a JS string throws in 3.54.1. Assumes the wasm32 build.
 */

/**
 * @typedef {{ pointer: number, close(): void, exec(sql: string): unknown,
 *             prepare(sql: string): { pointer: number, finalize(): unknown } }} OoDb
 * @typedef {{ pointer: number, finalize(): unknown }} OoStmt
 * @typedef {{ db: OoDb, stmts: OoStmt[], begin: number, commit: number, rollback: number, dataVersion?: number }} Entry
 */

/**
 * @param {any} sqlite3 the initialised sqlite3 namespace (`await sqlite3InitModule()`)
 * @param {(filename: string) => OoDb} openDb opens a database for `open()`
 * @param {() => ({ full: boolean, message: string } | null)} [ioFault] what the VFS reported
 *   since the last call (and forget it): why the last I/O error happened, if the host knows
 */
export function createBridge(sqlite3, openDb, ioFault = () => null) {
  const { capi, wasm } = sqlite3;
  if (wasm.ptr.size !== 4) throw new Error("sqlite_bridge needs the wasm32 sqlite3 build");
  const x = wasm.exports;
  const { SQLITE_ROW, SQLITE_DONE, SQLITE_NULL, SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT } = capi;
  const SQLITE_TRANSIENT = -1; // SQLite copies bound values at once: the scratch buffer is reused
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  /** @type {Map<number, Entry>} */
  const dbs = new Map();
  let nextHandle = 1;

  let scratch = 0;
  let scratchSize = 0;
  /** @param {number} size */
  const reserve = (size) => {
    if (size > scratchSize) {
      if (scratch) x.sqlite3_free(scratch);
      scratchSize = Math.max(size, 2 * scratchSize, 4096);
      scratch = x.sqlite3_malloc(scratchSize);
      if (!scratch) throw new sqlite3.SQLite3Error(capi.SQLITE_NOMEM, "out of memory binding a value");
    }
    return scratch;
  };

  /** @param {number} handle */
  const entry = (handle) => {
    const found = dbs.get(handle);
    if (!found) throw new sqlite3.SQLite3Error(capi.SQLITE_MISUSE, `no open database with handle ${handle}`);
    return found;
  };

  /** @param {OoDb} db @param {number} rc @returns {never} */
  const fail = (db, rc) => {
    const message = capi.sqlite3_errmsg(db.pointer);
    const primary = rc & 0xff;
    if (primary === capi.SQLITE_IOERR || primary === capi.SQLITE_FULL) {
      const fault = ioFault();
      if (fault?.full) throw new sqlite3.SQLite3Error(capi.SQLITE_FULL, `storage quota exceeded: ${message} (${fault.message})`);
    }
    throw new sqlite3.SQLite3Error(rc, message);
  };

  /** @param {Entry} e @param {number} id */
  const stmtPointer = (e, id) => {
    const stmt = e.stmts[id];
    if (!stmt) throw new sqlite3.SQLite3Error(capi.SQLITE_MISUSE, `no prepared statement ${id}`);
    return stmt.pointer;
  };

  /** @param {number} p @param {number} i @param {string} v */
  const bindText = (p, i, v) => {
    const ptr = reserve(v.length * 3 + 1); // worst case UTF-16 -> UTF-8
    const { written } = encoder.encodeInto(v, wasm.heap8u().subarray(ptr, ptr + scratchSize));
    return x.sqlite3_bind_text(p, i, ptr, written, SQLITE_TRANSIENT);
  };

  /** @param {number} p @param {number} i @param {any} v */
  const bindOne = (p, i, v) => {
    switch (typeof v) {
      case "string":
        return bindText(p, i, v);
      case "number":
        if ((v | 0) === v) return x.sqlite3_bind_int(p, i, v);
        return Number.isSafeInteger(v) ? x.sqlite3_bind_int64(p, i, BigInt(v)) : x.sqlite3_bind_double(p, i, v);
      case "bigint":
        return x.sqlite3_bind_int64(p, i, v);
      case "boolean":
        return x.sqlite3_bind_int(p, i, v ? 1 : 0);
      case "undefined":
        return x.sqlite3_bind_null(p, i);
      default:
        if (v === null) return x.sqlite3_bind_null(p, i);
        throw new sqlite3.SQLite3Error(capi.SQLITE_MISMATCH, `cannot bind parameter ${i} of type ${typeof v}`);
    }
  };

  /**
   * Bind `count` values of `args` starting at `start`.
   * @param {OoDb} db @param {number} p @param {any[]} args @param {number} start @param {number} count
   */
  const bind = (db, p, args, start, count) => {
    const expected = x.sqlite3_bind_parameter_count(p);
    if (count !== expected) {
      throw new sqlite3.SQLite3Error(capi.SQLITE_RANGE, `statement takes ${expected} parameter(s), got ${count}`);
    }
    for (let i = 0; i < count; i++) {
      const rc = bindOne(p, i + 1, args[start + i]);
      if (rc) fail(db, rc);
    }
  };

  /** @param {bigint} v */
  const int64 = (v) => (v >= Number.MIN_SAFE_INTEGER && v <= Number.MAX_SAFE_INTEGER ? Number(v) : v);

  /** @param {number} p @param {number} i */
  const column = (p, i) => {
    switch (x.sqlite3_column_type(p, i)) {
      case SQLITE_NULL:
        return undefined;
      case SQLITE_INTEGER:
        return int64(x.sqlite3_column_int64(p, i));
      case SQLITE_FLOAT:
        return x.sqlite3_column_double(p, i);
      case SQLITE_TEXT: {
        const ptr = x.sqlite3_column_text(p, i);
        return decoder.decode(wasm.heap8u().subarray(ptr, ptr + x.sqlite3_column_bytes(p, i)));
      }
      default: {
        const ptr = x.sqlite3_column_blob(p, i);
        return wasm.heap8u().slice(ptr, ptr + x.sqlite3_column_bytes(p, i));
      }
    }
  };

  /**
   * Step a bound statement to completion, then reset it; return sqlite3_changes().
   * @param {OoDb} db @param {number} p @param {any[][] | null} rows
   */
  const step = (db, p, rows) => {
    try {
      for (;;) {
        const rc = x.sqlite3_step(p);
        if (rc === SQLITE_ROW) {
          if (rows) {
            const n = x.sqlite3_column_count(p);
            const row = new Array(n);
            for (let i = 0; i < n; i++) row[i] = column(p, i);
            rows.push(row);
          }
        } else if (rc === SQLITE_DONE) {
          return x.sqlite3_changes(db.pointer);
        } else {
          fail(db, rc);
        }
      }
    } finally {
      x.sqlite3_reset(p);
      x.sqlite3_clear_bindings(p);
    }
  };

  /** @param {Entry} e @param {number} id @param {any[]} args @param {number} start @param {number} count @param {any[][] | null} rows */
  const execute = (e, id, args, start, count, rows) => {
    const p = stmtPointer(e, id);
    try {
      bind(e.db, p, args, start, count);
    } catch (error) {
      x.sqlite3_reset(p);
      x.sqlite3_clear_bindings(p);
      throw error;
    }
    return step(e.db, p, rows);
  };

  /** @param {Entry} e @param {string} sql */
  const prepareIn = (e, sql) => {
    e.stmts.push(e.db.prepare(sql)); // throws SQLite3Error on a syntax error
    return e.stmts.length - 1;
  };

  const bridge = {
    /** @param {string} filename @returns {number} a database handle */
    open(filename) {
      const db = openDb(filename);
      /** @type {Entry} */
      const e = { db, stmts: [], begin: 0, commit: 0, rollback: 0 };
      e.begin = prepareIn(e, "BEGIN IMMEDIATE");
      e.commit = prepareIn(e, "COMMIT");
      e.rollback = prepareIn(e, "ROLLBACK");
      const handle = nextHandle++;
      dbs.set(handle, e);
      return handle;
    },
    /** @param {number} handle */
    close(handle) {
      const e = entry(handle);
      for (const stmt of e.stmts) stmt.finalize();
      dbs.delete(handle);
      e.db.close();
    },
    /** Run statements without parameters or results (DDL, PRAGMA). @param {number} handle @param {string} sql */
    exec(handle, sql) {
      entry(handle).db.exec(sql);
    },
    /** Prepare `sql` once; return its statement id. @param {number} handle @param {string} sql */
    prepare(handle, sql) {
      return prepareIn(entry(handle), sql);
    },
    /** Column names of a prepared statement, joined by "\u0000". @param {number} handle @param {number} id */
    columns(handle, id) {
      const p = stmtPointer(entry(handle), id);
      const names = [];
      for (let i = 0; i < x.sqlite3_column_count(p); i++) names.push(capi.sqlite3_column_name(p, i));
      return names.join("\u0000");
    },
    /** Run a statement, discard rows, return the changed-row count. @param {number} handle @param {number} id @param {...any} params */
    run(handle, id, ...params) {
      return execute(entry(handle), id, params, 0, params.length, null);
    },
    /** All rows as arrays (Python: `.to_py()`). @param {number} handle @param {number} id @param {...any} params */
    all(handle, id, ...params) {
      /** @type {any[][]} */
      const rows = [];
      execute(entry(handle), id, params, 0, params.length, rows);
      return rows;
    },
    /**
     * Run statements in one write transaction. Arguments after `guard` are groups of
     * `statementId, parameterCount, ...parameters`. With `guard`, when the first statement
     * changes no row the transaction is rolled back and 0 returned; otherwise 1.
     * @param {number} handle @param {boolean} guard @param {...any} spec
     */
    batch(handle, guard, ...spec) {
      const e = entry(handle);
      if (spec.length === 2 + spec[1]) {
        // One statement is its own transaction in autocommit mode: no BEGIN/COMMIT steps.
        const changed = execute(e, spec[0], spec, 2, spec[1], null);
        return guard && changed === 0 ? 0 : 1;
      }
      execute(e, e.begin, spec, 0, 0, null);
      try {
        let first = true;
        for (let at = 0; at < spec.length; ) {
          const id = spec[at];
          const count = spec[at + 1];
          const changed = execute(e, id, spec, at + 2, count, null);
          at += 2 + count;
          if (first && guard && changed === 0) {
            execute(e, e.rollback, spec, 0, 0, null);
            return 0;
          }
          first = false;
        }
        execute(e, e.commit, spec, 0, 0, null);
        return 1;
      } catch (error) {
        if (x.sqlite3_get_autocommit(e.db.pointer) === 0) execute(e, e.rollback, spec, 0, 0, null);
        throw error;
      }
    },
    /** @param {number} handle */
    begin(handle) {
      const e = entry(handle);
      execute(e, e.begin, [], 0, 0, null);
    },
    /** @param {number} handle */
    commit(handle) {
      const e = entry(handle);
      execute(e, e.commit, [], 0, 0, null);
    },
    /** @param {number} handle */
    rollback(handle) {
      const e = entry(handle);
      execute(e, e.rollback, [], 0, 0, null);
    },
    /** @param {number} handle @returns {boolean} */
    inTransaction(handle) {
      return x.sqlite3_get_autocommit(entry(handle).db.pointer) === 0;
    },
    /** PRAGMA data_version: changes when another connection commits. @param {number} handle */
    dataVersion(handle) {
      const e = entry(handle);
      /** @type {any[][]} */
      const rows = [];
      if (!e.dataVersion) e.dataVersion = prepareIn(e, "PRAGMA data_version");
      execute(e, e.dataVersion, [], 0, 0, rows);
      return rows[0][0];
    },
  };
  return bridge;
}
