"""Deprecated alias of :mod:`durably_web.sitebuild.asgi`, for one release."""

from __future__ import annotations

from durably_web.sitebuild.asgi import SiteApp, StaticFiles, site_app

__all__ = ["SiteApp", "StaticFiles", "site_app"]
