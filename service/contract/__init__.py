"""The request shapes: OpenAI's GA sessions (canonical), the beta `Session`, and how they meet.

GPT-Live's `POST /v1/live/sessions` body (`LiveCreateRequest`) is modelled
in `live`, its delegation in `live_delegation`.

The GA realtime session is what the policy reasons about; the beta endpoint's
Session (the seed file's shape) is translated into it first, and answers are
translated back for beta callers. Parsing is strict: every failure is a 400
naming the field as OpenAI would (`param`).
"""

from service.contract.beta import Session, SessionRequest
from service.contract.beta_transcription import beta_transcription_param, transcription_beta_view
from service.contract.calls import CALL_ID, CallKind
from service.contract.ga import (
    ClientSecretRequest,
    RealtimeSession,
    TranscriptionSession,
    TranslationClientSecretRequest,
    TranslationSession,
)
from service.contract.live import (
    LIVE_CLIENT_EVENTS,
    LIVE_SESSION_CHANGING_EVENTS,
    LiveCreateRequest,
    LiveSession,
    LiveTransport,
)
from service.contract.live_delegation import Delegation, LiveDelegation, parse_delegation
from service.contract.parsing import invalid_request_from, param_of, parse, translated
from service.contract.requests import (
    CallRequest,
    SecretRequest,
    read_beta_session,
    read_beta_transcription,
    read_client_secret,
    read_live_session,
    read_realtime_call,
    read_translation,
)
from service.contract.translate import (
    beta_name,
    beta_param,
    beta_view,
    check_carriable,
    ga_param,
    to_ga,
)

__all__ = [
    "CALL_ID",
    "LIVE_CLIENT_EVENTS",
    "LIVE_SESSION_CHANGING_EVENTS",
    "CallKind",
    "CallRequest",
    "ClientSecretRequest",
    "Delegation",
    "LiveCreateRequest",
    "LiveDelegation",
    "LiveSession",
    "LiveTransport",
    "RealtimeSession",
    "SecretRequest",
    "Session",
    "SessionRequest",
    "TranscriptionSession",
    "TranslationClientSecretRequest",
    "TranslationSession",
    "beta_name",
    "beta_param",
    "beta_transcription_param",
    "beta_view",
    "check_carriable",
    "ga_param",
    "invalid_request_from",
    "param_of",
    "parse",
    "parse_delegation",
    "read_beta_session",
    "read_beta_transcription",
    "read_client_secret",
    "read_live_session",
    "read_realtime_call",
    "read_translation",
    "to_ga",
    "transcription_beta_view",
    "translated",
]
