"""Routes: OpenAI-compatible doors, the caller's policy view, health.

Routes only wire dependencies to `service.mint`; they hold no logic. The doors
mirror OpenAI's paths so the official SDKs work by changing `base_url`.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from service.deps import BodyDep, CallerDep, ContextDep, LimiterDep, SettingsDep
from service.mint import Plan, client_secrets_door, sessions_door

router = APIRouter()
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
DryRun = Query(False, description="Apply the policy and show the result; mint nothing.")


def _json(content: Any, headers: dict[str, str] | None = None, status: int = 200) -> Response:
    return Response(
        orjson.dumps(content), status_code=status, headers=headers, media_type="application/json"
    )


def _mint_headers(planned: Plan) -> dict[str, str]:
    """No caching of secrets, and what the policy did, in brief, on every mint."""
    brief = planned.header()
    headers = {**NO_STORE, **planned.headers}
    if brief:
        headers["X-Policy-Decisions"] = brief
    return headers


@router.post("/v1/realtime/sessions", tags=["mint"])
async def create_session(context: ContextDep, body: BodyDep, dry_run: bool = DryRun) -> Response:
    """Mint a client secret from a beta-shaped Session (what beta-era frontends send)."""
    result, planned = await sessions_door(context, body, dry_run)
    return _json(result, _mint_headers(planned))


@router.post("/v1/realtime/client_secrets", tags=["mint"])
async def create_client_secret(
    context: ContextDep, body: BodyDep, dry_run: bool = DryRun
) -> Response:
    """Mint a client secret from OpenAI's GA request shape."""
    result, planned = await client_secrets_door(context, body, dry_run)
    return _json(result, _mint_headers(planned))


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
