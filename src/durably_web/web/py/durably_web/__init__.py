"""durably_web on a PyScript page: only the client and the errors (no engine, no pydantic).

This is the page-side package root. ``durably-web build`` serves it from
``_durably/vendor/py/`` together with ``errors.py`` and ``client/`` copied from the
durably_web package (one source of truth: the engine's own error classes and the client the
CPython tests check). Use::

    from durably_web.client import connect
    durably = await connect(jobs="./jobs.py")
"""

__version__ = "0.1.0"
