"""The emulator's WebRTC peer: real aiortc calls on loopback, a Python peer playing the browser.

The browser's side is an aiortc offerer with what the snippet in docs/clients.md sets
up: a microphone track (a generated tone) and the `oai-events` data channel.
Events are validated against the openai SDK's own models.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from openai.types.live import ErrorEvent, SessionStartedEvent, SessionUpdatedEvent
from openai.types.live.input_transcript_delta_event import InputTranscriptDeltaEvent
from openai.types.realtime import (
    ConversationItemAdded,
    ConversationItemDone,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    RealtimeSessionCreateRequest,
    ResponseCreatedEvent,
    ResponseDoneEvent,
    SessionCreatedEvent,
)

from emulator.calls import (
    TRANSCRIPT,
    CallLimitReached,
    CallRegistry,
    InvalidOffer,
    UnknownCall,
)
from emulator.calls.call import EmulatedCall
from emulator.calls.tone import ToneTrack
from service.core import logs
from tests.suite_logs import captured_logs

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]
WAIT_S = 20.0
"""How long to wait for an event before calling it a hang (generous: a loaded machine is slow,
never wrong; pytest-timeout bounds the whole test)."""
REALTIME_SESSION: dict[str, Any] = {
    "type": "realtime",
    "model": "gpt-realtime",
    "output_modalities": ["audio"],
    "audio": {"output": {"voice": "marin"}},
}
QUIET_SESSION: dict[str, Any] = {
    **REALTIME_SESSION,
    "audio": {
        "input": {"turn_detection": {"type": "server_vad", "create_response": False}},
        "output": {"voice": "marin"},
    },
}
"""A Realtime session whose heard turns start no response (`create_response: false`)."""
LIVE_SESSION: dict[str, Any] = {
    "model": "gpt-live-1",
    "audio": {"output": {"voice": "marin"}},
    "client": {"data_channel": {"allowed_client_events": ["session.input_audio.mute"]}},
}


class BrowserPeer:
    """The browser's side of a call: offers a microphone and the `oai-events` channel."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(ToneTrack())
        self.channel = self.pc.createDataChannel("oai-events")
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.connected = asyncio.Event()
        self.channel_closed = asyncio.Event()
        self.audio_frames = 0
        self.audio_arrived = asyncio.Event()
        self.track_kinds: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.channel.add_listener("message", self._on_message)
        self.channel.add_listener("close", self.channel_closed.set)
        self.pc.add_listener("track", self._on_track)
        self.pc.add_listener("connectionstatechange", self._on_state)

    async def offer(self) -> str:
        """The SDP offer, with its host candidates, as the emulator receives it."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def apply(self, answer_sdp: str) -> None:
        """Apply the emulator's answer, as the browser does."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    def send(self, event: dict[str, Any]) -> None:
        """Send a client event on the data channel."""
        self.channel.send(orjson.dumps(event).decode())

    async def next_event(self, event_type: str) -> dict[str, Any]:
        """The next server event of this type (others are skipped), within WAIT_S."""
        async with asyncio.timeout(WAIT_S):
            while True:
                event = await self.events.get()
                if event["type"] == event_type:
                    return event

    async def close(self) -> None:
        """Close the peer and stop reading media."""
        await self.pc.close()
        for task in self._tasks:
            task.cancel()

    def _on_message(self, message: str | bytes) -> None:
        self.events.put_nowait(orjson.loads(message))

    def _on_state(self) -> None:
        if self.pc.connectionState == "connected":
            self.connected.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self.track_kinds.append(track.kind)
        task = asyncio.ensure_future(self._read(track))
        self._tasks.add(task)

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.audio_frames += 1
                self.audio_arrived.set()


@pytest.fixture(name="registry")
async def fixture_registry() -> AsyncIterator[CallRegistry]:
    """An emulator call registry, every call hung up afterwards."""
    registry = CallRegistry(max_calls=4)
    yield registry
    await registry.close_all()
    # Write the calls' last log lines now: the suite's log file may close before
    # the buffer's next periodic flush when this file runs alone.
    logs.flush()


@pytest.fixture(name="browser")
async def fixture_browser() -> AsyncIterator[BrowserPeer]:
    """A browser-side peer, closed afterwards."""
    peer = BrowserPeer()
    yield peer
    await peer.close()


