"""The call endpoints: create a WebRTC call for a browser, and hang it up.

- `POST /v1/realtime/calls`: OpenAI's shape, `multipart/form-data` with `sdp`
  and an optional `session` (the GA realtime session JSON), or a bare
  `application/sdp` offer (the session then comes from policy defaults).
  `201`, the SDP answer, `Location: /v1/realtime/calls/{call_id}`.
- `POST /v1/live/sessions`: GPT-Live's shape, JSON `{"session", "transport"}`;
  `200 {"session": {"id", ...}, "transport": {"type": "webrtc", "sdp"}}`.
- `POST /v1/realtime/calls/{call_id}/hangup`, `POST /v1/live/sessions/{id}/hangup`:
  only the caller who created the call; anyone else gets 404.

Typed ASGI apps like the mint endpoints (`service.api.routes.realtime`), with
the same authentication, body limits, `?dry_run` and headers. Multipart is
parsed by Starlette (python-multipart), within the body limit already read.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.calls import (
    CallPlan,
    create_call,
    dry_run_answer,
    live_answer,
    plan_live_session,
    plan_realtime_call,
)
from service.api.deps import State
from service.api.mint import NO_STORE, MintContext, dry_run_allowed
from service.api.replay import replay
from service.api.routes.realtime import dry_run_of, media_type, read_body, require_json
from service.auth import identify
from service.contract.calls import CALL_ID, CallKind
from service.core.errors import InvalidRequest, NotFound, UnsupportedMediaType
from service.upstream.calls import hang_up

REALTIME_CALLS_PATH = "/v1/realtime/calls"
LIVE_SESSIONS_PATH = "/v1/live/sessions"
CALL_ENDPOINTS = {REALTIME_CALLS_PATH: "realtime_calls", LIVE_SESSIONS_PATH: "live_sessions"}
"""The call-creating endpoints by path, as metrics and the audit line name them."""
MULTIPART_SLACK = 8192
"""Room for multipart boundaries and part headers on top of the SDP and session limits."""


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
        names = list(form.keys())
        for name in names:
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


def _context(scope: Scope, caller: Any) -> MintContext:
    state: State = scope["state"]
    return MintContext(
        state["settings"], state["upstream"], state["limiter"], caller, scope["state"]["log"]
    )


def _json(answer: dict[str, Any], call: CallPlan) -> Response:
    headers = call.planned.response_headers()
    return Response(orjson.dumps(answer), 200, headers, media_type="application/json")


async def realtime_calls(scope: Scope, receive: Receive, send: Send) -> None:
    """`POST /v1/realtime/calls`."""
    state: State = scope["state"]
    settings = state["settings"]
    dry_run = dry_run_of(scope)
    declared = media_type(scope)
    if declared not in (b"multipart/form-data", b"application/sdp"):
        raise UnsupportedMediaType(
            "Send the offer as multipart/form-data (parts 'sdp' and 'session') "
            "or as 'Content-Type: application/sdp'.",
            param="Content-Type",
        )
    caller = await identify(scope, settings.trusted_proxies, scope["state"]["log"])
    limit = settings.max_body_bytes + settings.calls_max_sdp_bytes + MULTIPART_SLACK
    body = await read_body(scope, receive, limit)
    context = _context(scope, caller)
    if dry_run:
        await dry_run_allowed(context)
    if declared == b"application/sdp":
        offer, session = body, None
    else:
        offer, session = await _offer_and_session(scope, body, limit)
    call = plan_realtime_call(context, offer, session)
    if dry_run:
        response = _json(dry_run_answer(call), call)
    else:
        created = await create_call(context, state["supervisor"], "realtime", call)
        headers = call.planned.response_headers()
        headers["Location"] = f"{REALTIME_CALLS_PATH}/{created.call_id}"
        response = Response(created.answer, 201, headers, media_type="application/sdp")
    await response(scope, receive, send)


async def live_sessions(scope: Scope, receive: Receive, send: Send) -> None:
    """`POST /v1/live/sessions`."""
    state: State = scope["state"]
    settings = state["settings"]
    dry_run = dry_run_of(scope)
    require_json(scope)
    caller = await identify(scope, settings.trusted_proxies, scope["state"]["log"])
    body = await read_body(scope, receive, settings.max_body_bytes + settings.calls_max_sdp_bytes)
    context = _context(scope, caller)
    if dry_run:
        await dry_run_allowed(context)
    call = plan_live_session(context, body)
    if dry_run:
        response = _json(dry_run_answer(call), call)
    else:
        created = await create_call(context, state["supervisor"], "live", call)
        response = _json(live_answer(call, created), call)
    await response(scope, receive, send)


class HangUp:
    """`POST …/{call_id}/hangup` for one kind of call: its creator only, else 404."""

    def __init__(self, kind: CallKind) -> None:
        self._kind = kind

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: State = scope["state"]
        fields: dict[str, Any] = scope["state"]["log"]
        caller = await identify(scope, state["settings"].trusted_proxies, fields)
        call_id: str = scope["path_params"]["call_id"][:128]
        fields.update(endpoint=f"{self._kind}_hangup", call_id=call_id)
        records = state["supervisor"].records
        owned = CALL_ID.fullmatch(call_id) is not None and await records.owned_by(
            self._kind, call_id, caller.identity
        )
        if not owned:
            raise NotFound(f"No open call with id '{call_id}'.", code="call_not_found")
        try:
            await hang_up(state["upstream"], self._kind, call_id, fields["request_id"])
        except NotFound:
            await records.forget(self._kind, call_id)  # it had already ended
            raise
        # Only now: after a failed hang-up the call lives on, and so must its record.
        await records.forget(self._kind, call_id)
        fields["outcome"] = "hung_up"
        answer = Response(orjson.dumps({}), 200, NO_STORE, media_type="application/json")
        await answer(scope, receive, send)


class Asgi:
    """A plain ASGI function as a Starlette endpoint (a bare function would get a Request)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


routes: list[BaseRoute] = [
    Route(REALTIME_CALLS_PATH, Asgi(realtime_calls), methods=["POST"]),
    Route(LIVE_SESSIONS_PATH, Asgi(live_sessions), methods=["POST"]),
    Route(f"{REALTIME_CALLS_PATH}/{{call_id}}/hangup", HangUp("realtime"), methods=["POST"]),
    Route(f"{LIVE_SESSIONS_PATH}/{{call_id}}/hangup", HangUp("live"), methods=["POST"]),
]
