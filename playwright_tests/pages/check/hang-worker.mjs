// A worker that never reports ready: web/check/client-js.html checks the boot watchdog.
self.onmessage = () => {};
