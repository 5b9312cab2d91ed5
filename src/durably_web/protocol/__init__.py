"""The remote protocol: every operation a client may ask of an engine, declared once. No I/O.

- :mod:`~durably_web.protocol.operations`: the table (``OPERATIONS``): each operation's wire
  arguments, engine call, wire result, whether it is safe to repeat, and upstream Durably's
  HTTP route for it. The HTTP server (:mod:`durably_web.server.app`) and the browser worker's
  host (:mod:`durably_web.browser.host`) are two small routers over it.
- :mod:`~durably_web.protocol.http`: the HTTP side of a route: request arguments from a
  query and a body, and the request for given arguments (the CPython HTTP client's).
- :mod:`~durably_web.protocol.wire`: the wire names of a trigger's options, the one
  translation between ``idempotency_key`` and ``idempotencyKey`` (page-safe).
- :mod:`~durably_web.protocol.typescript`: writes ``protocol.d.ts`` and ``protocol.mjs`` for
  the JS client (``python -m durably_web.protocol.typescript``).

Errors travel in one shape on every transport: :func:`durably_web.errors.error_to_wire`.
This package's ``__init__`` imports nothing, so a PyScript page can import
:mod:`~durably_web.protocol.wire` without the engine.
"""
