"""Deprecated alias of :mod:`durably_web.http_client` (the CPython HTTP client), kept for one
release: import from ``durably_web.http_client`` instead.
"""  # noqa: D205 - the summary needs both lines

from durably_web.http_client import HttpDurably, HttpJobHandle, HttpJobs, connect_http

__all__ = ["HttpDurably", "HttpJobHandle", "HttpJobs", "connect_http"]
