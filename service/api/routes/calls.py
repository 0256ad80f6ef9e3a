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

from typing import get_args

from starlette.routing import BaseRoute

from service.api.bodies import LIVE_JSON, NOTHING, OFFER
from service.api.endpoint import Endpoint, post
from service.contract import CallKind
from service.sessions import PATHS, create_live_session, create_realtime_call, hang_up

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
