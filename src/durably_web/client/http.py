"""Deprecated alias of :mod:`durably_web.http_client`, kept for one release.

Import ``connect_http`` and ``HttpClient`` from ``durably_web.http_client`` instead.
"""

from durably_web.http_client import HttpClient, HttpJobHandle, connect_http

__all__ = ["HttpClient", "HttpJobHandle", "connect_http"]
