"""FastAPI routes: the caller's policy view and health.

The mint doors live in `service.doors` (the hot path, without per-request
dependency injection); these routes only wire dependencies to a response.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.deps import CallerDep, LimiterDep, SettingsDep

router = APIRouter()


def _json(content: Any, headers: dict[str, str] | None = None, status: int = 200) -> Response:
    return Response(
        orjson.dumps(content), status_code=status, headers=headers, media_type="application/json"
    )


@router.get("/v1/policy", tags=["policy"])
async def get_policy(settings: SettingsDep, caller: CallerDep) -> Response:
    """What this caller may choose (their profile's models, voices, limits); never instructions."""
    profile, policy = settings.profiles.for_caller(caller.identity, caller.claim)
    return _json(policy.public_view(profile))


@router.get("/healthz", tags=["health"])
async def healthz() -> Response:
    """Alive: the process answers."""
    return _json({"status": "ok"})


@router.get("/readyz", tags=["health"])
async def readyz(request: Request, settings: SettingsDep, limiter: LimiterDep) -> Response:
    """Ready to mint: configuration loaded, upstream client open, rate-limit store reachable.

    With RATE_LIMIT_ON_STORE_ERROR=open an unreachable Redis is reported but
    does not make the pod unready: it would still mint.
    """
    body: dict[str, Any] = {
        "status": "ready",
        "upstream": "emulator" if settings.upstream_emulator else "openai",
    }
    status = 200
    if request.state.lifecycle.draining:
        body["status"], status = "draining", 503
    if settings.redis_url:
        up = await limiter.store.ping()
        body["redis"] = "ok" if up else "unreachable"
        if not up and settings.rate_limit_on_store_error == "closed":
            body["status"], status = "unready", 503
    return _json(body, status=status)
