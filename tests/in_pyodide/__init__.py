"""Tests that need Pyodide itself: run only by ``tests/pyodide`` (Node) and in Chromium.

CPython's pytest does not collect this folder (``collect_ignore`` in ``tests/conftest.py``):
these tests import ``pyodide`` and talk to sqlite-wasm through the real JS bridge, so there
is nothing they could do on CPython. ``tests/pyodide/test_in_pyodide.py`` checks that each of
them ran and passed under Node, so none can silently stop running.
"""
