"""The call endpoints: create a WebRTC call for a browser, and hang it up.

- `POST /v1/realtime/calls`: OpenAI's shape, `multipart/form-data` with `sdp`
  and an optional `session` (the GA realtime session JSON), or a bare
  `application/sdp` offer (the session then comes from policy defaults, its
  model from `?model=` if sent, as OpenAI's and the Agents SDK's calls name it).
  `201`, the SDP answer, `Location: /v1/realtime/calls/{call_id}`.
- `POST /v1/live/sessions`: GPT-Live's shape, JSON `{"session", "transport"}`;
  `200 {"session": {"id", ...}, "transport": {"type": "webrtc", "sdp"}}`.
- `POST /v1/realtime/calls/{call_id}/hangup`, `POST /v1/live/sessions/{id}/hangup`:
  only the caller who created the call; anyone else gets 404.
- `GET /v1/realtime/calls/{call_id}`, `GET /v1/live/sessions/{session_id}`:
  what the service does for the call while it lasts (`CallState`), for a
  frontend to poll; the same owner-only 404 as a hang-up.

Each POST is one `Endpoint` over one flow of `service.sessions.calls`; each
GET a FastAPI route (`router`) over one flow, as the other GET endpoints are.
"""

from __future__ import annotations

from typing import get_args

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.routing import BaseRoute

from service.api.bodies import LIVE_JSON, NOTHING, OFFER
from service.api.deps import CallerDep, ServicesDep
from service.api.endpoint import Endpoint, post, render
from service.auth import Caller
from service.calls import CallState
from service.contract import CallKind
from service.sessions import (
    PATHS,
    Incoming,
    Services,
    call_state,
    create_live_session,
    create_realtime_call,
    hang_up,
)

REALTIME_CALLS_PATH = PATHS["realtime"]
LIVE_SESSIONS_PATH = PATHS["live"]

routes: list[BaseRoute] = [
    post(REALTIME_CALLS_PATH, Endpoint("realtime_calls", create_realtime_call, OFFER)),
    post(LIVE_SESSIONS_PATH, Endpoint("live_sessions", create_live_session, LIVE_JSON)),
    *(
        post(
            f"{PATHS[kind]}/{{call_id}}/hangup",
            Endpoint(f"{kind}_hangup", hang_up(kind), NOTHING, counted=False, dry_runs=False),
        )
        for kind in get_args(CallKind)
    ),
]

router = APIRouter(tags=["calls"])
STATE_PATHS: dict[CallKind, str] = {
    "realtime": f"{PATHS['realtime']}/{{call_id}}",
    "live": f"{PATHS['live']}/{{session_id}}",
}
"""Where each kind of call's state is read; OpenAPI adds their errors (`service.api.openapi`)."""
STATE_DESCRIPTION = (
    "What the service does for the call, live: the fields the policy fixed (names only), "
    "each override and its revert, the deadline (`CALLS_MAX_SECONDS`) and the usage so far. "
    "Only the caller who created the call; anyone else gets the 404 an unknown id gets."
)
STATE_FLOWS = {kind: call_state(kind) for kind in get_args(CallKind)}


async def _state(
    kind: CallKind, call_id: str, request: Request, services: Services, caller: Caller
) -> Response:
    fields = request.state.log
    fields["endpoint"] = f"{kind}_call_state"
    incoming = Incoming(caller, b"", False, fields, call_id=call_id[:128])
    return render(await STATE_FLOWS[kind](services, incoming))


@router.get(
    STATE_PATHS["realtime"],
    response_model=CallState,
    summary="Get call state",
    description=STATE_DESCRIPTION,
    operation_id="get_call_state",
    response_description="The call as the service supervises it now.",
)
async def get_call_state(
    call_id: str, request: Request, services: ServicesDep, caller: CallerDep
) -> Response:
    """A Realtime call's state (`POST /v1/realtime/calls`' `Location`)."""
    return await _state("realtime", call_id, request, services, caller)


@router.get(
    STATE_PATHS["live"],
    response_model=CallState,
    summary="Get Live session state",
    description=STATE_DESCRIPTION,
    operation_id="get_live_session_state",
    response_description="The session as the service supervises it now.",
)
async def get_live_session_state(
    session_id: str, request: Request, services: ServicesDep, caller: CallerDep
) -> Response:
    """A GPT-Live session's state (`POST /v1/live/sessions`' `session.id`)."""
    return await _state("live", session_id, request, services, caller)
