// @ts-check
/**
 * The engine worker's stage timeouts (ms): the one home of each. A stage that does not finish
 * within its time is given up instead of holding the page for the client's 30 s watchdog
 * (bench/BOOT-NOTES.md, "The 30 s boot hang").
 *
 * - `vfsStep`: one attempt to install the OPFS pool (./opfs.mjs `installVfs`: sqlite-wasm's
 *   `installOpfsSAHPoolVfs`, whose access-handle requests Chromium sometimes never settles),
 *   or the pool's growth after it. The whole install normally takes 10–1,540 ms on a loaded
 *   2-core machine (444 loads, bench/boot_hang.py). When an attempt passes it, the worker
 *   reports the boot error {@link BOOT_STUCK} and the page restarts it at once: only ending
 *   the worker releases the handles a stuck install holds, and sqlite-wasm keeps the stuck
 *   install's promise for the worker's life.
 * - `snapshotWorker`: the short-lived worker that makes the boot snapshot after `ready`
 *   (./boot.mjs `makeInWorker`), from its start to the snapshot's bytes: it boots Pyodide
 *   and imports the engine and the job module again, normally stored 0.9–1.9 s after
 *   `ready` (8 cold loads, load 5–8). When it passes, that worker is terminated, nothing is
 *   stored, and the next boot is a normal one that tries again.
 *
 * A test's engine worker script may lower them before it imports ./worker.mjs (the same
 * module instance): playwright_tests/pages/check/stuck-stages.mjs.
 */
import { BootError } from "./runtime.mjs";

/** The timeouts above, in ms. */
export const TIMEOUTS = { vfsStep: 5_000, snapshotWorker: 30_000 };

/** The code of the boot error a stuck stage reports: the page restarts the worker at once. */
export const BOOT_STUCK = "boot_stuck";

/**
 * `promise`, or a rejection with a BootError {@link BOOT_STUCK} if it has not settled
 * within `ms` (`what` names the stage in the message). The promise itself goes on.
 * @template T
 * @param {Promise<T>} promise @param {number} ms @param {string} what
 * @returns {Promise<T>}
 */
export function within(promise, ms, what) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const stuck = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new BootError(BOOT_STUCK, `${what} did not finish within ${ms} ms`)), ms);
  });
  return /** @type {Promise<T>} */ (Promise.race([promise, stuck]).finally(() => clearTimeout(timer)));
}
