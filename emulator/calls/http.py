"""The emulator's HTTP and WebSocket side of calls, answered the way OpenAI answers.

- `POST /v1/realtime/calls`: multipart `sdp` (+ optional `session` JSON, a
  valid `RealtimeSessionCreateRequestGA`) or a bare `application/sdp` offer;
  201, the SDP answer, `Location: /v1/realtime/calls/{id}`.
- `POST /v1/live/sessions`: `{"session", "transport": {"type": "webrtc", "sdp"}}`,
  valid for the openai SDK's `LiveCreateParams` (`session.model` required);
  200 `{"session": {"id", ...}, "transport": {"type": "webrtc", "sdp": answer}}`.
- `POST /v1/realtime/calls/{id}/hangup`, `POST /v1/live/sessions/{id}/hangup`: 200, or 404.
- A SIP call's answers (`phone.py`), 200 `{}`: `POST /v1/realtime/calls/{rtc_id}/accept`
  (a `RealtimeSessionCreateRequestGA`, the SDK's `CallAcceptParams`), `/reject`
  (`{"status_code"}`, optional), `/refer` (`{"target_uri"}`); Live's
  `POST /v1/live/sessions/{live_id}/accept` (`{"session"}`), `/reject`
  (`{"status_code"}`, required), `/refer`, each checked against the SDK's
  `Session*Params`. Unknown id: 404; a call no longer ringing: 409.
- Sidebands, `/v1/realtime?call_id={id}` and `/v1/live/sessions/{id}/attach`:
  every server event of the call as JSON text; JSON client events in, trusted.
- `/_emulator/calls/{id}…`: controls for tests and benchmarks (`controls.py`).

Every route but the controls needs a key header (`Authorization: Bearer …` or
`api-key`), as OpenAI's do. Starlette reads each body from the request's own
`receive` (python-multipart for the forms), and WebSockets are Starlette's
over uvicorn, each one an `EmulatorSidebandConnection` behind a socket: no
protocol code here. Needs no aiortc itself: only a WebRTC (not
fake-media) call imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import orjson
from starlette.datastructures import QueryParams, UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from emulator import schema
from emulator.calls.controls import control, json_object, json_response
from emulator.calls.errors import InvalidOffer, UnknownCall
from emulator.calls.events import CallKind
from emulator.calls.phone import Phone
from emulator.calls.phone_controls import PREFIXES as PHONE_CONTROLS
from emulator.calls.phone_controls import phone_control
from emulator.calls.registry import CallRegistry
from emulator.calls.sideband import (
    CLOSE_NORMAL,
    CLOSE_UNKNOWN_CALL,
    EmulatorSideband,
    EmulatorSidebandConnection,
    SidebandEnded,
)
from emulator.calls.webhooks import WebhookSender
from emulator.errors import EmulatorError, InvalidRequest, MissingKey, has_key
from emulator.schema import RequestSchema

REALTIME_CALLS = "/v1/realtime/calls"
LIVE_SESSIONS = "/v1/live/sessions"
REALTIME_SIDEBAND = "/v1/realtime"
ACTION = re.compile(
    r"/v1/(realtime/calls|live/sessions)/([A-Za-z0-9_-]{1,128})/(hangup|accept|reject|refer)"
)
LIVE_ATTACH = re.compile(r"/v1/live/sessions/([A-Za-z0-9_-]{1,128})/attach")
CLOSE_POLICY = 1008
CALL_SESSION = "RealtimeSessionCreateRequestGA"
"""The `session` part of `POST /v1/realtime/calls` (`RealtimeCallCreateRequest.session`),
and the body of a SIP call's accept."""
SIP_SCHEMAS = {"reject": "RealtimeCallRejectRequest", "refer": "RealtimeCallReferRequest"}


def _check(request_schema: RequestSchema, value: object, prefix: str = "") -> None:
    """Refuse `value` as OpenAI would if its schema does not take it."""
    refused = request_schema.refusal(value, prefix)
    if refused is not None:
        raise refused


