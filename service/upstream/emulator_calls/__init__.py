"""The emulator's WebRTC half: real peer connections standing in for OpenAI's calls.

Issue #12's server-created calls (`POST /v1/realtime/calls`,
`POST /v1/live/sessions`) end in a WebRTC peer connection between the browser
and OpenAI. In development the emulator answers them with aiortc:
`CallRegistry.accept(offer, kind, session)` returns `(call_id, answer_sdp)`
and the call then speaks on the `oai-events` data channel and plays a tone.
`hangup`, `emit`, `subscribe` (via `get`), `send_client_event` and
`simulate_client_update` are what the HTTP routes and the sidebands use.

Needs the `webrtc` extra (aiortc); the production image has no emulator calls.
"""

from service.upstream.emulator_calls.call import CHANNEL_LABEL, EmulatedCall
from service.upstream.emulator_calls.errors import (
    MAX_OFFER_BYTES,
    CallLimitReached,
    InvalidOffer,
    UnknownCall,
    validate_offer,
)
from service.upstream.emulator_calls.events import TRANSCRIPT, CallKind, Event
from service.upstream.emulator_calls.registry import CallEnded, CallRegistry

__all__ = [
    "CHANNEL_LABEL",
    "MAX_OFFER_BYTES",
    "TRANSCRIPT",
    "CallEnded",
    "CallKind",
    "CallLimitReached",
    "CallRegistry",
    "EmulatedCall",
    "Event",
    "InvalidOffer",
    "UnknownCall",
    "validate_offer",
]
