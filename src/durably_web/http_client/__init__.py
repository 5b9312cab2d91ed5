"""A CPython client for a durably_web (or upstream Durably) server, over httpx and SSE.

Needs ``httpx`` (``pip install durably-web[http]``); see :func:`connect_http`.
"""

from durably_web.http_client.client import HttpDurably, HttpJobHandle, HttpJobs, connect_http

__all__ = ["HttpDurably", "HttpJobHandle", "HttpJobs", "connect_http"]
