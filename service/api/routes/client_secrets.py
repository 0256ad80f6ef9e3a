"""The client-secret endpoints: realtime, transcription and translation secrets, beta and GA.

Each is one `Endpoint` over one flow of `service.sessions.client_secrets`.
Mounted first in the app, so that the hot path matches on the first routes
tried.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from service.api.bodies import JSON
from service.api.endpoint import Endpoint, post
from service.sessions import (
    create_client_secret,
    create_session,
    create_transcription_session,
    create_translation_client_secret,
)

SESSIONS_PATH = "/v1/realtime/sessions"
CLIENT_SECRETS_PATH = "/v1/realtime/client_secrets"
TRANSCRIPTION_SESSIONS_PATH = "/v1/realtime/transcription_sessions"
TRANSLATION_CLIENT_SECRETS_PATH = "/v1/realtime/translations/client_secrets"

routes: list[BaseRoute] = [
    post(path, Endpoint(name, flow, JSON))
    for path, name, flow in (
        (SESSIONS_PATH, "sessions", create_session),
        (CLIENT_SECRETS_PATH, "client_secrets", create_client_secret),
        (TRANSCRIPTION_SESSIONS_PATH, "transcription_sessions", create_transcription_session),
        (
            TRANSLATION_CLIENT_SECRETS_PATH,
            "translation_client_secrets",
            create_translation_client_secret,
        ),
    )
]
