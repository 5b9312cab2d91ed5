// @ts-check
/**
 * What a page starts before the client's modules have loaded (a classic `async` script, so
 * it runs as soon as it arrives, while they still download). `durably-web build` writes its
 * tag with the client's modulepreload tags (durably_web/sitebuild/preload.py).
 *
 * The first Web Locks request of a browser profile is slow in Chromium (10-100 ms here: the
 * origin's lock storage is set up), and `connect()`/`preconnect()` wait for their tab's lock
 * (./transports/tabs.mjs `join()`) before they create the engine worker. A `query()` now
 * (it takes and waits for no lock) pays that cost while the modules load.
 */
globalThis.navigator?.locks?.query?.().catch(() => {});
