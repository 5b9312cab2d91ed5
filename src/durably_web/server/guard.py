"""Where requests may come from: the ``Host`` allow-list, same-origin writes, JSON bodies.

A server bound to loopback is still reachable from every web page its user visits: a page
can ``POST`` a form (``text/plain`` or ``application/x-www-form-urlencoded``, no CORS
preflight) to ``http://127.0.0.1:8000/trigger``, and DNS rebinding lets a page on
``evil.example`` read ``/runs`` by pointing its own name at 127.0.0.1. The checks below close
both, the way Django (``ALLOWED_HOSTS``, its CSRF ``Origin`` check), Starlette's
``TrustedHostMiddleware`` and Jupyter (local ``Host`` only on a local server) do:

1. **Host** (every request; 400 ``invalid_host``): an IP literal, ``localhost`` or a
   ``*.localhost`` name, the name the server is bound to, or a name of ``allowed_hosts``
   (``"example.com"``, ``".example.com"`` for it and its subdomains, ``"*"`` for any). DNS
   rebinding needs a name the attacker controls; a browser never sends an IP literal it was
   not given. A request without ``Host`` (HTTP/1.0, not a browser) passes.
2. **Origin** (``POST``, ``PUT``, ``PATCH``, ``DELETE``; 403 ``cross_origin``): allowed when
   the browser says ``Sec-Fetch-Site: same-origin`` (or ``none``: the user's own action), when
   ``Origin`` names the request's own host and port, or when it is one of
   ``allowed_origins`` (``"https://app.example.com"``, ``"*"`` for any). Refused when
   ``Origin`` names another origin (``null`` included) or, without ``Origin``, when
   ``Sec-Fetch-Site`` says ``cross-site`` or ``same-site``. A request with neither header
   does not come from a browser (curl, the Python client) and passes.
3. **Content type** (writes; 415 ``unsupported_media_type``): a write that sends a body, or
   declares a ``Content-Type``, must declare ``application/json`` (parameters such as
   ``charset`` allowed, ``application/*+json`` too); ``POST /cancel?runId=`` without a body
   needs none. HTML forms cannot send that type, and a cross-origin ``fetch`` that sets it needs a
   CORS preflight, which this server never grants (no CORS headers; ``OPTIONS`` is 405).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from durably_web.errors import ValidationError
from durably_web.server.http import HTTPError, Request

__all__ = ["WRITE_METHODS", "RequestGuard", "split_host"]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""Methods that may change something: their origin and body type are checked."""

_DEFAULT_PORTS = {"http": 80, "https": 443}


def split_host(host: str) -> tuple[str, int | None] | None:
    """Split a ``Host`` value into its lower-case name and port; None if it cannot be parsed.

    Brackets of IPv6 literals and a trailing dot are removed: ``[::1]:8000`` is
    ``("::1", 8000)``, ``Example.COM.`` is ``("example.com", None)``.
    """
    try:
        parts = urlsplit("//" + host.strip())
        port = parts.port
    except ValueError:
        return None
    return (parts.hostname or "").rstrip("."), port


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _normal_origin(origin: str) -> str:
    return origin.strip().lower().rstrip("/")