async def connect(
    registry: CallRegistry, browser: BrowserPeer, kind: Any, session: dict[str, Any]
) -> str:
    """Offer, have the emulator answer, apply the answer, and wait for `connected`."""
    call_id, answer = await registry.accept(await browser.offer(), kind, session)
    await browser.apply(answer)
    async with asyncio.timeout(WAIT_S):
        await browser.connected.wait()
    return call_id


class TestRealtimeCall:
    """A Realtime call (`POST /v1/realtime/calls`'s peer)."""

    async def test_connects_and_sends_session_created(
        self, registry: CallRegistry, browser: BrowserPeer
    ) -> None:
        """The call connects and `session.created` with the session arrives on `oai-events`."""
        call_id = await connect(registry, browser, "realtime", REALTIME_SESSION)
        event = SessionCreatedEvent.model_validate(await browser.next_event("session.created"))
        assert re.fullmatch(r"rtc_[0-9a-f]{24}", call_id)
        assert isinstance(event.session, RealtimeSessionCreateRequest)
        assert event.session.model == "gpt-realtime"
        assert registry.get(call_id).connection_state == "connected"

    async def test_plays_audio_to_the_browser(
        self, registry: CallRegistry, browser: BrowserPeer
    ) -> None:
        """The browser's `ontrack` fires with an audio track and frames arrive on it."""
        await connect(registry, browser, "realtime", REALTIME_SESSION)
        async with asyncio.timeout(WAIT_S):
            await browser.audio_arrived.wait()
        assert browser.track_kinds == ["audio"]
        assert browser.audio_frames >= 1

    async def test_transcript_once_after_browser_audio(
        self, registry: CallRegistry, browser: BrowserPeer
    ) -> None:
        """Inbound audio gets one transcription-completed event, however many frames follow."""
        call_id = await connect(registry, browser, "realtime", REALTIME_SESSION)
        event = ConversationItemInputAudioTranscriptionCompletedEvent.model_validate(
            await browser.next_event("conversation.item.input_audio_transcription.completed")
        )
        call = registry.get(call_id)
        assert isinstance(call, EmulatedCall)
        async with asyncio.timeout(WAIT_S):
            while call.audio_frames_received < 10:
                await asyncio.sleep(0.05)
        kinds = [e["type"] for e in call.history]
        assert event.transcript == TRANSCRIPT
        assert kinds.count("conversation.item.input_audio_transcription.completed") == 1

    async def test_transcribed_item_is_announced_first(
        self, registry: CallRegistry, browser: BrowserPeer
    ) -> None:
        """The user item is `conversation.item.added` before its transcription events."""
        await connect(registry, browser, "realtime", REALTIME_SESSION)
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(WAIT_S):
            while not seen or seen[-1]["type"] != "conversation.item.done":
                seen.append(await browser.events.get())
        transcribed = next(
            event
            for event in seen
            if event["type"] == "conversation.item.input_audio_transcription.completed"
        )
        added = ConversationItemAdded.model_validate(
            next(event for event in seen if event["type"] == "conversation.item.added")
        )
        done = ConversationItemDone.model_validate(seen[-1])
        assert seen.index(transcribed) > [event["type"] for event in seen].index(
            "conversation.item.added"
        )
        assert added.item.id == transcribed["item_id"] == done.item.id
        assert (added.item.type, getattr(added.item, "role", None)) == ("message", "user")

    async def test_data_channel_response_create_with_overrides(
        self, registry: CallRegistry, browser: BrowserPeer
    ) -> None:
        """`response.create` on `oai-events` gets `response.created` shaped by its overrides."""
        # No response of the heard turn's own: the one created is the browser's.
        call_id = await connect(registry, browser, "realtime", QUIET_SESSION)
        await browser.next_event("session.created")
        overrides = {
            "audio": {"output": {"voice": "cedar"}},
            "output_modalities": ["text"],
            "max_output_tokens": 40,
            "metadata": {"turn": "greeting"},
        }
        browser.send({"type": "response.create", "response": overrides})
        created = ResponseCreatedEvent.model_validate(
            await browser.next_event("response.created")
        ).response
        done = ResponseDoneEvent.model_validate(await browser.next_event("response.done"))
        assert created.audio is not None
        assert created.audio.output is not None
        assert (
            created.audio.output.voice,
            created.output_modalities,
            created.max_output_tokens,
            created.metadata,
        ) == ("cedar", ["text"], 40, {"turn": "greeting"})
        assert done.response.id == created.id
        assert registry.get(call_id).client_events[-1].source == "data_channel"

    async def test_heard_turn_is_answered_on_the_data_channel(
        self, registry: CallRegistry, browser: BrowserPeer
    ) -> None:
        """OpenAI's default turn detection (server_vad, `create_response` true): the browser's
        audio, once its turn is committed, gets a whole response on `oai-events`, after the
        user item and answering it."""
        await connect(registry, browser, "realtime", REALTIME_SESSION)
        committed = await browser.next_event("input_audio_buffer.committed")
        created = ResponseCreatedEvent.model_validate(await browser.next_event("response.created"))
        added = ConversationItemAdded.model_validate(
            await browser.next_event("conversation.item.added")
        )
        done = ResponseDoneEvent.model_validate(await browser.next_event("response.done"))
        assert added.previous_item_id == committed["item_id"]
        assert (added.item.type, getattr(added.item, "role", None)) == ("message", "assistant")
        assert done.response.id == created.response.id
        assert done.response.status == "completed"

    async def test_heard_turn_without_create_response_is_not_answered(
        self, registry: CallRegistry, browser: BrowserPeer
    ) -> None:
        """With `create_response: false` the heard turn is committed and transcribed, and no
        response follows: everything up to the answer of a later client event is seen."""
        await connect(registry, browser, "realtime", QUIET_SESSION)
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(WAIT_S):
            while not seen or seen[-1]["type"] != "conversation.item.done":
                seen.append(await browser.events.get())
        user_item = seen[-1]["item"]["id"]
        # The channel is ordered: a response of the turn would come before this answer.
        browser.send({"type": "conversation.item.retrieve", "item_id": user_item})
        async with asyncio.timeout(WAIT_S):
            while seen[-1]["type"] != "conversation.item.retrieved":
                seen.append(await browser.events.get())
        kinds = [event["type"] for event in seen]
        assert "input_audio_buffer.committed" in kinds
        assert "response.created" not in kinds
        assert seen[-1]["item"]["role"] == "user"

    async def test_data_channel_system_item_is_added(
        self, registry: CallRegistry, browser: BrowserPeer
    ) -> None:
        """A system item created on `oai-events` is announced with an `item_…` id."""
        await connect(registry, browser, "realtime", REALTIME_SESSION)
        await browser.next_event("session.created")
        item = {
            "type": "message",
            "role": "system",
            "content": [{"type": "input_text", "text": "x"}],
        }
        browser.send({"type": "conversation.item.create", "item": item})
        async with asyncio.timeout(WAIT_S):
            while True:  # the heard audio's own user item may come first
                added = ConversationItemAdded.model_validate(
                    await browser.next_event("conversation.item.added")
                )
                if getattr(added.item, "role", None) == "system":
                    break
        assert added.item.id is not None
        assert re.fullmatch(r"item_[0-9a-f]{24}", added.item.id)

    async def test_hangup_closes_and_is_recorded(
        self, registry: CallRegistry, browser: BrowserPeer
    ) -> None:
        """A hang-up closes the peer connection, frees the call and is recorded."""
        call_id = await connect(registry, browser, "realtime", REALTIME_SESSION)
        await browser.next_event("session.created")
        call = registry.get(call_id)
        await registry.hangup(call_id)
        async with asyncio.timeout(WAIT_S):
            await browser.channel_closed.wait()
        ending = registry.ended(call_id)
        assert call.connection_state == "closed"
        assert ending is not None
        assert ending.reason == "hangup"
        assert len(registry) == 0
        with pytest.raises(UnknownCall):
            await registry.hangup(call_id)

    async def test_browser_session_update_reaches_subscribers(
        self, registry: CallRegistry, browser: BrowserPeer
    ) -> None:
        """A browser's `session.update` is applied and `session.updated` reaches the sideband."""
        call_id = await connect(registry, browser, "realtime", REALTIME_SESSION)
        await browser.next_event("session.created")
        sideband = registry.get(call_id).subscribe()
        browser.send({"type": "session.update", "session": {"instructions": "Be a pirate."}})
        async with asyncio.timeout(WAIT_S):
            seen = await sideband.get()
            while seen["type"] != "session.updated":  # the transcript may come first
                seen = await sideband.get()
        assert seen["session"]["instructions"] == "Be a pirate."
        assert seen["session"]["audio"]["output"]["voice"] == "marin"

    async def test_simulated_update_and_emit(
        self, registry: CallRegistry, browser: BrowserPeer
    ) -> None:
        """`simulate_client_update` and `emit` reach both the browser and subscribers."""
        call_id = await connect(registry, browser, "realtime", REALTIME_SESSION)
        sideband = registry.get(call_id).subscribe()
        registry.simulate_client_update(call_id, {"tracing": "auto"})
        registry.emit(call_id, {"type": "response.done", "response": {"usage": {}}})
        updated = await browser.next_event("session.updated")
        await browser.next_event("response.done")
        assert updated["session"]["tracing"] == "auto"
        assert [sideband.get_nowait()["type"] for _ in range(3)] == [
            "session.created",
            "session.updated",
            "response.done",
        ]

    async def test_session_created_comes_before_any_session_updated(
        self, registry: CallRegistry, browser: BrowserPeer
    ) -> None:
        """A sideband's update before the channel opens follows `session.created` on both sides."""
        call_id, answer = await registry.accept(await browser.offer(), "realtime", REALTIME_SESSION)
        sideband = registry.get(call_id).subscribe()
        update = {"type": "session.update", "session": {"type": "realtime", "instructions": "x"}}
        registry.send_client_event(call_id, update)
        await browser.apply(answer)
        seen_by_browser: list[str] = []
        async with asyncio.timeout(WAIT_S):
            while "session.updated" not in seen_by_browser:
                seen_by_browser.append((await browser.events.get())["type"])
        seen_by_sideband = [sideband.get_nowait()["type"] for _ in range(2)]
        assert seen_by_sideband == ["session.created", "session.updated"]
        assert seen_by_browser[:2] == ["session.created", "session.updated"]

    async def test_offer_without_candidates_connects(
        self, registry: CallRegistry, browser: BrowserPeer
    ) -> None:
        """An offer posted before trickling candidates (as browsers do) still connects."""
        offer = "".join(
            line
            for line in (await browser.offer()).splitlines(keepends=True)
            if not line.startswith(("a=candidate", "a=end-of-candidates"))
        )
        _, answer = await registry.accept(offer, "realtime", REALTIME_SESSION)
        await browser.apply(answer)
        async with asyncio.timeout(WAIT_S):
            await browser.connected.wait()
        assert await browser.next_event("session.created")

    async def test_logs_sizes_not_content(
        self, registry: CallRegistry, browser: BrowserPeer
    ) -> None:
        """The call's log lines carry the SDP's size, never the SDP or the transcript."""
        with captured_logs() as lines:
            call_id = await connect(registry, browser, "realtime", REALTIME_SESSION)
            await browser.next_event("conversation.item.input_audio_transcription.completed")
            await registry.hangup(call_id)
        logged = orjson.dumps(lines).decode()
        answered = next(line for line in lines if line["event"] == "call_answered")
        assert answered["offer_bytes"] == len(browser.pc.localDescription.sdp.encode())
        assert [line["event"] for line in lines][-1] == "call_ended"
        # In-process, the emulator's lines share the service's log: each says whose it is.
        assert {line.get("component") for line in lines} == {"emulator"}
        assert "v=0" not in logged
        assert "candidate" not in logged
        assert TRANSCRIPT not in logged


