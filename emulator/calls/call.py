"""One emulated call with real media: an aiortc peer connection answering the browser's offer.

The browser offers audio and creates the `oai-events` data channel; the call
answers with a `ToneTrack` on the audio transceiver, emits `session.created` /
`session.started` once answered (the browser gets it, and whatever followed,
once its channel opens), one transcript event once inbound
audio arrives, and answers client events as `events` says (`BaseCall`); a
`response.create` from the browser's channel is spoken over `SPEAK_S` (in progress
meanwhile, for a `response.cancel` to end, as OpenAI streams it). Every
server event also goes to the call's subscribers (the sideband), which see all
of them.

Nothing of the SDP or of any transcript is logged, only sizes and states.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
import structlog
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from emulator.calls import events
from emulator.calls.base import BaseCall
from emulator.calls.errors import InvalidOffer
from emulator.calls.events import CallKind, Event
from emulator.calls.tone import ToneTrack

log = structlog.get_logger("emulator.calls", component="emulator")
# aiortc and aioice log every packet, ICE candidate and DTLS step at DEBUG: far
# too much for LOG_LEVEL=DEBUG, and addresses are nothing to keep.
for _name in ("aiortc", "aioice"):
    logging.getLogger(_name).setLevel(logging.WARNING)
CHANNEL_LABEL = "oai-events"
PENDING_LIMIT = 256
SPEAK_S = 1.0
"""How long the emulator takes to speak a response the browser asked for (its fixed
transcript): the response is in progress meanwhile, as OpenAI's stream would be."""
MESSAGE_LIMIT = 64 * 1024


class EmulatedCall(BaseCall):
    """A WebRTC call answered by the emulator (Realtime or Live)."""

    def __init__(
        self,
        call_id: str,
        kind: CallKind,
        session: Mapping[str, Any],
        on_closed: Callable[[BaseCall, str], Awaitable[None]],
        usage_interval: float | None = None,
        transcript_interval: float | None = None,
    ) -> None:
        super().__init__(call_id, kind, session, on_closed, usage_interval, transcript_interval)
        self.audio_frames_received = 0
        # No ICE servers: the emulator is reached directly (loopback or LAN), never via STUN.
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.tone = ToneTrack()
        self._channel: RTCDataChannel | None = None
        self._pending: deque[str] = deque(maxlen=PENDING_LIMIT)
        self._channel_open = False
        self._transcribed = False
        self.speak_s = SPEAK_S
        self.pc.add_listener("datachannel", self._on_datachannel)
        self.pc.add_listener("track", self._on_track)
        self.pc.add_listener("connectionstatechange", self._on_connection_state)

    @property
    def connection_state(self) -> str:
        """aiortc's `connectionState`: new, connecting, connected, failed or closed."""
        return str(self.pc.connectionState)

    async def answer(self, offer_sdp: str) -> str:
        """Apply the browser's offer and return the SDP answer (ICE candidates included)."""
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except Exception as error:  # aiortc's parser raises whatever a bad line causes
            raise InvalidOffer(
                f"The SDP offer could not be used ({type(error).__name__})."
            ) from None
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "audio" and transceiver.sender.track is None:
                self.pc.addTrack(self.tone)
                break
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)

    def _to_browser(self, event: Event) -> None:
        """Send on the data channel, or queue until it opens."""
        text = orjson.dumps(event).decode()
        if self._channel is not None and self._channel.readyState == "open":
            self._channel.send(text)
        else:
            self._pending.append(text)

    def _on_message(self, message: str | bytes) -> None:
        if isinstance(message, bytes) or len(message) > MESSAGE_LIMIT:
            self.emit(events.error_event("invalid_event", "Client events are JSON text."))
            return
        try:
            event = orjson.loads(message)
        except orjson.JSONDecodeError:
            self.emit(events.error_event("invalid_json", "The client event is not valid JSON."))
            return
        self.client_event(event, trusted=False, spoken=True)

    # aiortc callbacks.

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != CHANNEL_LABEL or self._channel is not None:
            return
        self._channel = channel
        channel.add_listener("message", self._on_message)
        if channel.readyState == "open":
            self._on_channel_open()
        else:
            channel.add_listener("open", self._on_channel_open)

    def _on_channel_open(self) -> None:
        """Deliver what was emitted before the channel opened, the opening event first."""
        if self._channel_open or self._channel is None:
            return
        self._channel_open = True
        pending = list(self._pending)
        self._pending.clear()
        for text in pending:
            self._channel.send(text)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._spawn(self._drain(track))

    async def _drain(self, track: MediaStreamTrack) -> None:
        """Read inbound media (aiortc queues decoded frames unboundedly otherwise)."""
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                if track.kind != "audio":
                    continue
                self.audio_frames_received += 1
                if not self._transcribed:
                    self._transcribed = True
                    log.info("call_audio_received", call_id=self.call_id, kind=self.kind)
                    self.heard(self.ms_since_created(time.monotonic()))

    def _on_connection_state(self) -> None:
        state = self.connection_state
        if state == "connected" and self.connected_at is None:
            self.connected_at = time.monotonic()
            log.info(
                "call_connected",
                call_id=self.call_id,
                kind=self.kind,
                seconds=round(self.connected_at - self.created_at, 3),
            )
        elif state in ("failed", "closed"):
            self.close_soon("connection_lost")

    async def _release_media(self) -> None:
        self.tone.stop()
        await self.pc.close()
