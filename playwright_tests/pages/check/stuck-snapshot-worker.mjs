// A snapshot worker that never answers, standing in for a stuck one (check/stuck-worker.mjs
// `?snapshot=stuck`). It holds the Web Lock "durably-test-snapshot-worker" while it lives, so
// the page can see when the engine worker has ended it.
navigator.locks.request("durably-test-snapshot-worker", () => new Promise(() => {}));
self.onmessage = () => {};
