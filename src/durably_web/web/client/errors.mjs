// @ts-check
/**
 * The durably_web error classes on the page, mirroring src/durably_web/errors.py.
 *
 * Every error crosses every transport (the worker, HTTP, SSE, the Python adapter) in one
 * shape, `{error, code}` (errors.py's `error_to_wire`), and is rebuilt here as the same class
 * (by `code`), so a page can `catch (e) { if (e instanceof ValidationError) ... }` or test
 * `e.code`. Page-side failures use the same classes with their own codes:
 *
 * | code                   | class          | meaning                                           |
 * |------------------------|----------------|---------------------------------------------------|
 * | `open_in_another_tab`  | ConflictError  | another tab owns this database (Web Lock held)    |
 * | `opfs_unavailable`, `opfs_busy`, `quota_exceeded` | StorageError | boot: storage |
 * | `job_module_failed`, `package_failed`, `boot_failed`, `worker_failed`, `web_locks_unavailable` | DurablyError | boot |
 * | `worker_restarted`     | DurablyError   | a non-retryable request was in flight when the worker died |
 * | `closed`               | DurablyError   | the client was closed (or the page hidden)        |
 * | `timeout`              | DurablyError   | waitForRun / triggerAndWait timed out             |
 */

export class DurablyError extends Error {
  /** @param {string} message @param {string} [code] */
  constructor(message, code) {
    super(message);
    this.name = new.target.name;
    /** A stable machine-readable string (see the table above and errors.py). */
    this.code = code ?? /** @type {any} */ (new.target).defaultCode;
    /** The HTTP status that represents this error on the wire. */
    this.statusCode = /** @type {any} */ (new.target).statusCode;
  }
}
DurablyError.statusCode = 500;
DurablyError.defaultCode = "internal_error";

export class ValidationError extends DurablyError {}
ValidationError.statusCode = 400;
ValidationError.defaultCode = "validation_error";

export class NotFoundError extends DurablyError {}
NotFoundError.statusCode = 404;
NotFoundError.defaultCode = "not_found";

export class ConflictError extends DurablyError {}
ConflictError.statusCode = 409;
ConflictError.defaultCode = "conflict";

export class RunCancelled extends DurablyError {}
RunCancelled.statusCode = 409;
RunCancelled.defaultCode = "run_cancelled";

export class LeaseLost extends DurablyError {}
LeaseLost.statusCode = 409;
LeaseLost.defaultCode = "lease_lost";

export class RunFailed extends DurablyError {}
RunFailed.statusCode = 500;
RunFailed.defaultCode = "run_failed";

export class StorageError extends DurablyError {}
StorageError.statusCode = 500;
StorageError.defaultCode = "storage_error";

const CLASSES = [DurablyError, ValidationError, NotFoundError, ConflictError, RunCancelled, LeaseLost, RunFailed, StorageError];
/** @type {Record<string, typeof DurablyError>} */
const BY_CODE = {
  ...Object.fromEntries(CLASSES.map((cls) => [/** @type {any} */ (cls).defaultCode, cls])),
  open_in_another_tab: ConflictError,
  opfs_unavailable: StorageError,
  opfs_busy: StorageError,
  quota_exceeded: StorageError,
};

/**
 * Rebuild an error from its wire form `{error, code}`.
 * @param {{error?: string, code?: string} | null | undefined} wire
 * @returns {DurablyError}
 */
export function errorFromWire(wire) {
  const message = String(wire?.error ?? "unknown error");
  const code = wire?.code || undefined;
  const cls = (code && BY_CODE[code]) || DurablyError;
  return new cls(message, code);
}

/**
 * The wire form `{error, code}` of any error.
 * @param {any} error
 * @returns {{error: string, code: string}}
 */
export function errorToWire(error) {
  if (error instanceof DurablyError) return { error: error.message, code: error.code };
  return { error: String(error?.message ?? error), code: "internal_error" };
}
