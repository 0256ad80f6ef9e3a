"""Where the variables a developer trips over came from, and `make run`'s defaults.

`make run` wants development defaults (no caller auth, the demo, one worker,
console logs, API docs), but exporting them would beat `.env`: pydantic-settings
ranks the environment above the file, so `AUTH_MODE=api_key` written in `.env`
would be silently ignored. Instead make hands them over in one variable,
`SERVICE_DEV_DEFAULTS` ("NAME=value NAME=value"), and the serve command applies
each only where neither the shell nor `.env` set it. Precedence is then: the
shell, then `.env`, then `make run`'s defaults, then the code's defaults; the
start-up log says which one each of `TRACKED` came from.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values

__all__ = ["DEV_DEFAULTS", "TRACKED", "Source", "apply_dev_defaults"]

DEV_DEFAULTS = "SERVICE_DEV_DEFAULTS"
"""The variable `make run` puts its development defaults in."""

TRACKED = ("AUTH_MODE", "DEMO_PAGE", "WORKERS", "LOG_FORMAT", "API_DOCS", "UPSTREAM_EMULATOR")
"""The variables whose source the start-up log names: those a developer's `.env` and
`make run` both set, where a surprise costs an unauthenticated endpoint."""

Source = Literal["environment", ".env", "make run", "default"]


def _parse(value: str) -> dict[str, str]:
    """`NAME=value NAME=value` (values hold no spaces: they are make's constants)."""
    pairs = (item.partition("=") for item in value.split())
    return {name: setting for name, sep, setting in pairs if sep and name}


def apply_dev_defaults(
    environ: MutableMapping[str, str], env_file: Path = Path(".env")
) -> dict[str, Source]:
    """Fill `environ` with make run's defaults where nothing else set them; say who set what.

    An empty value counts as unset, as the service reads it for these
    variables. `SERVICE_DEV_DEFAULTS` itself is removed, so workers and child
    processes see only its effect.
    """
    defaults = _parse(environ.pop(DEV_DEFAULTS, ""))
    from_file = dotenv_values(env_file) if env_file.is_file() else {}
    sources: dict[str, Source] = {}
    for name in (*TRACKED, *(name for name in defaults if name not in TRACKED)):
        if environ.get(name):
            sources[name] = "environment"
        elif from_file.get(name):
            sources[name] = ".env"
        elif name in defaults:
            environ[name] = defaults[name]
            sources[name] = "make run"
        else:
            sources[name] = "default"
    return sources
