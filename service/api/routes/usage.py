"""`GET /v1/usage`: the caller's own usage today, and the limits that apply to it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.api.deps import CallerDep, ServicesDep

router = APIRouter(tags=["usage"])


@router.get("/v1/usage")
async def get_usage(services: ServicesDep, caller: CallerDep) -> JSONResponse:
    """Tokens and call seconds used today (UTC), live calls, and each limit (null: none).

    Live-call counts are kept only with `CALLS_MAX_CONCURRENT_PER_IDENTITY`.
    """
    body = await services.supervisor.usage(caller.identity)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})
