"""A built-in stand-in for OpenAI's GA client-secrets endpoint. NOT OpenAI.

For local development, the browser demo and benchmarks, where no real key (or
no network) exists. It answers `POST /v1/realtime/client_secrets` the way the
real endpoint does: it requires a key header, validates the body as strictly
(unknown parameters, wrong types and out-of-range values are 400s in OpenAI's
envelope, with `param`), and returns `{"value", "expires_at", "session"}` with
the session's defaults filled in. Its secrets are obviously fake
(`ek_emulator_...`) and open no Realtime connection.

It also answers server-created calls (issue #12) with a real WebRTC peer:
`POST /v1/realtime/calls`, `POST /v1/live/sessions`, their hang-ups and
sidebands (`emulator_calls.http`), and controls for tests and benchmarks
under `/_emulator/`. A WebRTC call needs the `webrtc` extra (aiortc), imported
only when the first call is made; without it calls answer 501. With
`fake_media` calls get a canned answer and no media at all, no aiortc needed:
benchmarks hold thousands of them. In process, `Emulator.sideband()` is the
`Sideband` the service's supervisor attaches through (no socket to dial).

A raw ASGI app rather than FastAPI: as the benchmark's "limit" it must cost as
little as possible, so call routes are dispatched only once a request is known
not to be a mint. Run it alone with `python -m service emulator`, or in
process with `UPSTREAM_EMULATOR=true`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from emulator.calls.errors import WebrtcUnavailable
from emulator.calls.registry import USAGE_INTERVAL_S
from service.contract import (
    ClientSecretRequest,
    TranslationClientSecretRequest,
    invalid_request_from,
)
from service.contract.ga import READ_ONLY

if TYPE_CHECKING:
    from emulator.calls.http import CallRoutes
    from emulator.calls.sideband import EmulatorSideband

log = structlog.get_logger("emulator")
PATH = "/v1/realtime/client_secrets"
TRANSLATION_PATH = "/v1/realtime/translations/client_secrets"
CALL_PREFIXES = ("/v1/realtime/calls", "/v1/live/sessions", "/_emulator/calls/")
DEFAULT_SESSION: dict[str, Any] = {
    "type": "realtime",
    "object": "realtime.session",
    "model": "gpt-realtime",
    "output_modalities": ["audio"],
    "instructions": "You are a helpful assistant. (emulator default instructions)",
    "tools": [],
    "tool_choice": "auto",
    "tracing": None,
    "max_output_tokens": "inf",
}
DEFAULT_AUDIO: dict[str, dict[str, Any]] = {
    "input": {
        "format": {"type": "audio/pcm", "rate": 24000},
        "turn_detection": {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 200,
            "create_response": True,
            "interrupt_response": True,
            "idle_timeout_ms": None,
        },
    },
    "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy", "speed": 1.0},
}


TRANSCRIPTION_INPUT: dict[str, Any] = {
    "format": {"type": "audio/pcm", "rate": 24000},
    "transcription": {"model": "gpt-transcribe"},
    "turn_detection": {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
    },
}


def _without_read_only(session: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in session.items() if key not in READ_ONLY}


def _realtime(asked: dict[str, Any]) -> dict[str, Any]:
    session = {**DEFAULT_SESSION, **asked}
    audio = asked.get("audio", {})
    session["audio"] = {
        side: {**DEFAULT_AUDIO[side], **audio.get(side, {})} for side in ("input", "output")
    }
    return session


def _transcription(asked: dict[str, Any]) -> dict[str, Any]:
    audio_in = {**TRANSCRIPTION_INPUT, **asked.get("audio", {}).get("input", {})}
    session: dict[str, Any] = {
        "type": "transcription",
        "object": "realtime.transcription_session",
        "audio": {"input": audio_in},
    }
    if "include" in asked:
        session["include"] = asked["include"]
    return session


def _translation(asked: dict[str, Any]) -> dict[str, Any]:
    audio = asked.get("audio", {})
    return {
        "type": "translation",
        "model": asked["model"],
        "audio": {
            "input": {"transcription": None, "noise_reduction": None, **audio.get("input", {})},
            "output": {"language": "en", **audio.get("output", {})},
        },
    }


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


def _error(status: int, message: str, param: str | None, code: str | None) -> tuple[int, bytes]:
    return status, orjson.dumps(
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": param,
                "code": code,
            }
        }
    )


def answer(body: bytes, has_key: bool, translation: bool = False) -> tuple[int, bytes]:
    """The emulator's status and body for one request body.

    Realtime and transcription sessions on `client_secrets`, translation
    sessions on `translations/client_secrets`, each answered with the
    session's defaults filled in, as the GA API does.
    """
    if not has_key:
        return _error(401, "You didn't provide an API key.", None, "missing_api_key")
    model = TranslationClientSecretRequest if translation else ClientSecretRequest
    try:
        request = model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        err = invalid_request_from(exc)
        return _error(400, err.message, err.param, err.code)
    asked = request.model_dump(mode="json", exclude_unset=True)
    seconds = (request.expires_after.seconds if request.expires_after else None) or 600
    now = int(time.time())
    asked_session = _without_read_only(asked.get("session", {}))
    if translation:
        session = _translation(asked_session)
    elif asked_session.get("type") == "transcription":
        session = _transcription(asked_session)
    else:
        session = _realtime(asked_session)
    session["id"] = f"sess_emu_{secrets.token_hex(8)}"
    session["expires_at"] = 0
    return 200, orjson.dumps(
        {
            "value": f"ek_emulator_{secrets.token_hex(16)}",
            "expires_at": now + seconds,
            "session": session,
        }
    )


class LazyCallRoutes:
    """The call routes, imported on first use: a mint pays nothing for them."""

    def __init__(self, **registry_options: Any) -> None:
        self.routes: CallRoutes | None = None
        self.missing: ImportError | None = None
        self._registry_options = registry_options

    def load(self) -> CallRoutes | None:
        """The routes, or None (and `missing` says why) without the `webrtc` extra."""
        if self.routes is None and self.missing is None:
            try:
                # Imported here, not at the top: aiortc is an optional extra.
                from emulator.calls.http import CallRoutes
                from emulator.calls.registry import CallRegistry
            except ImportError as error:
                self.missing = error
                log.warning("emulator_calls_unavailable", missing=error.name)
            else:
                self.routes = CallRoutes(CallRegistry(**self._registry_options))
        return self.routes

    def unavailable(self) -> WebrtcUnavailable:
        """The 501 a call route answers when its modules cannot be imported."""
        return WebrtcUnavailable.missing(self.missing or ImportError(name="aiortc"))

    async def close(self) -> None:
        """Hang up every open call, if the routes were ever loaded."""
        if self.routes is not None:
            await self.routes.close()


async def serve_call_http(calls: LazyCallRoutes, scope: Scope, body: bytes, send: Send) -> bool:
    """Answer a call route; False if the path is none of them (the caller sends 404)."""
    routes = calls.load()
    if routes is not None:
        return await routes.http(scope, body, send)
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
    ) -> None:
        self.delay = latency_ms / 1000
        self.calls = LazyCallRoutes(
            fake_media=fake_media, max_calls=max_calls, usage_interval=usage_interval
        )

    def sideband(self) -> EmulatorSideband:
        """The `Sideband` to this emulator's calls, for a service that runs it in process."""
        routes = self.calls.load()
        if routes is None:
            raise self.calls.unavailable()
        return routes.sideband

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection."""
        calls = self.calls
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await calls.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await serve_call_websocket(calls, scope, receive, send)
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        if scope["path"] == "/healthz":
            status, body = 200, b'{"status":"ok","emulator":true}'
        elif scope["path"] not in (PATH, TRANSLATION_PATH) or scope["method"] != "POST":
            # Calls are dispatched only here, so a mint pays nothing for them.
            if scope["path"].startswith(CALL_PREFIXES) and await serve_call_http(
                calls, scope, b"".join(chunks), send
            ):
                return
            status, body = _error(
                404, f"Invalid URL ({scope['method']} {scope['path']})", None, None
            )
        else:
            headers = dict(scope["headers"])
            has_key = headers.get(b"authorization", b"").startswith(b"Bearer ") or (
                b"api-key" in headers
            )
            if self.delay:
                await asyncio.sleep(self.delay)
            translation = scope["path"] == TRANSLATION_PATH
            status, body = answer(b"".join(chunks), has_key, translation)
        await respond(send, status, body)


def create_emulator(
    latency_ms: float = 0.0,
    *,
    fake_media: bool = False,
    max_calls: int | None = None,
    usage_interval: float | None = USAGE_INTERVAL_S,
) -> Emulator:
    """The emulator as an ASGI app.

    `latency_ms` delays every mint (load tests); `fake_media` answers calls
    without media (no aiortc); `max_calls` bounds open calls (default 32, or
    10,000 with fake media); Live calls report usage every `usage_interval` s.
    """
    log.warning(
        "emulator_active",
        note="UPSTREAM EMULATOR: secrets are fake, nothing "
        "reaches OpenAI; for development and benchmarks only",
        fake_media=fake_media,
    )
    return Emulator(
        latency_ms, fake_media=fake_media, max_calls=max_calls, usage_interval=usage_interval
    )
