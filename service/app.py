"""Build the FastAPI app: lifespan resources, the request context, error rendering.

Resources live for the process (one upstream pool) and reach routes through
the lifespan state, never through module globals, so tests build as many apps
as they like from explicit `Settings`. Every error, ours or the framework's,
is rendered here and only here, into OpenAI's envelope.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
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

from service import metrics
from service.auth import Authenticator, JwtAuth, build_authenticator
from service.config import Settings
from service.errors import (
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    ServiceError,
)
from service.lifecycle import Lifecycle
from service.ratelimit import Limiter, build_store
from service.upstream import Upstream, build_transport
from service.validation import param_of

log = structlog.get_logger("service.request")
DEMO_DIR = Path(__file__).with_name("static") / "demo"
DOORS = {"/v1/realtime/sessions": "sessions", "/v1/realtime/client_secrets": "client_secrets"}
CORS_EXPOSED = [
    "X-Request-ID",
    "X-Policy-Decisions",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
]
Scope = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]
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


class RequestContext:
    """Request id in and out, and the one canonical log line per request.

    A plain ASGI middleware (no per-request task or body copying). Handlers add
    fields to `scope["state"]["log"]`; the line is written once the response
    has started, with status and total latency.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        fields: dict[str, Any] = {"request_id": request_id}
        scope.setdefault("state", {})["log"] = fields
        status = 500

        async def send_with_id(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        door = DOORS.get(scope["path"])
        metrics.IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            metrics.IN_FLIGHT.dec()
            if door is not None and scope["method"] == "POST":
                outcome = metrics.outcome_of(status, fields.get("outcome") == "dry_run")
                metrics.MINTS.labels(door, outcome).inc()
            fields.update(
                method=scope["method"],
                path=scope["path"],
                status=status,
                total_ms=round((time.perf_counter() - started) * 1000, 3),
            )
            log.info("request", **fields)


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if 0 < len(text) <= 128 and text.isprintable():
                return str(text)
    return uuid.uuid4().hex


def create_app(settings: Settings, transport: Any = None) -> FastAPI:
    """The service for `settings`; `transport` replaces the upstream's (tests)."""
    from service.api import router

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[State]:
        upstream = Upstream(settings, transport or build_transport(settings))
        auth = build_authenticator(settings)
        limiter = Limiter(settings, build_store(settings))
        if limiter.enabled and settings.workers > 1 and not settings.redis_url:
            log.warning(
                "rate_limits_per_process",
                note="WORKERS>1 without REDIS_URL: each worker counts its own limits",
            )
        if isinstance(auth, JwtAuth):
            await auth.refresh(force=True)
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
            lifecycle.restore()
            await upstream.aclose()
            await limiter.store.aclose()
            if isinstance(auth, JwtAuth):
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
    if settings.cors_allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_allow_origins),
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
            expose_headers=CORS_EXPOSED,
            max_age=600,
        )
    app.add_middleware(RequestContext)  # outermost: every response gets an id and a log line
    return app
