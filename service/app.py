"""Build the FastAPI app: lifespan resources, the request context, error rendering.

Resources live for the process (one upstream pool) and reach routes through
the lifespan state, never through module globals, so tests build as many apps
as they like from explicit `Settings`. Every error, ours or the framework's,
is rendered here and only here, into OpenAI's envelope.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypedDict

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from service import logs, metrics
from service.auth import Authenticator, build_authenticator
from service.config import Settings
from service.context import ASGIApp, Receive, RequestContext, Scope, Send
from service.doors import Doors
from service.errors import (
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    ServiceError,
)
from service.lifecycle import Lifecycle
from service.openapi import document_doors
from service.ratelimit import Limiter, build_store
from service.upstream import Upstream, build_sender
from service.validation import param_of

log = structlog.get_logger("service.request")
DEMO_DIR = Path(__file__).with_name("static") / "demo"
CORS_EXPOSED = [
    "X-Request-ID",
    "X-Policy-Decisions",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
]


class State(TypedDict):
    """What the lifespan hands every request (`request.state.<name>`)."""

    settings: Settings
    upstream: Upstream
    auth: Authenticator
    limiter: Limiter
    lifecycle: Lifecycle


def error_response(error: ServiceError) -> Response:
    """The one place an error becomes an HTTP response."""
    return Response(
        error.body(),
        status_code=error.status_code,
        headers=error.headers,
        media_type="application/json",
    )


async def _service_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)  # noqa: S101 - registered for ServiceError only
    return error_response(exc)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    """FastAPI's 422 (query parameters such as `dry_run`) remapped to OpenAI's 400."""
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    first: dict[str, Any] = next(iter(exc.errors()), {})
    loc = tuple(part for part in first.get("loc", ()) if part not in ("query", "body", "path"))
    param = param_of(loc)
    message = f"Invalid value for '{param}': {first.get('msg', 'invalid')}."
    return error_response(InvalidRequest(message, param=param))


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
    if exc.status_code == 405:
        return error_response(MethodNotAllowed("Method not allowed for this URL."))
    return error_response(NotFound("Invalid URL: no such route.", code="not_found"))


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", error_type=type(exc).__name__)
    return error_response(InternalError("The service failed unexpectedly."))


async def _metrics() -> Response:
    """Prometheus exposition (all workers' samples in multiprocess mode)."""
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


class Service:
    """The ASGI app uvicorn serves: request context, CORS, the doors, then FastAPI.

    `api` is the FastAPI app (policy view, health, docs, metrics, demo); the
    two mint doors are served before it by `service.doors`.
    """

    def __init__(self, settings: Settings, api: FastAPI) -> None:
        self.api = api
        inner: ASGIApp = Doors(settings, api)
        if settings.cors_allow_origins:
            inner = CORSMiddleware(
                inner,
                allow_origins=list(settings.cors_allow_origins),
                allow_credentials=settings.cors_allow_credentials,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
                expose_headers=CORS_EXPOSED,
                max_age=600,
            )
        self._app = RequestContext(inner)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def create_app(settings: Settings, transport: Any = None) -> Service:
    """The service for `settings`; `transport` replaces the upstream's (tests)."""
    from service.api import router

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[State]:
        upstream = Upstream(settings, build_sender(settings, transport))
        auth = build_authenticator(settings)
        limiter = Limiter(settings, build_store(settings))
        if limiter.enabled and settings.workers > 1 and not settings.redis_url:
            log.warning(
                "rate_limits_per_process",
                note="WORKERS>1 without REDIS_URL: each worker counts its own limits",
            )
        await auth.start()
        lifecycle = Lifecycle()
        lifecycle.watch_signals()
        try:
            yield {
                "settings": settings,
                "upstream": upstream,
                "auth": auth,
                "limiter": limiter,
                "lifecycle": lifecycle,
            }
        finally:
            logs.flush()
            lifecycle.restore()
            await upstream.aclose()
            await limiter.store.aclose()
            await auth.aclose()

    app = FastAPI(
        title="realtime-token-proxy",
        version="0.1.0",
        summary="Mints short-lived OpenAI Realtime client secrets under a server-side policy.",
        lifespan=lifespan,
    )
    app.include_router(router)
    if settings.metrics_enabled and settings.metrics_port is None:
        app.add_api_route("/metrics", _metrics, methods=["GET"], include_in_schema=False)
    if settings.demo_page:
        app.mount("/demo", StaticFiles(directory=DEMO_DIR, html=True), name="demo")
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    document_doors(app)
    return Service(settings, app)
