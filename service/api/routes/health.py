"""Health: `/healthz` (alive) and `/readyz` (ready to mint)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.api.deps import LifecycleDep, ServicesDep
from service.policy import model_warnings

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """Alive: the process answers."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
async def readyz(services: ServicesDep, lifecycle: LifecycleDep) -> JSONResponse:
    """Ready to mint: configuration loaded, upstream client open, rate-limit store reachable.

    With RATE_LIMIT_ON_STORE_ERROR=open an unreachable Redis is reported but
    does not make the pod unready: it would still mint. Models that OpenAI
    shuts down within 60 days (or has shut down), and names the service does
    not know, are listed under `models`: a warning, not unreadiness. `calls`
    says how many calls this worker supervises.
    """
    settings = services.settings
    body: dict[str, Any] = {
        "status": "ready",
        "upstream": "emulator" if settings.upstream_emulator else "openai",
    }
    warnings = model_warnings(settings.profiles.all(), datetime.now(UTC).date())
    if warnings:
        body["models"] = warnings
    status = 200
    if lifecycle.draining:
        body["status"], status = "draining", 503
    body["calls"] = {"supervised": services.supervisor.supervised}
    body["policy_hash"] = services.profiles.digest
    if settings.redis_url:
        up = await services.store.ping()
        body["redis"] = "ok" if up else "unreachable"
        if not up and settings.rate_limit_on_store_error == "closed":
            body["status"], status = "unready", 503
    return JSONResponse(body, status_code=status)
