"""The lifespan state every request sees, and the dependencies that read it.

`State` is what the lifespan yields: Starlette copies it into each request's
scope, so the POST endpoints (plain ASGI, `scope["state"]`) and the FastAPI
routes (the `Annotated` dependencies below) read the same typed handles.
Tests build apps from explicit `Settings` and pass their own transport,
sideband and clock to `create_app`.
"""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from fastapi import Depends, Request

from service.api.lifecycle import Lifecycle
from service.auth import Caller, identify
from service.sessions import Services


class State(TypedDict):
    """What the lifespan hands every request (`scope["state"]`, `request.state.<name>`)."""

    services: Services
    lifecycle: Lifecycle


async def get_services(request: Request) -> Services:
    """The process's handles, from the lifespan state."""
    services: Services = request.state.services
    return services


async def get_caller(
    request: Request, services: Annotated[Services, Depends(get_services)]
) -> Caller:
    """The authenticated caller (401 otherwise), noted in the request's log line."""
    fields: dict[str, Any] = request.state.log
    settings = services.settings
    return await identify(
        request.scope,
        services.auth,
        settings.trusted_proxies,
        fields,
        settings.auth_hash_identities,
    )


async def get_lifecycle(request: Request) -> Lifecycle:
    """Whether the process is draining."""
    lifecycle: Lifecycle = request.state.lifecycle
    return lifecycle


ServicesDep = Annotated[Services, Depends(get_services)]
CallerDep = Annotated[Caller, Depends(get_caller)]
LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]