class TestLiveCall:
    """A GPT-Live session (`POST /v1/live/sessions`'s peer)."""

    async def test_sends_session_started(
        self, registry: CallRegistry, browser: BrowserPeer
    ) -> None:
        """`session.started` carries the session id and config, then a transcript delta follows."""
        session_id = await connect(registry, browser, "live", LIVE_SESSION)
        started = SessionStartedEvent.model_validate(await browser.next_event("session.started"))
        delta = InputTranscriptDeltaEvent.model_validate(
            await browser.next_event("session.input_transcript.delta")
        )
        assert started.session.id == session_id
        assert started.session.model == "gpt-live-1"
        assert delta.delta == TRANSCRIPT

    async def test_refused_client_event_gets_error(
        self, registry: CallRegistry, browser: BrowserPeer
    ) -> None:
        """A client event outside `allowed_client_events` gets an `error` naming it."""
        session_id = await connect(registry, browser, "live", LIVE_SESSION)
        await browser.next_event("session.started")
        browser.send({"type": "session.update", "event_id": "evt_1", "session": {}})
        error = ErrorEvent.model_validate(await browser.next_event("error"))
        assert error.error.code == "client_event_not_allowed"
        assert "session.update" in error.error.message
        assert error.error.client_event_id == "evt_1"
        assert "session.updated" not in [e["type"] for e in registry.get(session_id).history]

    async def test_allowed_client_event_is_answered(
        self, registry: CallRegistry, browser: BrowserPeer
    ) -> None:
        """An allowed client event gets its acknowledgement."""
        await connect(registry, browser, "live", LIVE_SESSION)
        await browser.next_event("session.started")
        browser.send({"type": "session.input_audio.mute", "event_id": "evt_2"})
        muted = await browser.next_event("session.input_audio.muted")
        assert muted["client_event_id"] == "evt_2"

    async def test_sideband_update_is_trusted(
        self, registry: CallRegistry, browser: BrowserPeer
    ) -> None:
        """The sideband's `session.update` bypasses the browser's allow-list."""
        session_id = await connect(registry, browser, "live", LIVE_SESSION)
        update = {"type": "session.update", "session": {"delegation": {"type": "client"}}}
        [updated] = registry.send_client_event(session_id, update)
        assert SessionUpdatedEvent.model_validate(updated).session.id == session_id
        assert updated["session"]["delegation"] == {"type": "client"}

    async def test_session_close_ends_the_call(
        self, registry: CallRegistry, browser: BrowserPeer
    ) -> None:
        """A permitted `session.close` gets `session.closed` and ends the call."""
        session = {**LIVE_SESSION, "client": {"data_channel": {"allowed_client_events": "all"}}}
        session_id = await connect(registry, browser, "live", session)
        await browser.next_event("session.started")
        browser.send({"type": "session.close"})
        closed = await browser.next_event("session.closed")
        async with asyncio.timeout(WAIT_S):
            await browser.channel_closed.wait()
        ending = registry.ended(session_id)
        assert closed["reason"] == "close_requested"
        assert ending is not None
        assert ending.reason == "close_requested"


