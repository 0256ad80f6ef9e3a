"""The call endpoints: create a WebRTC call for a browser, and hang it up.

- `POST /v1/realtime/calls`: OpenAI's shape, `multipart/form-data` with `sdp`
  and an optional `session` (the GA realtime session JSON), or a bare
  `application/sdp` offer (the session then comes from policy defaults).
  `201`, the SDP answer, `Location: /v1/realtime/calls/{call_id}`.
- `POST /v1/live/sessions`: GPT-Live's shape, JSON `{"session", "transport"}`;
  `200 {"session": {"id", ...}, "transport": {"type": "webrtc", "sdp"}}`.
- `POST /v1/realtime/calls/{call_id}/hangup`, `POST /v1/live/sessions/{id}/hangup`:
  only the caller who created the call; anyone else gets 404.

Each is one `Endpoint` over one flow of `service.sessions.calls`.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from service.api.bodies import LIVE_JSON, NOTHING, OFFER
from service.api.endpoint import Endpoint
from service.sessions import PATHS, create_live_session, create_realtime_call, hang_up

REALTIME_CALLS_PATH = PATHS["realtime"]
LIVE_SESSIONS_PATH = PATHS["live"]

routes: list[BaseRoute] = [
    Route(
        REALTIME_CALLS_PATH,
        Endpoint("realtime_calls", create_realtime_call, OFFER),
        methods=["POST"],
    ),
    Route(
        LIVE_SESSIONS_PATH,
        Endpoint("live_sessions", create_live_session, LIVE_JSON),
        methods=["POST"],
    ),
    Route(
        f"{REALTIME_CALLS_PATH}/{{call_id}}/hangup",
        Endpoint("realtime_hangup", hang_up("realtime"), NOTHING, counted=False, dry_runs=False),
        methods=["POST"],
    ),
    Route(
        f"{LIVE_SESSIONS_PATH}/{{call_id}}/hangup",
        Endpoint("live_hangup", hang_up("live"), NOTHING, counted=False, dry_runs=False),
        methods=["POST"],
    ),
]
