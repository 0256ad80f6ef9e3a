"""The lifespan state every request sees, and dependencies that read it.

`State` is what the lifespan yields: Starlette copies it into each request's
scope, so the mint endpoints (plain ASGI, `scope["state"]`) and FastAPI
routes (`Annotated` dependencies below) read the same typed resources.
Tests build apps from explicit `Settings`, or swap a dependency with
`app.dependency_overrides`.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from fastapi import Depends, Request

from service.api.lifecycle import Lifecycle
from service.auth import Authenticator, Caller, identify
from service.calls import Supervisor
from service.config import Settings
from service.limits import Limiter
from service.store import Store
from service.upstream import Upstream


class State(TypedDict):
    """What the lifespan hands every request (`scope["state"]`, `request.state.<name>`)."""

    settings: Settings
    upstream: Upstream
    auth: Authenticator
    limiter: Limiter
    store: Store
    lifecycle: Lifecycle
    supervisor: Supervisor


async def get_settings(request: Request) -> Settings:
    """The process's settings, from the lifespan state."""
    settings: Settings = request.state.settings
    return settings


async def get_log_fields(request: Request) -> dict[str, Any]:
    """Fields for this request's canonical log line (see `service.api.middleware`)."""
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


async def get_lifecycle(request: Request) -> Lifecycle:
    """Whether the process is draining."""
    lifecycle: Lifecycle = request.state.lifecycle
    return lifecycle


SettingsDep = Annotated[Settings, Depends(get_settings)]
CallerDep = Annotated[Caller, Depends(get_caller)]
LimiterDep = Annotated[Limiter, Depends(get_limiter)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
