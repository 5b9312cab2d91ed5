"""A CPython client for a durably_web (or upstream Durably) server, over httpx and SSE.

``durably = await connect_http("http://127.0.0.1:8000/api/durably")`` gives an
:class:`HttpClient` with a local engine's methods. Needs ``httpx``
(``pip install durably-web[http]``); see :mod:`durably_web.http_client.client`.
"""

from durably_web.http_client.client import HttpClient, HttpJobHandle, connect_http

__all__ = ["HttpClient", "HttpJobHandle", "connect_http"]
