"""Each door's request, read in one step: the GA session the policy reasons about, and its lifetime.

A flow hands the raw body to the reader for its endpoint and gets back a
typed session (and the client secret's asked lifetime, or the call's SDP
offer), or a 400 naming the field as the endpoint's callers spell it. The
beta doors also refuse what GA cannot carry and translate into the GA
session here, so the policy only ever sees GA sessions.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.contract.beta import SessionRequest
from service.contract.beta_transcription import TranscriptionSessionRequest, transcription_to_ga
from service.contract.ga import (
    ClientSecretRequest,
    RealtimeSession,
    TranscriptionSession,
    TranslationClientSecretRequest,
    TranslationSession,
)
from service.contract.live import LiveCreateRequest, LiveSession
from service.contract.offer import check_offer
from service.contract.parsing import parse, prompt_object_refused, translated
from service.contract.translate import check_carriable, to_ga


@dataclass(frozen=True, slots=True)
class SecretRequest:
    """A client-secret request: the GA session to mint, and the asked lifetime (None: default)."""

    session: RealtimeSession | TranscriptionSession | TranslationSession
    ttl_seconds: int | None


@dataclass(frozen=True, slots=True)
class CallRequest:
    """A call request: the session to create it with, and the browser's SDP offer."""

    session: RealtimeSession | LiveSession
    offer: str


def read_beta_session(body: bytes) -> SecretRequest:
    """`POST /v1/realtime/sessions`: the seed's beta Session, as a GA realtime session."""
    request = parse(SessionRequest, body, beta=True)
    check_carriable(request)
    expires = request.client_secret.expires_after if request.client_secret else None
    session = translated(RealtimeSession, to_ga(request))
    return SecretRequest(session, expires.seconds if expires else None)


def read_client_secret(body: bytes) -> SecretRequest:
    """`POST /v1/realtime/client_secrets`: OpenAI's GA request (realtime or transcription)."""
    request = parse(ClientSecretRequest, body)
    session = request.session or RealtimeSession(type="realtime")
    if isinstance(session, RealtimeSession) and session.prompt is not None:
        raise prompt_object_refused("session.prompt")
    seconds = request.expires_after.seconds if request.expires_after else None
    return SecretRequest(session, seconds)


def read_beta_transcription(body: bytes) -> SecretRequest:
    """`POST /v1/realtime/transcription_sessions`: the beta shape, as a GA transcription session."""
    request = parse(TranscriptionSessionRequest, body, beta=True)
    expires = request.client_secret.expires_at if request.client_secret else None
    session = translated(TranscriptionSession, transcription_to_ga(request))
    return SecretRequest(session, expires.seconds if expires else None)


def read_translation(body: bytes) -> SecretRequest:
    """`POST /v1/realtime/translations/client_secrets`: OpenAI's GA translation request."""
    request = parse(TranslationClientSecretRequest, body)
    seconds = request.expires_after.seconds if request.expires_after else None
    return SecretRequest(request.session, seconds)


def read_realtime_call(
    offer: bytes, session: bytes | None, max_sdp_bytes: int, model: str | None = None
) -> CallRequest:
    """`POST /v1/realtime/calls`: the `sdp` part, and the `session` part if sent.

    A bare offer has no session; its `?model=` (`model`), if any, is the
    only field it asks for, the policy's defaults the rest.
    """
    sdp = check_offer(offer, max_sdp_bytes)
    if session is not None:
        requested = parse(RealtimeSession, session, prefix="session")
    else:
        requested = RealtimeSession(type="realtime", model=model)
    if requested.prompt is not None:
        raise prompt_object_refused("session.prompt")
    return CallRequest(requested, sdp)


def read_live_session(body: bytes, max_sdp_bytes: int) -> CallRequest:
    """`POST /v1/live/sessions`: GPT-Live's `{session, transport}`, strictly."""
    request = parse(LiveCreateRequest, body)
    sdp = check_offer(request.transport.sdp, max_sdp_bytes, "transport.sdp")
    return CallRequest(request.session, sdp)
