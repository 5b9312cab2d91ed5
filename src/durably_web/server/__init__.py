"""Server mode: an ASGI app speaking upstream Durably's HTTP/SSE protocol.

    from durably_web.server import create_app
    app = create_app(durably)            # mount in Starlette/FastAPI, or run with uvicorn

The core engine never imports this package.
"""

from durably_web.server.app import DurablyApp, create_app
from durably_web.server.auth import Auth, RunAccess, RunsFilter, SubscribeFilter
from durably_web.server.http import HTTPError, Request

__all__ = [
    "Auth",
    "DurablyApp",
    "HTTPError",
    "Request",
    "RunAccess",
    "RunsFilter",
    "SubscribeFilter",
    "create_app",
]
