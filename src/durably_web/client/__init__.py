"""durably_web on a PyScript page: ``durably = await connect(jobs="./jobs.py")``.

The engine runs in a Web Worker (Pyodide, SQLite on OPFS); this package is the page's side
and runs under MicroPython (``<script type="mpy">``) or Pyodide (``<script type="py">``). It
imports nothing of the engine but :mod:`durably_web.errors`, :mod:`durably_web.json_value` and
:mod:`durably_web.protocol.wire` (all MicroPython-safe), so the page needs neither pydantic
nor the engine: ``durably-web build`` serves these files (and those three) from
``_durably/vendor/py/durably_web/`` (see ``PAGE_PACKAGE_FILES`` in
``durably_web.sitebuild.build``).
On CPython the package imports too, for type checking and tests of its pure parts.
"""

from durably_web.client.dispatch import Subscription
from durably_web.client.jobs import PageJobHandle, PageJobs
from durably_web.client.page import connect
from durably_web.client.page_client import PageClient
from durably_web.client.values import Record

__all__ = ["PageClient", "PageJobHandle", "PageJobs", "Record", "Subscription", "connect"]
