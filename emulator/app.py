"""The emulator as one ASGI app: mints, calls, their sidebands, and its test controls.

For local development, the browser demo and benchmarks, where no real key (or
no network) exists. It answers `POST /v1/realtime/client_secrets` and
`…/translations/client_secrets` as OpenAI does (`mint`), and server-created
calls (`POST /v1/realtime/calls`, `POST /v1/live/sessions`, their hang-ups and
sidebands: `calls.http`) with a real WebRTC peer, plus controls for tests and
benchmarks under `/_emulator/`. It plays the telephone too (`calls.phone`):
a SIP call rings, OpenAI's signed webhooks go to the service
(`webhook_url`, `webhook_secret`), and its accept, reject and refer are
answered as OpenAI's. A WebRTC call needs the `webrtc` extra
(aiortc), imported only when the first call is made; without it calls answer
501. With `fake_media` calls get a canned answer and no media at all, no
aiortc needed: benchmarks hold thousands of them. In process,
`Emulator.sideband()` is the sideband to its calls (no socket to dial).

A raw ASGI app rather than FastAPI: as the benchmark's "limit" it must cost as
little as possible, so a mint is recognised first and call routes are loaded
and dispatched only for the paths they serve. Run it alone with
`python -m service emulator`, or in the service's process with
`UPSTREAM_EMULATOR=true`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import structlog
from starlette.types import Receive, Scope, Send

from emulator.calls.errors import WebrtcUnavailable
from emulator.calls.registry import USAGE_INTERVAL_S
from emulator.errors import NotFound, has_key
from emulator.mint import answer

if TYPE_CHECKING:
    from emulator.calls.http import CallRoutes
    from emulator.calls.sideband import EmulatorSideband

log = structlog.get_logger("emulator", component="emulator")
PATH = "/v1/realtime/client_secrets"
TRANSLATION_PATH = "/v1/realtime/translations/client_secrets"
CALL_PREFIXES = (
    "/v1/realtime/calls",
    "/v1/live/sessions",
    "/_emulator/calls/",
    "/_emulator/sip/",
    "/_emulator/safety/",
)
HEALTHY = b'{"status":"ok","emulator":true}'


async def respond(send: Send, status: int, body: bytes) -> None:
    """Send a complete JSON response."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive) -> bytes:
    """The whole request body, as ASGI delivers it in chunks."""
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    """Where the telephone posts OpenAI's webhooks (the service's webhook endpoint), signed
    with which `whsec_…` secret, over which transport (None: the network)."""

    url: str | None = None
    secret: str | None = None
    transport: httpx.AsyncBaseTransport | None = None


class LazyCallRoutes:
    """The call routes, imported on first use: a mint pays nothing for them."""

    def __init__(self, webhooks: WebhookOptions | None = None, **registry_options: Any) -> None:
        self.routes: CallRoutes | None = None
        self.missing: ImportError | None = None
        self._webhooks = webhooks or WebhookOptions()
        self._registry_options = registry_options

    def load(self) -> CallRoutes | None:
        """The routes, or None (and `missing` says why) without the `webrtc` extra."""
        if self.routes is None and self.missing is None:
            try:
                # Imported here, not at the top: aiortc is an optional extra.
                from emulator.calls.http import CallRoutes
                from emulator.calls.registry import CallRegistry
                from emulator.calls.webhooks import WebhookSender
            except ImportError as error:
                self.missing = error
                log.warning("emulator_calls_unavailable", missing=error.name)
            else:
                options = self._webhooks
                sender = WebhookSender(options.url, options.secret, transport=options.transport)
                self.routes = CallRoutes(CallRegistry(**self._registry_options), sender)
        return self.routes

    def unavailable(self) -> WebrtcUnavailable:
        """The 501 a call route answers when its modules cannot be imported."""
        return WebrtcUnavailable.missing(self.missing or ImportError(name="aiortc"))

    async def close(self) -> None:
        """Hang up every open call, if the routes were ever loaded."""
        if self.routes is not None:
            await self.routes.close()


async def serve_call_http(
    calls: LazyCallRoutes, scope: Scope, receive: Receive, send: Send
) -> bool:
    """Answer a call route; False if the path is none of them (the caller sends 404)."""
    routes = calls.load()
    if routes is not None:
        return await routes.http(scope, receive, send)
    error = calls.unavailable()
    await respond(send, error.status_code, error.body())
    return True


async def serve_call_websocket(
    calls: LazyCallRoutes, scope: Scope, receive: Receive, send: Send
) -> None:
    """Serve a sideband WebSocket, or refuse it (1008) without the `webrtc` extra."""
    routes = calls.load()
    if routes is not None:
        await routes.websocket(scope, receive, send)
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.close", "code": 1008, "reason": "webrtc extra missing"})


class Emulator:
    """The emulator as an ASGI app, and the in-process sideband to its calls."""

    def __init__(
        self,
        latency_ms: float = 0.0,
        *,
        fake_media: bool = False,
        max_calls: int | None = None,
        usage_interval: float | None = USAGE_INTERVAL_S,
        transcript_interval: float | None = None,
        webhooks: WebhookOptions | None = None,
    ) -> None:
        self.delay = latency_ms / 1000
        self.calls = LazyCallRoutes(
            webhooks,
            fake_media=fake_media,
            max_calls=max_calls,
            usage_interval=usage_interval,
            transcript_interval=transcript_interval,
        )

    def sideband(self) -> EmulatorSideband:
        """The sideband to this emulator's calls, for a service that runs it in process."""
        routes = self.calls.load()
        if routes is None:
            raise self.calls.unavailable()
        return routes.sideband

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection."""
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await self.calls.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] == "websocket":
            await serve_call_websocket(self.calls, scope, receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path in (PATH, TRANSLATION_PATH) and scope["method"] == "POST":
            body = await read_body(receive)
            if self.delay:
                await asyncio.sleep(self.delay)
            status, body = answer(body, has_key(scope), translation=path == TRANSLATION_PATH)
        elif path == "/healthz":
            status, body = 200, HEALTHY
        elif path.startswith(CALL_PREFIXES) and await serve_call_http(
            self.calls, scope, receive, send
        ):
            return
        else:
            refused = NotFound(f"Invalid URL ({scope['method']} {path})")
            status, body = refused.status_code, refused.body()
        await respond(send, status, body)


def create_emulator(
    latency_ms: float = 0.0,
    *,
    fake_media: bool = False,
    max_calls: int | None = None,
    usage_interval: float | None = USAGE_INTERVAL_S,
    transcript_interval: float | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
) -> Emulator:
    """The emulator as an ASGI app.

    `latency_ms` delays every mint (load tests); `fake_media` answers calls
    without media (no aiortc); `max_calls` bounds open calls (default 32, or
    10,000 with fake media); Live calls report usage every `usage_interval` s, and
    say a transcript fragment every `transcript_interval` s (None: never).
    The telephone posts its webhooks to `webhook_url`, signed with
    `webhook_secret` (`whsec_…`), over `webhook_transport` (default: the network).
    """
    log.warning(
        "emulator_active",
        note="UPSTREAM EMULATOR: secrets are fake, nothing "
        "reaches OpenAI; for development and benchmarks only",
        fake_media=fake_media,
    )
    webhooks = WebhookOptions(webhook_url, webhook_secret, webhook_transport)
    return Emulator(
        latency_ms,
        fake_media=fake_media,
        max_calls=max_calls,
        usage_interval=usage_interval,
        transcript_interval=transcript_interval,
        webhooks=webhooks,
    )
