// @ts-check
/**
 * The one error decoder of the JS side (src/durably_web/web/client/errors.mjs): `{error,
 * code}` from every transport, HTTP answers without a code, and the way back to Python.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ConflictError,
  DurablyError,
  LeaseLost,
  NotFoundError,
  RunCancelled,
  RunFailed,
  StorageError,
  ValidationError,
  errorFromHttp,
  errorFromWire,
  errorToWire,
} from "../../src/durably_web/web/client/errors.mjs";

test("each class has its code and HTTP status, as errors.py", () => {
  const expected = [
    [DurablyError, "internal_error", 500],
    [ValidationError, "validation_error", 400],
    [NotFoundError, "not_found", 404],
    [ConflictError, "conflict", 409],
    [RunCancelled, "run_cancelled", 409],
    [LeaseLost, "lease_lost", 409],
    [RunFailed, "run_failed", 500],
    [StorageError, "storage_error", 500],
  ];
  for (const [cls, code, status] of /** @type {[typeof DurablyError, string, number][]} */ (expected)) {
    const error = new cls("m");
    assert.deepEqual([error.name, error.code, error.statusCode, error.message], [cls.name, code, status, "m"]);
    assert.ok(error instanceof DurablyError && error instanceof Error);
  }
});

test("errorFromWire rebuilds the class from the code; unknown codes stay DurablyError", () => {
  const cases = [
    [{ error: "rows must be > 0", code: "validation_error" }, ValidationError],
    [{ error: "Run not found", code: "not_found" }, NotFoundError],
    [{ error: "clash", code: "conflict" }, ConflictError],
    [{ error: "full", code: "quota_exceeded" }, StorageError],
    [{ error: "gone", code: "opfs_busy" }, StorageError],
    [{ error: "boom", code: "job_module_failed" }, DurablyError],
  ];
  for (const [wire, cls] of /** @type {[{error: string, code: string}, typeof DurablyError][]} */ (cases)) {
    const error = errorFromWire(wire);
    assert.equal(error.constructor, cls, wire.code);
    assert.deepEqual([error.message, error.code], [wire.error, wire.code]);
  }
  const bare = errorFromWire(null);
  assert.deepEqual([bare.constructor, bare.message, bare.code], [DurablyError, "unknown error", "internal_error"]);
});

test("errorFromHttp: the body's code first, else by status; the text when not JSON", () => {
  assert.deepEqual(pick(errorFromHttp(404, "Not Found", '{"error": "Run not found"}')), ["NotFoundError", "not_found", "Run not found"]);
  assert.deepEqual(pick(errorFromHttp(400, "Bad Request", '{"error": "x", "code": "conflict"}')), ["ConflictError", "conflict", "x"]);
  assert.deepEqual(pick(errorFromHttp(409, "Conflict", "")), ["ConflictError", "conflict", "409 Conflict"]);
  assert.deepEqual(pick(errorFromHttp(503, "Unavailable", "try later")), ["DurablyError", "internal_error", "try later"]);
  assert.deepEqual(pick(errorFromHttp(418, "", "[1]")), ["DurablyError", "http_418", "[1]"]);
});

/** @param {DurablyError} error */
const pick = (error) => [error.name, error.code, error.message];

test("errorToWire: the one shape back, for any thrown value", () => {
  assert.deepEqual(errorToWire(new RunFailed("failed on purpose")), { error: "failed on purpose", code: "run_failed" });
  assert.deepEqual(errorToWire(new TypeError("x is undefined")), { error: "x is undefined", code: "internal_error" });
  assert.deepEqual(errorToWire("plain"), { error: "plain", code: "internal_error" });
  const back = errorFromWire(errorToWire(new ValidationError("bad", "custom_code")));
  assert.deepEqual(pick(back), ["DurablyError", "custom_code", "bad"]);
});