class CallRoutes:
    """The call routes of one emulator app, over its one `CallRegistry`."""

    def __init__(
        self, registry: CallRegistry | None = None, webhooks: WebhookSender | None = None
    ) -> None:
        self.registry = registry if registry is not None else CallRegistry()
        self.sideband = EmulatorSideband(self.registry)
        self.phone = Phone(self.registry, webhooks or WebhookSender(None, None))

    async def close(self) -> None:
        """Hang up every open call and close the webhooks' client (the emulator's shutdown)."""
        await self.registry.close_all()
        await self.phone.sender.close()

    # HTTP.

    async def http(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer a call route; False (nothing sent, body unread) if the path is none of them."""
        request = Request(scope, receive)
        try:
            response = await self._route(request, scope["path"], scope["method"])
        except EmulatorError as error:
            response = error.response()
        if response is None:
            return False
        await response(scope, receive, send)
        return True

    async def _route(self, request: Request, path: str, method: str) -> Response | None:
        if path.startswith(PHONE_CONTROLS):
            return await phone_control(self.phone, request, path)
        if path.startswith("/_emulator/"):
            return await control(self.registry, self.phone, request, path, method)
        action = ACTION.fullmatch(path)
        if method != "POST" or not (path in (REALTIME_CALLS, LIVE_SESSIONS) or action):
            return None
        if not has_key(request.scope):
            raise MissingKey
        if action:
            kind: CallKind = "realtime" if action.group(1) == "realtime/calls" else "live"
            if action.group(3) == "hangup":
                return await self._hangup(kind, action.group(2))
            return await self._answer(kind, action.group(2), action.group(3), await request.body())
        if path == REALTIME_CALLS:
            return await self._create_realtime(request)
        return await self._create_live(await request.body())

    async def _create_realtime(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        session: dict[str, Any] = {}
        if content_type.startswith("multipart/form-data"):
            try:
                form = await request.form()
            except MultiPartException as error:
                raise InvalidOffer(f"The multipart body is malformed: {error.message}") from None
            try:
                sdp = form.get("sdp")
                raw_session = form.get("session")
                if isinstance(sdp, UploadFile):
                    offer: object = await sdp.read()
                elif sdp is None:
                    raise InvalidOffer("Missing required parameter: 'sdp'.")
                else:
                    offer = sdp
                if isinstance(raw_session, UploadFile):
                    raw_session = (await raw_session.read()).decode("utf-8", "replace")
            finally:
                await form.close()
            if raw_session is not None:
                session = json_object(raw_session, "session")
                _check(schema.published(CALL_SESSION), session, "session")
        elif content_type.split(";")[0].strip() == "application/sdp":
            offer = await request.body()
        else:
            raise InvalidOffer(
                "Send the offer as multipart/form-data (part 'sdp') or as application/sdp."
            )
        call_id, answer = await self.registry.accept(offer, "realtime", session)
        return Response(
            answer,
            201,
            {"Location": f"{REALTIME_CALLS}/{call_id}"},
            media_type="application/sdp",
        )

    async def _create_live(self, body: bytes) -> Response:
        request = json_object(body, None)
        _check(schema.live(), request)
        session, transport = request["session"], request["transport"]
        call_id, answer = await self.registry.accept(transport["sdp"], "live", session)
        effective = self.registry.get(call_id).session
        return json_response(
            200, {"session": effective, "transport": {"type": "webrtc", "sdp": answer}}
        )

    async def _answer(self, kind: CallKind, call_id: str, action: str, body: bytes) -> Response:
        """Accept, reject or refer a SIP call, its body checked as OpenAI checks it."""
        self.phone.get(call_id)  # an unknown id is a 404 whatever the body
        request = json_object(body, None) if body.strip() or action != "reject" else {}
        if kind == "live":
            _check(schema.live_sip(action), request)
        else:
            _check(schema.published(SIP_SCHEMAS.get(action, CALL_SESSION)), request)
        if action == "accept":
            session = request["session"] if kind == "live" else request
            self.phone.accept(kind, call_id, session)
        elif action == "reject":
            self.phone.reject(kind, call_id, request.get("status_code"))
        else:
            if not request["target_uri"].strip():
                raise InvalidRequest(
                    "'target_uri' must not be blank.", param="target_uri", code="invalid_value"
                )
            await self.phone.refer(kind, call_id, request["target_uri"])
        return json_response(200, {})

    async def _hangup(self, kind: CallKind, call_id: str) -> Response:
        if await self.phone.hangup(kind, call_id):
            return json_response(200, {})
        if self.registry.get(call_id).kind != kind:
            raise UnknownCall(f"No open call with id '{call_id}'.")
        await self.registry.hangup(call_id)
        return json_response(200, {})

    # Sidebands.

    def sideband_call(self, scope: Scope) -> tuple[CallKind, str | None] | None:
        """The sideband this WebSocket asks for, `(kind, call id)`; None if not a sideband."""
        if scope["path"] == REALTIME_SIDEBAND:
            return "realtime", QueryParams(scope["query_string"]).get("call_id")
        attach = LIVE_ATTACH.fullmatch(scope["path"])
        return ("live", attach.group(1)) if attach else None

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a sideband: the call's server events out, trusted client events in."""
        websocket = WebSocket(scope, receive, send)
        target = self.sideband_call(scope)
        if target is None:
            await websocket.close(CLOSE_POLICY, "Unknown WebSocket path.")
            return
        if not has_key(scope):
            try:
                await websocket.send_denial_response(MissingKey().response())
            except RuntimeError:  # the server lacks the denial-response extension
                await websocket.close(CLOSE_POLICY, "Missing API key.")
            return
        kind, call_id = target
        await websocket.accept()
        try:
            connection = await self.sideband.connect(kind, call_id or "")
        except SidebandEnded:
            await websocket.close(CLOSE_UNKNOWN_CALL, "No open call with this id.")
            return
        forward = asyncio.ensure_future(self._forward(websocket, connection))
        try:
            await self._receive(websocket, connection)
        finally:
            await connection.close()
            forward.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await forward

    async def _forward(self, websocket: WebSocket, connection: EmulatorSidebandConnection) -> None:
        """Send the call's events until it ends, then close the socket normally."""
        while True:
            try:
                event = await connection.recv()
            except SidebandEnded:
                with contextlib.suppress(RuntimeError):
                    await websocket.close(CLOSE_NORMAL, "The call ended.")
                return
            await websocket.send_text(orjson.dumps(event).decode())

    async def _receive(self, websocket: WebSocket, connection: EmulatorSidebandConnection) -> None:
        """Apply each JSON client event to the call, trusted; a bad one gets an `error` event."""
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                raw = message.get("text") or message.get("bytes") or b""
                try:
                    event = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    event = None  # answered with the call's `error` event, as OpenAI does
                try:
                    connection.apply(event)
                except SidebandEnded:
                    return
