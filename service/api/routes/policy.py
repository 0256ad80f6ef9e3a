"""`GET /v1/policy`: what this caller may choose, for building a UI."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.api.deps import CallerDep, ServicesDep

router = APIRouter(tags=["policy"])


@router.get("/v1/policy")
async def get_policy(services: ServicesDep, caller: CallerDep) -> JSONResponse:
    """What this caller may choose (their profile's models, voices, limits); never instructions."""
    profile, policy = services.profiles.for_caller(caller.identity, caller.claim)
    view = policy.public_view(profile)
    view["policy_hash"] = services.profiles.digest
    return JSONResponse(view)
