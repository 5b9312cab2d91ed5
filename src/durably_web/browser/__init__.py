"""The engine's side of the browser runtime: boot inside the Pyodide worker, serve the page.

Only this package and :mod:`durably_web.adapters.pyodide` import ``js``/``pyodide``.
"""
