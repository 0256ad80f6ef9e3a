"""The service's version: its package metadata, which pyproject.toml's `version` sets."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "realtime-token-proxy"
"""`[project].name` in pyproject.toml."""


def service_version() -> str:
    """The installed distribution's version (`unknown` in a source tree never installed)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"
