"""The emulator's open calls, by id: create, find, hang up, and the record of endings.

Bounded: at most `max_calls` open calls (one more is a `CallLimitReached`), a
call that has not connected `connect_timeout` seconds after its answer is
closed, and a closed call leaves the registry at once. Endings are kept in a
short record (`endings`), with the call's override record and last session,
so a test can see that a hang-up reached the emulator after the call itself
is gone.

With `fake_media` every call is a `FakeMediaCall` (no aiortc, no connect
timeout); otherwise aiortc is imported at the first call, and its absence is a
501 `WebrtcUnavailable`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from emulator.calls import events
from emulator.calls.base import BaseCall, CallReport
from emulator.calls.errors import (
    CallLimitReached,
    UnknownCall,
    WebrtcUnavailable,
    validate_offer,
)
from emulator.calls.events import CallKind, Event
from emulator.calls.fake_media import FakeMediaCall

log = structlog.get_logger("emulator.calls", component="emulator")
MAX_CALLS = 32  # each idle call costs ~1 MiB and ~3 % of a core (tone + decoding)
CONNECT_TIMEOUT_S = 30.0
ANSWER_TIMEOUT_S = 10.0
FAKE_MEDIA_MAX_CALLS = 10_000  # a fake-media call is a few KiB and no CPU while idle
ENDINGS_KEPT = 1000
USAGE_INTERVAL_S = 5.0


@dataclass(frozen=True, slots=True)
class CallEnded:
    """How one call ended: `hangup` (the API), `close_requested` (Live's `session.close`),
    `connection_lost` (the peer went away), `connect_timeout` or `invalid_offer`."""

    call_id: str
    kind: CallKind
    reason: str
    ended_at: float
    ended_at_ms: int
    """Milliseconds from the call's creation to its end (monotonic clock)."""
    report: CallReport


class CallRegistry:
    """Every open emulated call, and how the recent ones ended."""

    def __init__(
        self,
        *,
        max_calls: int | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        answer_timeout: float = ANSWER_TIMEOUT_S,
        fake_media: bool = False,
        usage_interval: float | None = USAGE_INTERVAL_S,
        transcript_interval: float | None = None,
    ) -> None:
        default_max = FAKE_MEDIA_MAX_CALLS if fake_media else MAX_CALLS
        self.max_calls = default_max if max_calls is None else max_calls
        self.fake_media = fake_media
        self.usage_interval = usage_interval
        self.transcript_interval = transcript_interval
        self.connect_timeout = connect_timeout
        self.answer_timeout = answer_timeout
        self.endings: deque[CallEnded] = deque(maxlen=ENDINGS_KEPT)
        self._calls: dict[str, BaseCall] = {}
        self._watchdogs: set[asyncio.Task[None]] = set()

    @property
    def _ticks(self) -> tuple[float | None, float | None]:
        """A Live call's periodic events: usage reports, transcript fragments (seconds)."""
        return self.usage_interval, self.transcript_interval

    def __len__(self) -> int:
        return len(self._calls)

    async def accept(
        self, offer_sdp: object, kind: CallKind, session: Mapping[str, Any]
    ) -> tuple[str, str]:
        """Answer a browser's offer; return `(call_id, answer_sdp)`.

        `call_id` is `rtc_…` for Realtime and the Live session id (`sess_…`)
        for Live. Raises `InvalidOffer` (400 `invalid_sdp`) or `CallLimitReached` (429).
        """
        offer = validate_offer(offer_sdp)
        if len(self._calls) >= self.max_calls:
            raise CallLimitReached(f"The emulator holds {self.max_calls} open calls already.")
        call_id = events.new_id("rtc" if kind == "realtime" else "sess")
        if self.fake_media:
            fake = FakeMediaCall(call_id, kind, session, self._forget, *self._ticks)
            self._calls[call_id] = fake
            answer = fake.answer()
            fake.start()
            log.info("call_answered", call_id=call_id, kind=kind, fake_media=True)
            return call_id, answer
        call, answer = await self._accept_webrtc(call_id, offer, kind, session)
        log.info(
            "call_answered",
            call_id=call_id,
            kind=kind,
            offer_bytes=len(offer.encode()),
            answer_bytes=len(answer.encode()),
        )
        watchdog = asyncio.create_task(self._close_unless_connected(call))
        self._watchdogs.add(watchdog)
        watchdog.add_done_callback(self._watchdogs.discard)
        return call_id, answer

    async def _accept_webrtc(
        self, call_id: str, offer: str, kind: CallKind, session: Mapping[str, Any]
    ) -> tuple[BaseCall, str]:
        try:
            # Imported here: aiortc is the optional `webrtc` extra, and fake media needs none.
            from emulator.calls.call import EmulatedCall
        except ImportError as error:
            raise WebrtcUnavailable.missing(error) from None
        call = EmulatedCall(call_id, kind, session, self._forget, *self._ticks)
        self._calls[call_id] = call
        try:
            async with asyncio.timeout(self.answer_timeout):
                answer = await call.answer(offer)
        except BaseException:
            await call.close("invalid_offer")
            raise
        call.start()
        return call, answer

    def answer_phone(self, call_id: str, kind: CallKind, session: Mapping[str, Any]) -> BaseCall:
        """Open an accepted SIP call under its own id: fake media (the phone leg has no
        WebRTC peer here), connected and on the sideband at once; `CallLimitReached` if full."""
        if len(self._calls) >= self.max_calls:
            raise CallLimitReached(f"The emulator holds {self.max_calls} open calls already.")
        call = FakeMediaCall(call_id, kind, session, self._forget, *self._ticks)
        self._calls[call_id] = call
        call.answer()
        call.start()
        log.info("call_answered", call_id=call_id, kind=kind, sip=True)
        return call

    def get(self, call_id: str) -> BaseCall:
        """The open call with this id; `UnknownCall` (404) if there is none."""
        call = self._calls.get(call_id)
        if call is None:
            raise UnknownCall(f"No open call with id '{call_id[:64]}'.")
        return call

    async def hangup(self, call_id: str) -> None:
        """End a call as `POST …/hangup` does; `UnknownCall` if it is not open."""
        await self.get(call_id).close("hangup")

    def emit(self, call_id: str, event: Event) -> Event:
        """Send a server event on a call (data channel and subscribers), as if OpenAI had."""
        return self.get(call_id).emit(event)

    def send_client_event(
        self, call_id: str, event: object, *, trusted: bool = True
    ) -> list[Event]:
        """Apply a client event from the sideband (trusted: no Live allow-list)."""
        return self.get(call_id).client_event(event, trusted=trusted)

    def simulate_client_update(
        self, call_id: str, session_fields: Mapping[str, Any]
    ) -> list[Event]:
        """Apply `session.update` as if the browser had sent it on its data channel.

        Returns what the call emitted: `session.updated` with the merged session,
        or the `error` event if it is refused (a Live allow-list, a Realtime
        change of model, or of voice once audio was produced).
        """
        event = {"type": "session.update", "session": dict(session_fields)}
        return self.get(call_id).client_event(event, trusted=False)

    def ended(self, call_id: str) -> CallEnded | None:
        """How a recent call ended, or None if it is open or unknown."""
        for ending in reversed(self.endings):
            if ending.call_id == call_id:
                return ending
        return None

    async def close_all(self) -> None:
        """Hang up every open call (the emulator's shutdown)."""
        for watchdog in list(self._watchdogs):
            watchdog.cancel()
        await asyncio.gather(*(call.close("hangup") for call in list(self._calls.values())))

    async def _forget(self, call: BaseCall, reason: str) -> None:
        if self._calls.pop(call.call_id, None) is None:
            return
        ended_at_ms = call.ms_since_created(time.monotonic())
        ending = CallEnded(call.call_id, call.kind, reason, time.time(), ended_at_ms, call.report())
        self.endings.append(ending)
        log.info("call_ended", call_id=call.call_id, kind=call.kind, reason=reason)

    async def _close_unless_connected(self, call: BaseCall) -> None:
        await asyncio.sleep(self.connect_timeout)
        if call.connected_at is None:
            await call.close("connect_timeout")
