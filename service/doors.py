"""The two mint doors as a plain ASGI app: the hot path, without per-request DI.

`POST /v1/realtime/sessions` and `POST /v1/realtime/client_secrets` do the
same work as any FastAPI route would (authenticate, read a bounded body,
parse `dry_run`, run `service.mint`, render errors in OpenAI's envelope), but
called directly: FastAPI's dependency solving and middleware stack cost
~120 µs of CPU per request here, half the budget the benchmark allows for a
whole mint. Everything else (policy view, health, docs, metrics, the demo)
stays on FastAPI, which also documents these two routes (`service.openapi`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
import structlog

from service.auth import identify
from service.config import Settings
from service.context import DOORS, ASGIApp, Receive, Scope, Send, respond
from service.errors import (
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    PayloadTooLarge,
    ServiceError,
)
from service.mint import Context, Plan, client_secrets_door, sessions_door
from service.ratelimit import Limiter
from service.upstream import Upstream

log = structlog.get_logger("service.doors")
NO_STORE = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
TRUE = frozenset({"true", "1", "yes", "on"})
FALSE = frozenset({"false", "0", "no", "off", ""})


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it exceeds `limit` bytes.

    Checked against Content-Length first, then counted while streaming, so an
    oversized or lying body is never held in memory whole.
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
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def dry_run_of(scope: Scope) -> bool:
    """`?dry_run=true|false` (also 1/0, yes/no, on/off); anything else is a 400."""
    value = "false"
    for key, item in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
        if key == "dry_run":
            value = item.lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise InvalidRequest("Invalid value for 'dry_run': expected true or false.", param="dry_run")


def _mint_headers(planned: Plan) -> list[tuple[bytes, bytes]]:
    headers = [*NO_STORE, *((k.encode(), v.encode()) for k, v in planned.headers.items())]
    brief = planned.header()
    if brief:
        headers.append((b"x-policy-decisions", brief.encode()))
    return headers


class Doors:
    """Serves the doors; passes every other request on to `api` (FastAPI)."""

    def __init__(self, settings: Settings, api: ASGIApp) -> None:
        self.settings = settings
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        door = DOORS.get(scope["path"]) if scope["type"] == "http" else None
        if door is None:
            await self.api(scope, receive, send)
            return
        try:
            body, planned = await self._mint(door, scope, receive)
            await respond(send, 200, orjson.dumps(body), _mint_headers(planned))
        except ServiceError as error:
            headers = [(k.encode(), v.encode()) for k, v in error.headers.items()]
            await respond(send, error.status_code, error.body(), headers)
        except Exception as exc:
            log.exception("unhandled_error", error_type=type(exc).__name__)
            await respond(send, 500, InternalError("The service failed unexpectedly.").body(), [])

    async def _mint(self, door: str, scope: Scope, receive: Receive) -> tuple[dict[str, Any], Plan]:
        if scope["method"] != "POST":
            raise MethodNotAllowed("Method not allowed for this URL.")
        state = scope["state"]
        fields: dict[str, Any] = state["log"]
        settings = self.settings
        dry_run = dry_run_of(scope)
        caller = await identify(scope, settings.trusted_proxies, fields)
        body = await read_body(scope, receive, settings.max_body_bytes)
        upstream: Upstream = state["upstream"]
        limiter: Limiter = state["limiter"]
        context = Context(settings, upstream, limiter, caller, fields)
        if door == "sessions":
            return await sessions_door(context, body, dry_run)
        return await client_secrets_door(context, body, dry_run)
