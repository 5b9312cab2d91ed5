// @ts-check
/**
 * The durably_web error classes on the page, mirroring src/durably_web/errors.py (the home of
 * the classes, their statuses and codes; tests/unit/test_errors_js.py fails when this differs).
 *
 * Every error crosses every transport (the worker, HTTP, SSE, the Python adapter) in one
 * shape, `{error, code}` (errors.py's `error_to_wire`), and is rebuilt here as the same class
 * (by `code`), so a page can `catch (e) { if (e instanceof ValidationError) ... }` or test
 * `e.code`. Page-side failures use the same classes with their own codes:
 *
 * | code                   | class          | meaning                                           |
 * |------------------------|----------------|---------------------------------------------------|
 * | `opfs_unavailable`, `opfs_busy`, `quota_exceeded` | StorageError | boot: storage |
 * | `job_module_failed`, `package_failed`, `boot_failed`, `worker_failed`, `web_locks_unavailable`, `leader_unreachable` | DurablyError | boot |
 * | `worker_restarted`     | DurablyError   | a request not safe to repeat was in flight when the engine was lost (its worker restarted, or the leader tab went away) |
 * | `closed`               | DurablyError   | the client was closed (or the page hidden)        |
 * | `timeout`              | DurablyError   | waitForRun / triggerAndWait timed out             |
 * | `network_error`        | DurablyError   | server mode: the server cannot be reached         |
 * | `not_supported`        | DurablyError   | server mode: the server has no route for the operation |
 * | `subscribe_failed`     | DurablyError   | server mode: the server refused a run's event stream |
 *
 * An HTTP error answer without a `code` (upstream's handler sends `{error}` only) gets one
 * from its status: `errorFromHttp`.
 */

export class DurablyError extends Error {
  /** The HTTP status that represents this class on the wire. */
  static statusCode = 500;
  /** The code an error of this class gets when none is given. */
  static defaultCode = "internal_error";

  /** @param {string} message @param {string} [code] */
  constructor(message, code) {
    super(message);
    const cls = /** @type {typeof DurablyError} */ (new.target);
    this.name = cls.name;
    /** A stable machine-readable string (see the table above and errors.py). */
    this.code = code ?? cls.defaultCode;
    /** The HTTP status that represents this error on the wire. */
    this.statusCode = cls.statusCode;
  }
}

export class ValidationError extends DurablyError {
  static statusCode = 400;
  static defaultCode = "validation_error";
}

export class NotFoundError extends DurablyError {
  static statusCode = 404;
  static defaultCode = "not_found";
}

export class ConflictError extends DurablyError {
  static statusCode = 409;
  static defaultCode = "conflict";
}

export class RunCancelled extends DurablyError {
  static statusCode = 409;
  static defaultCode = "run_cancelled";
}

export class LeaseLost extends DurablyError {
  static statusCode = 409;
  static defaultCode = "lease_lost";
}

export class RunFailed extends DurablyError {
  static statusCode = 500;
  static defaultCode = "run_failed";
}

export class SignalTimeout extends DurablyError {
  static statusCode = 408;
  static defaultCode = "signal_timeout";
}

export class StorageError extends DurablyError {
  static statusCode = 500;
  static defaultCode = "storage_error";
}

const CLASSES = [DurablyError, ValidationError, NotFoundError, ConflictError, RunCancelled, LeaseLost, RunFailed, SignalTimeout, StorageError];
/** @type {Record<string, typeof DurablyError>} */
const BY_CODE = {
  ...Object.fromEntries(CLASSES.map((cls) => [cls.defaultCode, cls])),
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

/** The code of an HTTP error answer that names none (upstream's handler), by status. */
const BY_STATUS = /** @type {Record<number, string>} */ ({ 400: "validation_error", 404: "not_found", 409: "conflict" });

/**
 * Rebuild the error of an HTTP answer that is not OK: its `{error, code}` body, the code
 * from the status when the body names none, the body's text (or the status line) as the
 * message when it is not that JSON.
 * @param {number} status @param {string} statusText @param {string} text the body
 * @returns {DurablyError}
 */
export function errorFromHttp(status, statusText, text) {
  /** @type {unknown} */
  let payload = null;
  try {
    payload = JSON.parse(text);
  } catch {
    payload = null;
  }
  const wire = /** @type {{error?: unknown, code?: unknown}} */ (payload && typeof payload === "object" && !Array.isArray(payload) ? payload : {});
  const code = (typeof wire.code === "string" && wire.code) || BY_STATUS[status] || (status >= 500 ? "internal_error" : `http_${status}`);
  const message = typeof wire.error === "string" ? wire.error : text || `${status} ${statusText}`.trim();
  return errorFromWire({ error: message, code });
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
