"""The emulator's call half: peers standing in for OpenAI's server-created calls.

Issue #12's server-created calls (`POST /v1/realtime/calls`,
`POST /v1/live/sessions`) end in a WebRTC peer connection between the browser
and OpenAI. In development the emulator answers them with aiortc
(`call.EmulatedCall`); with `fake_media` (benchmarks) it answers without any
media (`fake_media.FakeMediaCall`). `CallRegistry.accept(offer, kind, session)`
returns `(call_id, answer_sdp)`; `hangup`, `emit`, `subscribe` (via `get`),
`send_client_event` and `simulate_client_update` are what the HTTP routes and
the sidebands use, and `EmulatorSideband` is the in-process sideband. A
Realtime call answers client events by OpenAI's rules (`realtime`: what a
`session.update` may change; `conversation` and `responses`: items, responses,
cancellation, the audio buffers).

Nothing imported here needs aiortc (the `webrtc` extra): a WebRTC call imports
it when it is first made, and answers 501 without it.
"""

from emulator.calls.base import BaseCall, CallReport
from emulator.calls.errors import (
    MAX_OFFER_BYTES,
    CallLimitReached,
    InvalidOffer,
    UnknownCall,
    WebrtcUnavailable,
    validate_offer,
)
from emulator.calls.events import TRANSCRIPT, CallKind, Event
from emulator.calls.fake_media import FakeMediaCall
from emulator.calls.registry import CallEnded, CallRegistry
from emulator.calls.sideband import EmulatorSideband, EmulatorSidebandConnection

__all__ = [
    "MAX_OFFER_BYTES",
    "TRANSCRIPT",
    "BaseCall",
    "CallEnded",
    "CallKind",
    "CallLimitReached",
    "CallRegistry",
    "CallReport",
    "EmulatorSideband",
    "EmulatorSidebandConnection",
    "Event",
    "FakeMediaCall",
    "InvalidOffer",
    "UnknownCall",
    "WebrtcUnavailable",
    "validate_offer",
]
