"""The answers' models, for the OpenAPI document only (the flows build plain JSON).

Each mirrors what an endpoint answers; the request models are the contract's
own (`service.contract`), the very ones that validate the bodies.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from service.contract import RealtimeSession, Session


class ClientSecret(BaseModel):
    """The minted secret: give `value` to the browser; it expires at `expires_at`."""

    value: str
    expires_at: int


class PolicyDecision(BaseModel):
    """One thing the policy did: defaulted, pinned or clamped a field."""

    param: str
    action: Literal["default", "pinned", "clamped"]
    reason: str
    applied: Any = None


class SessionCreated(Session):
    """`POST /v1/realtime/sessions` 200: the effective Session plus its secret."""

    model_config = ConfigDict(extra="allow", strict=False, frozen=False)
    object: Literal["realtime.session"] = "realtime.session"
    client_secret: ClientSecret
    policy_decisions: list[PolicyDecision] = Field(default_factory=list)


class ClientSecretCreated(BaseModel):
    """`POST /v1/realtime/client_secrets` 200: OpenAI's GA response."""

    value: str
    expires_at: int
    session: dict[str, Any]


class TranscriptionSessionCreated(BaseModel):
    """`POST /v1/realtime/transcription_sessions` 200: the beta transcription session."""

    model_config = ConfigDict(extra="allow")
    client_secret: ClientSecret
    policy_decisions: list[PolicyDecision] = Field(default_factory=list)


class DryRun(BaseModel):
    """`?dry_run=true`: what would be minted (or created), and why. Nothing is."""

    model_config = ConfigDict(extra="allow")
    dry_run: Literal[True]
    session: dict[str, Any]
    expires_after: dict[str, Any] | None = None
    """The secret's lifetime (mints only: a call lasts until hang-up)."""
    policy_decisions: list[PolicyDecision]


class LiveTransportAnswer(BaseModel):
    """The SDP answer for the browser."""

    type: Literal["webrtc"]
    sdp: str


class LiveSessionCreated(BaseModel):
    """`POST /v1/live/sessions` 200: OpenAI's answer; `session` adds the effective session."""

    session: dict[str, Any]
    transport: LiveTransportAnswer


class CallOffer(BaseModel):
    """`POST /v1/realtime/calls` as multipart: the browser's offer and, optionally, a session."""

    model_config = ConfigDict(extra="forbid")  # any other part is refused

    sdp: Annotated[str, Field(pattern="^v=0")]
    """The browser's SDP offer (a part with `Content-Type: application/sdp`)."""
    session: RealtimeSession | SkipJsonSchema[None] = None
    """The GA realtime session, as JSON (a part with `Content-Type: application/json`)."""


class ErrorBody(BaseModel):
    """OpenAI's error object."""

    model_config = ConfigDict(extra="allow")
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """OpenAI's error envelope: every non-2xx answer."""

    error: ErrorBody
