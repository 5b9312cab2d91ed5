// @ts-check
/**
 * SQLocal's worker, as sqlocal/dist/worker.js (0.17.0) writes it (an OPFS driver behind a
 * processor, messages passed through), plus one global for the benchmark driver:
 * `__benchWasmBytes()`, the size of sqlite-wasm's memory in this worker (read through CDP).
 */
import { SQLiteOpfsDriver, SQLocalProcessor } from "sqlocal";

const driver = new SQLiteOpfsDriver();
const processor = new SQLocalProcessor(driver);
self.onmessage = (message) => {
  processor.postMessage(message);
};
processor.onmessage = (message, transfer) => {
  self.postMessage(message, /** @type {any} */ (transfer));
};
/** @type {any} */ (globalThis).__benchWasmBytes = () => /** @type {any} */ (driver).sqlite3?.wasm.heap8u().byteLength ?? 0;
