"""Dependencies as `Annotated` aliases, reading the lifespan state.

Routes declare what they need (`SettingsDep`, `CallerDep`, `LimiterDep`) and
FastAPI wires it; tests swap pieces with `app.dependency_overrides`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from service.auth import Caller, identify
from service.config import Settings
from service.ratelimit import Limiter


async def get_settings(request: Request) -> Settings:
    """The process's settings, from the lifespan state."""
    settings: Settings = request.state.settings
    return settings


async def get_log_fields(request: Request) -> dict[str, Any]:
    """Fields for this request's canonical log line (see `RequestContext`)."""
    fields: dict[str, Any] = request.state.log
    return fields


async def get_caller(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    fields: Annotated[dict[str, Any], Depends(get_log_fields)],
) -> Caller:
    """The authenticated caller (401 otherwise), noted in the request's log line."""
    return await identify(request.scope, settings.trusted_proxies, fields)


async def get_limiter(request: Request) -> Limiter:
    """The process's rate limiter."""
    limiter: Limiter = request.state.limiter
    return limiter


SettingsDep = Annotated[Settings, Depends(get_settings)]
CallerDep = Annotated[Caller, Depends(get_caller)]
LimiterDep = Annotated[Limiter, Depends(get_limiter)]
