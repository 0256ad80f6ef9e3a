"""The flows: what each request does, one function per endpoint.

The HTTP edge (`service.api`) reads a request once and calls one flow with
the process's `Services` and the `Incoming` request; the flow enters each
lower package once (the contract to read, the policy to decide, the limits
to count, then the upstream to mint or the supervisor to create a call) and
returns an `Answer`. Client secrets in `client_secrets`, server-created
calls in `calls`, the policy step and its answers in `plan`.
"""

from service.sessions import admin
from service.sessions.calls import (
    PATHS,
    call_state,
    create_live_session,
    create_realtime_call,
    hang_up,
)
from service.sessions.client_secrets import (
    create_client_secret,
    create_session,
    create_transcription_session,
    create_translation_client_secret,
)
from service.sessions.context import Answer, Incoming, Services
from service.sessions.plan import Door, Plan, plan

__all__ = [
    "PATHS",
    "Answer",
    "Door",
    "Incoming",
    "Plan",
    "Services",
    "admin",
    "call_state",
    "create_client_secret",
    "create_live_session",
    "create_realtime_call",
    "create_session",
    "create_transcription_session",
    "create_translation_client_secret",
    "hang_up",
    "plan",
]
