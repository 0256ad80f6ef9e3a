"""`/admin`: operators' controls over callers, with `ADMIN_API_KEYS` (404 without them).

The operator is authenticated before anything else is read (the body
included), so a deployment without operator keys answers every `/admin`
URL with the same 404 as an unknown route. `{identity}` is the caller as
audit lines name them. Not in the OpenAPI document, which is the callers'
API: operators' controls are in docs/deploying.md.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from service.api.bodies import read_body
from service.api.deps import ServicesDep
from service.auth import identify_admin
from service.core.errors import InvalidRequest
from service.sessions import admin

router = APIRouter(tags=["admin"], prefix="/admin", include_in_schema=False)
MAX_IDENTITY = 256
MAX_BODY_BYTES = 1024
"""A suspension's body is `{"seconds": N}`: anything much larger is not one."""


async def get_admin(request: Request, services: ServicesDep) -> str:
    """The operator's name (401 with a wrong key; 404 when no operator keys are set)."""
    fields: dict[str, Any] = request.state.log
    return await identify_admin(request.scope, services.settings, fields)


AdminDep = Annotated[str, Depends(get_admin)]
NO_STORE = {"Cache-Control": "no-store"}


def _noted(request: Request, action: str, identity: str) -> None:
    """Label the request's audit line; checked here, after the operator, so that without
    operator keys a malformed `/admin` URL gets the same 404 as any other."""
    request.state.log["endpoint"] = action
    if len(identity) > MAX_IDENTITY:
        raise InvalidRequest(f"identity: at most {MAX_IDENTITY} characters.", param="identity")


@router.get("/usage")
async def usage(
    request: Request,
    services: ServicesDep,
    operator: AdminDep,
    day: str | None = None,
    limit: str | None = None,
) -> JSONResponse:
    """A UTC day's spending (`?day=YYYY-MM-DD`, today by default): the deployment's, each
    profile's and the costliest callers' (`?limit=`, 100 by default), sorted by cost."""
    request.state.log["endpoint"] = "admin_usage"
    return JSONResponse(await admin.usage(services, operator, day, limit), headers=NO_STORE)


@router.post("/callers/{identity}/hangup")
async def end_calls(
    request: Request, services: ServicesDep, operator: AdminDep, identity: str
) -> JSONResponse:
    """End every live call of the caller, on every worker (this one's at once, the others'
    within their next keeper pass: `others_within_seconds`)."""
    _noted(request, "admin_hangup", identity)
    return JSONResponse(await admin.end_calls(services, operator, identity), headers=NO_STORE)


@router.post("/callers/{identity}/suspend")
async def suspend(
    request: Request, services: ServicesDep, operator: AdminDep, identity: str
) -> JSONResponse:
    """Suspend the caller for `seconds` (body `{"seconds": N}`): new mints and calls get 403
    `caller_suspended` until then, and their live calls are ended."""
    _noted(request, "admin_suspend", identity)
    body = await read_body(request.scope, request.receive, MAX_BODY_BYTES)
    answer = await admin.suspend(services, operator, identity, body)
    return JSONResponse(answer, headers=NO_STORE)


@router.delete("/callers/{identity}/suspend")
async def lift(
    request: Request, services: ServicesDep, operator: AdminDep, identity: str
) -> JSONResponse:
    """Lift the caller's suspension."""
    _noted(request, "admin_lift", identity)
    return JSONResponse(await admin.lift(services, operator, identity), headers=NO_STORE)


@router.post("/calls/{call_id}/refer")
async def refer(
    request: Request, services: ServicesDep, operator: AdminDep, call_id: str
) -> JSONResponse:
    """Transfer a phone call (body `{"target_uri"}`), only to its number's `transfer_targets`."""
    _noted(request, "admin_refer", call_id)
    body = await read_body(request.scope, request.receive, MAX_BODY_BYTES)
    rid = str(request.state.log["request_id"])
    answer = await admin.refer(services, operator, call_id, body, rid)
    return JSONResponse(answer, headers=NO_STORE)
