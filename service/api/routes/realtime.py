"""The mint endpoints: `POST /v1/realtime/sessions` and `POST /v1/realtime/client_secrets`.

Each is a typed ASGI app mounted as a Starlette `Route`, so the app's one set
of exception handlers renders its errors, it reads the same typed lifespan
state as every route, and `service.api.openapi` documents it. It skips
FastAPI's per-request dependency solving, which costs ~200 µs of CPU per
request with four async dependencies against ~3 µs for a plain ASGI call
(the hot path's whole budget is a few hundred µs). The work itself, which
is the same for both, is `service.api.mint`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from service.api.deps import State
from service.api.mint import (
    MintContext,
    Plan,
    create_client_secret,
    create_session,
    dry_run_allowed,
)
from service.api.mint_sessions import create_transcription_session, create_translation_client_secret
from service.auth import identify
from service.core.errors import (
    ClientDisconnected,
    InvalidRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
)

SESSIONS_PATH = "/v1/realtime/sessions"
CLIENT_SECRETS_PATH = "/v1/realtime/client_secrets"
TRANSCRIPTION_SESSIONS_PATH = "/v1/realtime/transcription_sessions"
TRANSLATION_CLIENT_SECRETS_PATH = "/v1/realtime/translations/client_secrets"
ENDPOINTS = {
    SESSIONS_PATH: "sessions",
    CLIENT_SECRETS_PATH: "client_secrets",
    TRANSCRIPTION_SESSIONS_PATH: "transcription_sessions",
    TRANSLATION_CLIENT_SECRETS_PATH: "translation_client_secrets",
}
"""The mint endpoints by path, as metrics and the audit line name them."""

Create = Callable[[MintContext, bytes, bool], Awaitable[tuple[dict[str, Any], Plan]]]


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it exceeds `limit` bytes.

    Checked against Content-Length first, then counted while streaming, so an
    oversized or lying body is never held in memory whole. A client that
    disconnects before its last chunk has sent no request: nothing is minted.
    """
    too_large = PayloadTooLarge(f"Request body exceeds the {limit}-byte limit.")
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("The client closed the connection before its body ended.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def media_type(scope: Scope) -> bytes:
    """The request's media type, lower-case, without parameters (b"" if none is declared)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bytes(value.split(b";", 1)[0].strip().lower())
    return b""


def require_json(scope: Scope) -> None:
    """Refuse a body not declared as `application/json` (parameters such as charset allowed)."""
    if media_type(scope) == b"application/json":
        return
    raise UnsupportedMediaType(
        "Send the body as JSON with 'Content-Type: application/json'.", param="Content-Type"
    )


def dry_run_of(scope: Scope) -> bool:
    """`?dry_run=true|false`, the boolean the OpenAPI document declares; else a 400."""
    value = "false"
    for key, item in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
        if key == "dry_run":
            value = item
    if value in ("true", "false"):
        return value == "true"
    raise InvalidRequest("Invalid value for 'dry_run': expected true or false.", param="dry_run")


class MintEndpoint:
    """One mint endpoint as an ASGI app: authenticate, read the body, run the pipeline."""

    def __init__(self, create: Create) -> None:
        self._create = create

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: State = scope["state"]
        settings = state["settings"]
        fields: dict[str, Any] = scope["state"]["log"]
        dry_run = dry_run_of(scope)
        require_json(scope)
        caller = await identify(scope, settings.trusted_proxies, fields)
        body = await read_body(scope, receive, settings.max_body_bytes)
        context = MintContext(settings, state["upstream"], state["limiter"], caller, fields)
        if dry_run:
            await dry_run_allowed(context)
        answer, planned = await self._create(context, body, dry_run)
        headers = planned.response_headers()
        response = Response(orjson.dumps(answer), headers=headers, media_type="application/json")
        await response(scope, receive, send)


routes: list[BaseRoute] = [
    Route(SESSIONS_PATH, MintEndpoint(create_session), methods=["POST"]),
    Route(CLIENT_SECRETS_PATH, MintEndpoint(create_client_secret), methods=["POST"]),
    Route(
        TRANSCRIPTION_SESSIONS_PATH, MintEndpoint(create_transcription_session), methods=["POST"]
    ),
    Route(
        TRANSLATION_CLIENT_SECRETS_PATH,
        MintEndpoint(create_translation_client_secret),
        methods=["POST"],
    ),
]
"""Mounted first in the app, so that the hot path matches on the first routes tried."""
