"""Deprecated alias of :mod:`durably_web.sitebuild.paths`, for one release."""

from __future__ import annotations

from durably_web.sitebuild.paths import MAX_PATH, resolve, split_target

__all__ = ["MAX_PATH", "resolve", "split_target"]
