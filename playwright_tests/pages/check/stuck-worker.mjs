// @ts-check
/**
 * A test engine worker: the product's own (../_durably/runtime/worker.mjs), with one stage
 * made to get stuck for real (./stuck-stages.mjs, evaluated first: see there for the query
 * parameters). For playwright_tests/demo/test_stuck_boot.py, given to `connect({worker})`
 * through check/hang.html's `?worker=`.
 */
import "./stuck-stages.mjs";
import "../_durably/runtime/worker.mjs";
