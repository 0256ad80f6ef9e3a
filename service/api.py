"""Routes: OpenAI-compatible doors, the caller's policy view, health.

Routes only wire dependencies to `service.mint`; they hold no logic. The doors
mirror OpenAI's paths so the official SDKs work by changing `base_url`.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import Response

from service.deps import BodyDep, LogFieldsDep, SettingsDep, UpstreamDep
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
    return {**NO_STORE, "X-Policy-Decisions": brief} if brief else NO_STORE


@router.post("/v1/realtime/sessions", tags=["mint"])
async def create_session(
    settings: SettingsDep,
    upstream: UpstreamDep,
    body: BodyDep,
    fields: LogFieldsDep,
    dry_run: bool = DryRun,
) -> Response:
    """Mint a client secret from a beta-shaped Session (what beta-era frontends send)."""
    result, planned = await sessions_door(settings, upstream, body, dry_run, fields)
    return _json(result, _mint_headers(planned))


@router.post("/v1/realtime/client_secrets", tags=["mint"])
async def create_client_secret(
    settings: SettingsDep,
    upstream: UpstreamDep,
    body: BodyDep,
    fields: LogFieldsDep,
    dry_run: bool = DryRun,
) -> Response:
    """Mint a client secret from OpenAI's GA request shape."""
    result, planned = await client_secrets_door(settings, upstream, body, dry_run, fields)
    return _json(result, _mint_headers(planned))


@router.get("/v1/policy", tags=["policy"])
async def get_policy(settings: SettingsDep) -> Response:
    """What a caller may choose (models, voices, limits, defaults); never the instructions."""
    return _json(settings.policy.public_view("default"))


@router.get("/healthz", tags=["health"])
async def healthz() -> Response:
    """Alive: the process answers."""
    return _json({"status": "ok"})


@router.get("/readyz", tags=["health"])
async def readyz(settings: SettingsDep) -> Response:
    """Ready to mint: configuration loaded and the upstream client open."""
    return _json(
        {"status": "ready", "upstream": "emulator" if settings.upstream_emulator else "openai"}
    )