class TestOffers:
    """What `accept` refuses before any call exists."""

    @pytest.mark.parametrize(
        "offer",
        [
            pytest.param(b"\xff\xfe v=0", id="not-utf8"),
            pytest.param(42, id="not-text"),
            pytest.param("o=- 1 1 IN IP4 0.0.0.0\r\n", id="no-v=0"),
            pytest.param("v=0\r\n" + "a=x\r\n" * 20_000, id="over-64KiB"),
            pytest.param("v=0\r\nm=audio nonsense\r\n", id="unusable"),
        ],
    )
    async def test_invalid_offer_is_refused(self, registry: CallRegistry, offer: object) -> None:
        """Anything but a usable SDP offer is `invalid_sdp` (400), and no call is kept."""
        with pytest.raises(InvalidOffer) as refused:
            await registry.accept(offer, "realtime", REALTIME_SESSION)
        assert refused.value.status_code == 400
        assert refused.value.code == "invalid_sdp"
        assert len(registry) == 0

    async def test_call_limit(self, registry: CallRegistry) -> None:
        """Past `max_calls` open calls, another is refused with 429."""
        peers = [BrowserPeer() for _ in range(registry.max_calls + 1)]
        try:
            for peer in peers[:-1]:
                await registry.accept(await peer.offer(), "realtime", REALTIME_SESSION)
            with pytest.raises(CallLimitReached) as refused:
                await registry.accept(await peers[-1].offer(), "realtime", REALTIME_SESSION)
        finally:
            await asyncio.gather(*(peer.close() for peer in peers))
        assert refused.value.status_code == 429

    async def test_unconnected_call_times_out(self, browser: BrowserPeer) -> None:
        """A call whose answer is never applied is closed after `connect_timeout`."""
        registry = CallRegistry(connect_timeout=0.2)
        call_id, _ = await registry.accept(await browser.offer(), "realtime", REALTIME_SESSION)
        async with asyncio.timeout(WAIT_S):
            while registry.ended(call_id) is None:
                await asyncio.sleep(0.05)
        logs.flush()
        ending = registry.ended(call_id)
        assert ending is not None
        assert ending.reason == "connect_timeout"
        assert len(registry) == 0