@dataclass(frozen=True)
class RequestGuard:
    """The three checks of this module, configured by ``create_app``'s options (immutable).

    Args:
        allowed_hosts: ``Host`` names accepted beyond IP literals, ``localhost`` and the
            bound name: exact names, ``.example.com`` (it and its subdomains), or ``*``.
        allowed_origins: origins (``scheme://host[:port]``) whose pages may send writes;
            ``*`` allows every origin (then only the content type protects writes).
    """

    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()

    @classmethod
    def build(cls, hosts: Iterable[str], origins: Iterable[str]) -> RequestGuard:
        """Validate and normalise the options.

        Raises:
            ValidationError: a host is empty or has a scheme or path, an origin is not
                ``scheme://host[:port]``.

        """
        clean_hosts: list[str] = []
        for host in hosts:
            if not isinstance(host, str) or not host.strip() or any(c in host for c in "/@ "):
                raise ValidationError(
                    f"allowed_hosts: {host!r} is not a host name (such as 'example.com', "
                    "'.example.com' or '*')"
                )
            clean_hosts.append(host.strip().lower().rstrip("."))
        clean_origins: list[str] = []
        for origin in origins:
            parts = urlsplit(origin.strip()) if isinstance(origin, str) else None
            if origin != "*" and (
                parts is None
                or parts.scheme not in ("http", "https")
                or not parts.netloc
                or parts.path not in ("", "/")
                or parts.query
                or parts.fragment
            ):
                raise ValidationError(
                    f"allowed_origins: {origin!r} is not an origin (such as "
                    "'https://app.example.com' or 'http://localhost:5173') or '*'"
                )
            clean_origins.append(_normal_origin(origin))
        return cls(tuple(clean_hosts), tuple(clean_origins))

    def extended(self, hosts: Iterable[str], origins: Iterable[str]) -> RequestGuard:
        """Return a guard that also allows ``hosts`` and ``origins``."""
        more = RequestGuard.build(hosts, origins)
        return RequestGuard(
            tuple(dict.fromkeys((*self.allowed_hosts, *more.allowed_hosts))),
            tuple(dict.fromkeys((*self.allowed_origins, *more.allowed_origins))),
        )

    def check(self, request: Request) -> None:
        """Refuse a request whose ``Host``, ``Origin`` or body type is not allowed.

        Raises:
            HTTPError: 400 ``invalid_host``, 403 ``cross_origin`` or 415
                ``unsupported_media_type``.

        """
        host = request.headers.get("host")
        if host is not None and not self._host_allowed(host, request):
            raise HTTPError(
                400,
                f"Host {host!r} is not allowed: add it to create_app(allowed_hosts=...) "
                "(serve-api --allowed-host)",
                "invalid_host",
            )
        if request.method in WRITE_METHODS:
            self._check_origin(request)
            _check_body_type(request)

    def _host_allowed(self, host: str, request: Request) -> bool:
        """Tell whether the ``Host`` value ``host`` names this server."""
        if "*" in self.allowed_hosts:
            return True
        split = split_host(host)
        if split is None:
            return False
        name = split[0]
        if _is_ip(name):
            return True
        if name == "localhost" or name.endswith(".localhost"):
            return True
        server = request.scope.get("server")
        if server and isinstance(server[0], str) and name == server[0].lower().rstrip("."):
            return True
        for allowed in self.allowed_hosts:
            if allowed.startswith("."):
                if name == allowed[1:] or name.endswith(allowed):
                    return True
            elif name == allowed:
                return True
        return False

    def _check_origin(self, request: Request) -> None:
        site = request.headers.get("sec-fetch-site", "").strip().lower()
        if site in ("same-origin", "none"):
            return
        origin = request.headers.get("origin")
        if origin is None:
            if site in ("cross-site", "same-site"):
                raise HTTPError(
                    403,
                    f"cross-site {request.method} refused (Sec-Fetch-Site: {site}, no Origin)",
                    "cross_origin",
                )
            return
        if "*" in self.allowed_origins or _normal_origin(origin) in self.allowed_origins:
            return
        if self._same_origin(origin, request.headers.get("host")):
            return
        raise HTTPError(
            403,
            f"cross-origin {request.method} from {origin!r} refused: allow the origin with "
            "create_app(allowed_origins=...) (serve-api --allowed-origin)",
            "cross_origin",
        )

    @staticmethod
    def _same_origin(origin: str, host: str | None) -> bool:
        """Tell whether ``origin`` has the request's own host and port."""
        try:
            parts = urlsplit(origin.strip())
            origin_port = parts.port
        except ValueError:
            return False
        split = split_host(host) if host is not None else None
        default = _DEFAULT_PORTS.get(parts.scheme)
        if split is None or default is None or not parts.hostname:
            return False
        name, port = split
        return (parts.hostname.rstrip("."), origin_port or default) == (name, port or default)


def _check_body_type(request: Request) -> None:
    """Refuse a write that declares a type other than JSON, or sends a body without one."""
    declared = request.headers.get("content-type")
    if declared is None:
        length = request.headers.get("content-length", "0").strip()
        if length in ("", "0") and "transfer-encoding" not in request.headers:
            return  # no body: POST /cancel?runId=...
    kind = (declared or "").partition(";")[0].strip().lower()
    if kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json")):
        return
    shown = f"Content-Type {declared!r}" if declared else "no Content-Type"
    raise HTTPError(415, f"request body must be JSON (Content-Type: application/json), got {shown}")
