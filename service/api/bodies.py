"""How an endpoint reads its request: the query (`dry_run`, `model`), the media type, the body.

Each endpoint declares what it takes (`JSON`, `LIVE_JSON`, `OFFER`, `NOTHING`)
and `service.api.endpoint` applies it in the prologue every endpoint shares.
A body is refused with 413 as soon as it exceeds its limit (Content-Length
first, then counted while streaming, so an oversized or lying body is never
held whole); a client that disconnects before its last chunk sent no request.
Multipart (`POST /v1/realtime/calls`) is parsed by Starlette
(python-multipart) from the body already read, never by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import Message, Receive, Scope

from service.config import Settings
from service.core.errors import (
    ClientDisconnected,
    InvalidRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
)

MULTIPART_SLACK = 8192
"""Room for multipart boundaries and part headers on top of the SDP and session limits."""
JSON_MEDIA_TYPE = b"application/json"
OFFER_MEDIA_TYPES = (b"multipart/form-data", b"application/sdp")


def dry_run_of(scope: Scope) -> bool:
    """`?dry_run=true|false`, the boolean the OpenAPI document declares; else a 400."""
    value = "false"
    for key, item in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
        if key == "dry_run":
            value = item
    if value in ("true", "false"):
        return value == "true"
    raise InvalidRequest("Invalid value for 'dry_run': expected true or false.", param="dry_run")


def model_of(scope: Scope) -> str | None:
    """`?model=` (the last one sent), None without one; an empty value is a 400."""
    model = None
    for key, item in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
        if key == "model":
            model = item
    if model == "":
        raise InvalidRequest("Invalid value for 'model': expected a model name.", param="model")
    return model


def media_type(scope: Scope) -> bytes:
    """The request's media type, lower-case, without parameters (b"" if none is declared)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bytes(value.split(b";", 1)[0].strip().lower())
    return b""


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it exceeds `limit` bytes."""
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


def replay(body: bytes) -> Receive:
    """A `receive` that yields `body` once, then a disconnect (Starlette's form parser)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


@dataclass(frozen=True, slots=True)
class Json:
    """A JSON body (`Content-Type: application/json`, or 415), within `limit(settings)` bytes.

    Requiring the media type means a cross-site "simple" request (text/plain,
    forms), which browsers send without a CORS preflight, never reaches a mint.
    """

    limit: Callable[[Settings], int]

    def check(self, scope: Scope) -> None:
        """Refuse a body not declared as `application/json` (parameters such as charset allowed)."""
        if media_type(scope) != JSON_MEDIA_TYPE:
            raise UnsupportedMediaType(
                "Send the body as JSON with 'Content-Type: application/json'.",
                param="Content-Type",
            )

    async def read(self, scope: Scope, receive: Receive, settings: Settings) -> tuple[bytes, None]:
        """The body."""
        return await read_body(scope, receive, self.limit(settings)), None


class Offer:
    """An SDP offer: OpenAI's multipart (`sdp`, optional `session`) or a bare `application/sdp`.

    A bare offer names its model as OpenAI's does, in the query
    (`POST /v1/realtime/calls?model=…`, what the Agents SDK's `baseUrl`
    carries); a multipart offer names it in its `session` part, so a
    `?model=` beside one is a 400 rather than a second answer to one question.
    """

    def check(self, scope: Scope) -> None:
        """Refuse any other media type (415)."""
        if media_type(scope) not in OFFER_MEDIA_TYPES:
            raise UnsupportedMediaType(
                "Send the offer as multipart/form-data (parts 'sdp' and 'session') "
                "or as 'Content-Type: application/sdp'.",
                param="Content-Type",
            )

    async def read(
        self, scope: Scope, receive: Receive, settings: Settings
    ) -> tuple[bytes, bytes | None]:
        """The offer, and the `session` part if the body is multipart and has one."""
        limit = settings.max_body_bytes + settings.calls_max_sdp_bytes + MULTIPART_SLACK
        body = await read_body(scope, receive, limit)
        if media_type(scope) == b"application/sdp":
            return body, None
        return await _offer_and_session(scope, body, limit)

    def query_model(self, scope: Scope) -> str | None:
        """A bare offer's `?model=` (None: the policy's default); with multipart, a 400."""
        model = model_of(scope)
        if model is not None and media_type(scope) != b"application/sdp":
            raise InvalidRequest(
                "'model' is a query parameter of a bare 'application/sdp' offer; "
                "with multipart/form-data, send it in the 'session' part.",
                param="model",
                code="unknown_parameter",
            )
        return model


class Nothing:
    """No body is read (hang-ups): any media type, and what is sent is left unread."""

    def check(self, scope: Scope) -> None:
        """Anything goes."""

    async def read(self, scope: Scope, receive: Receive, settings: Settings) -> tuple[bytes, None]:
        """Nothing."""
        return b"", None


JSON = Json(lambda settings: settings.max_body_bytes)
LIVE_JSON = Json(lambda settings: settings.max_body_bytes + settings.calls_max_sdp_bytes)
"""GPT-Live's JSON carries the SDP offer too."""
OFFER = Offer()
NOTHING = Nothing()
Body = Json | Offer | Nothing


async def _part(value: str | UploadFile | None) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, UploadFile):
        return await value.read()
    return value.encode("utf-8", "surrogatepass")


async def _offer_and_session(scope: Scope, body: bytes, limit: int) -> tuple[bytes, bytes | None]:
    """The `sdp` and `session` parts of a multipart body; anything else is a 400."""
    try:
        form = await Request(scope, replay(body)).form(
            max_files=2, max_fields=2, max_part_size=limit
        )
    except (MultiPartException, HTTPException) as error:
        # Starlette turns its parser's MultiPartException into a 400 HTTPException
        # when it runs inside an app; either way the caller gets OpenAI's envelope.
        detail = error.message if isinstance(error, MultiPartException) else error.detail
        raise InvalidRequest(
            f"The multipart body is malformed: {detail}", code="invalid_multipart"
        ) from None
    try:
        for name in list(form.keys()):
            if name not in ("sdp", "session"):
                raise InvalidRequest(
                    f"Unknown parameter: '{name[:64]}'.", param=name[:64], code="unknown_parameter"
                )
            if len(form.getlist(name)) > 1:
                raise InvalidRequest(f"Send one '{name}' part.", param=name)
        offer = await _part(form.get("sdp"))
        session = await _part(form.get("session"))
    finally:
        await form.close()
    if offer is None:
        raise InvalidRequest("Missing required parameter: 'sdp'.", param="sdp", code="invalid_sdp")
    return offer, session
