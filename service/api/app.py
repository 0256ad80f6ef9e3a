"""Build the app: lifespan resources, routes, middleware, exception handlers.

Resources live for the process (one upstream HTTP client, the shared store,
the limiter, the authenticator, the supervisor) and reach requests as one
`Services` in the typed lifespan state (`service.api.deps.State`), never
through module globals, so tests build as many apps as they like from
explicit `Settings`. The app uvicorn runs is a `Dispatch`: the POST
endpoints' exact paths straight to them (`service.api.dispatch`), the rest
through FastAPI. Every
`ServiceError`, and the framework's own 404/405/422, is rendered by the
handlers registered here through `service.core.errors.render`; an unexpected
exception ends in the request middleware, which renders it the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route
from starlette.types import ASGIApp

from service.api.deps import State
from service.api.dispatch import Dispatch, Rendered
from service.api.docs import serve_docs
from service.api.endpoint import Endpoint
from service.api.lifecycle import Lifecycle
from service.api.middleware import RequestMiddleware, answer_error
from service.api.openapi import document_mint_endpoints
from service.api.routes import admin, calls, client_secrets, health, policy, usage
from service.api.routes.webhooks import webhook_router
from service.auth import build_authenticator
from service.calls import Supervisor
from service.config import Settings
from service.contract import param_of
from service.core import logs, metrics
from service.core.clock import Clock, wall_ms
from service.core.errors import InvalidRequest, MethodNotAllowed, NotFound, ServiceError
from service.core.version import service_version
from service.limits import Limiter, Suspensions
from service.policy import allowed_models, model_warnings
from service.sessions import Services
from service.store import build_store
from service.upstream import Upstream, build_http_client
from service.upstream.sideband import Sideband, WebSocketSideband

log = structlog.get_logger("service.app")
DEMO_DIR = Path(__file__).parents[1] / "static" / "demo"
CORS_EXPOSED = [
    "X-Request-ID",
    "Location",
    "X-Policy-Decisions",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
]
CORS_ALLOWED = [
    "Authorization",
    "Content-Type",
    "X-API-Key",
    "X-Request-ID",
    # OpenAI's own browser clients send these with every request, so a page on
    # another origin using them fails its preflight ("Failed to fetch",
    # "Connection error") unless they are allowed. The Agents SDK
    # (`@openai/agents-realtime`) sends its version on the call it creates:
    "X-OpenAI-Agents-SDK",
    # the openai JS SDK (7.x, `dangerouslyAllowBrowser`) its platform headers,
    # exactly as its client.mjs, internal/detect-platform.mjs and
    # lib/polling.mjs spell them (tests/test_browser_agents_sdk.py reads the
    # installed SDK and fails when one is missing here):
    "X-Stainless-Arch",
    "X-Stainless-Custom-Poll-Interval",
    "X-Stainless-Helper-Method",
    "X-Stainless-Lang",
    "X-Stainless-OS",
    "X-Stainless-Package-Version",
    "X-Stainless-Poll-Helper",
    "X-Stainless-Retry-Count",
    "X-Stainless-Runtime",
    "X-Stainless-Runtime-Version",
    "X-Stainless-Timeout",
    # and, when the client sets `organization` or `project`, these (the
    # service ignores them: its own key decides both):
    "OpenAI-Organization",
    "OpenAI-Project",
]
"""The request headers a cross-origin page may send (the preflight's allow list)."""


async def _service_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)  # noqa: S101 - registered for ServiceError only
    return answer_error(request.scope, exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 (a FastAPI route's invalid parameter) remapped to OpenAI's 400."""
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    first: dict[str, Any] = next(iter(exc.errors()), {})
    loc = tuple(part for part in first.get("loc", ()) if part not in ("query", "body", "path"))
    param = param_of(loc)
    message = f"Invalid value for '{param}': {first.get('msg', 'invalid')}."
    return answer_error(request.scope, InvalidRequest(message, param=param))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
    error: ServiceError = NotFound("Invalid URL: no such route.")
    if exc.status_code == 405:
        error = MethodNotAllowed("Method not allowed for this URL.", headers=exc.headers)
    elif exc.status_code == 400:  # Starlette's own parsers (forms) inside a route
        error = InvalidRequest(f"Invalid request: {exc.detail}")
    return answer_error(request.scope, error)


async def _metrics() -> Response:
    """Prometheus exposition (all workers' samples in multiprocess mode)."""
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)


def create_app(
    settings: Settings,
    transport: httpx.AsyncBaseTransport | None = None,
    sideband: Sideband | None = None,
    clock: Clock = wall_ms,
) -> Dispatch:
    """The service for `settings`; `transport` and `sideband` replace the network.

    Tests pass respx's transport and a scripted sideband; `service.server.compose`
    passes the in-process emulator's with `UPSTREAM_EMULATOR=true`. `clock` is
    the time the limits and the memory store count by (tests move their own).
    """
    if settings.upstream_emulator and transport is None:
        raise ValueError("UPSTREAM_EMULATOR=true: pass the emulator's transport (build_app)")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[State]:
        upstream = Upstream(settings, build_http_client(settings, transport))
        auth = build_authenticator(settings)
        store = build_store(settings, clock)
        suspensions = Suspensions(store, clock, settings.calls_max_seconds)
        # Only an operator (ADMIN_API_KEYS) or OpenAI (`safety_identifier.blocked`, with
        # OPENAI_WEBHOOK_SECRET) suspends: without either, nothing to read per mint.
        suspenders = settings.admin_api_keys or settings.openai_webhook_secret is not None
        suspending = suspensions if suspenders else None
        limiter = Limiter(settings, store, clock, suspending, store)
        log.info("policy_loaded", policy_hash=settings.profiles.digest)
        if settings.demo_page:
            log.info("demo_page_served", demo_url=demo_url(settings))
        for warning in model_warnings(settings.profiles.all(), datetime.now(UTC).date()):
            log.warning("model_warning", **warning)
        for model in settings.prices.unpriced(allowed_models(settings.profiles.all())):
            log.warning(
                "model_unpriced",
                model=model,
                message=f"{model} is allowed but has no price (PRICES_FILE can add one)",
            )
        if settings.dollar_budgets and settings.client_secrets_enabled:
            log.warning(
                "dollar_budget_unmetered",
                message="a dollar budget is set, but client secrets' sessions run between the "
                "browser and OpenAI, unseen and unmetered; CLIENT_SECRETS_ENABLED=false turns "
                "the client-secret endpoints off",
            )
        await auth.start()
        sideband_to_calls = sideband or WebSocketSideband(
            settings.openai_base_url,
            upstream.key_headers,
            settings.calls_sideband_max_events_per_second,
            clock,
        )
        supervisor = Supervisor(settings, sideband_to_calls, upstream, store, clock, suspending)
        await supervisor.start()
        lifecycle = Lifecycle()
        lifecycle.watch_signals()
        services = Services(
            settings, settings.profiles, auth, upstream, store, limiter, supervisor, suspensions
        )
        try:
            yield {"services": services, "lifecycle": lifecycle}
        finally:
            await supervisor.stop()
            logs.flush()
            lifecycle.restore()
            await upstream.aclose()
            await store.aclose()
            await auth.aclose()

    app = FastAPI(
        # No redirect from /v1/policy/ to /v1/policy: Starlette would build the
        # Location from the request's Host header, which any client sets.
        redirect_slashes=False,
        title="realtime-token-proxy",
        version=service_version(),
        summary="Mints short-lived OpenAI Realtime client secrets under a server-side policy.",
        lifespan=lifespan,
        # Served from the service's own assets, and only with API_DOCS=true (service.api.docs).
        docs_url=None,
        redoc_url=None,
    )
    # CLIENT_SECRETS_ENABLED=false: not mounted, so neither served nor documented.
    mints = client_secrets.routes if settings.client_secrets_enabled else []
    app.router.routes.extend(mints)
    app.router.routes.extend(calls.routes)
    app.include_router(calls.router)
    app.include_router(policy.router)
    app.include_router(usage.router)
    app.include_router(health.router)
    app.include_router(admin.router)
    if settings.openai_webhook_secret is not None:
        app.include_router(webhook_router(settings.openai_webhook_secret.get_secret_value()))
    if settings.metrics_enabled and settings.metrics_port is None:
        app.add_api_route("/metrics", _metrics, methods=["GET"], include_in_schema=False)
    if settings.api_docs:
        serve_docs(app)
    if settings.demo_page:

        async def demo_config() -> dict[str, list[str]]:
            """Where the demo page may send a typed caller key besides its own origin."""
            return {"api_origins": list(settings.demo_api_origins)}

        async def to_demo() -> RedirectResponse:
            """The service's root opens the demo (a relative Location: never the Host header)."""
            return RedirectResponse("/demo/", status_code=307)

        app.add_api_route("/demo/config.json", demo_config, include_in_schema=False)
        app.add_api_route("/", to_demo, include_in_schema=False)
        app.mount("/demo", StaticFiles(directory=DEMO_DIR, html=True), name="demo")
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    cors = _cors(settings)
    if cors:
        app.add_middleware(CORSMiddleware, **cors)
    app.add_middleware(RequestMiddleware)
    document_mint_endpoints(app, client_secrets=settings.client_secrets_enabled)
    endpoints = {
        route.path: route.app
        for route in [*mints, *calls.routes]
        if isinstance(route, Route) and isinstance(route.app, Endpoint) and "{" not in route.path
    }
    fast: ASGIApp = Rendered(endpoints)
    if cors:
        fast = CORSMiddleware(fast, **cors)
    return Dispatch(app, RequestMiddleware(fast), frozenset(endpoints))


def demo_url(settings: Settings) -> str:
    """Where this process serves the demo page, for the start-up log (with `DEMO_PAGE=true`).

    A wildcard `HOST` (every interface) is shown as `localhost`, which a
    browser on the same machine can open.
    """
    host = settings.host
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - compared, not bound
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}/demo/"


def _cors(settings: Settings) -> dict[str, Any]:
    """CORSMiddleware's options for CORS_ALLOW_ORIGINS (none: no CORS headers at all)."""
    if not settings.cors_allow_origins:
        return {}
    return {
        "allow_origins": list(settings.cors_allow_origins),
        "allow_credentials": settings.cors_allow_credentials,
        "allow_methods": ["GET", "POST"],
        "allow_headers": CORS_ALLOWED,
        "expose_headers": CORS_EXPOSED,
        "max_age": 600,
    }
