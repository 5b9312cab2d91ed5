// A worker that never reports ready: check/client-js.html checks the boot watchdog.
self.onmessage = () => {};
