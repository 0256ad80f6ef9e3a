"""The emulator's test controls, its in-process sideband, and fake-media calls.

Most tests run the emulator in process (`httpx.ASGITransport`, as
`UPSTREAM_EMULATOR=true` does) with `fake_media`, so no aiortc peer is needed;
one runs `python -m service emulator --fake-media` for the WebSocket sideband,
and one a fresh interpreter where aiortc cannot be imported. Usage events are
validated against OpenAI's published schema and the openai SDK's models.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from openai.types.live import (
    InputTranscriptDeltaEvent,
    SessionClosedEvent,
    SessionUsageUpdatedEvent,
)
from openai.types.realtime import ResponseDoneEvent
from websockets.asyncio.client import connect

from emulator import Emulator
from emulator.calls import TRANSCRIPT, EmulatorSideband
from emulator.calls.events import transcript
from emulator.calls.sideband import (
    CLOSE_NORMAL,
    CLOSE_UNKNOWN_CALL,
    EmulatorSidebandConnection,
    SidebandEnded,
)
from tests.contract import ga_errors
from tests.emulators import emulator_client, fake_media_emulator
from tests.servers import ROOT, ServiceProcess, free_port

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]
KEY = {"Authorization": "Bearer sk-emulator-test"}
SDP_HEADERS = {**KEY, "Content-Type": "application/sdp"}
OFFER = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
LIVE_SESSION: dict[str, Any] = {
    "model": "gpt-live-1",
    "audio": {"output": {"voice": "marin"}},
    "client": {"data_channel": {"allowed_client_events": ["session.input_audio.mute"]}},
}
OVERRIDE = {
    "type": "session.update",
    "session": {
        "type": "realtime",
        "instructions": "override",
        "audio": {"output": {"voice": "verse"}},
    },
}
WAIT_S = 20.0
"""How long to wait for an event before calling it a hang (generous: a loaded machine is slow,
never wrong; pytest-timeout bounds the whole test)."""
SIDEBAND_LOG = logging.getLogger("tests.sideband_client")
SIDEBAND_LOG.setLevel(logging.WARNING)  # the handshake's headers carry the key


@pytest.fixture(name="emulator")
async def fixture_emulator() -> AsyncIterator[Emulator]:
    """An in-process fake-media emulator, every call hung up afterwards."""
    async with fake_media_emulator(usage_interval=0.05) as app:
        yield app


@pytest.fixture(name="http")
async def fixture_http(emulator: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the in-process emulator."""
    async with emulator_client(emulator) as client:
        yield client


@pytest.fixture(name="sideband")
def fixture_sideband(emulator: Emulator) -> EmulatorSideband:
    """The in-process sideband to the emulator's calls."""
    return emulator.sideband()


async def realtime_call(http: httpx.AsyncClient) -> str:
    """Create a fake-media Realtime call from a bare offer; its id."""
    response = await http.post("/v1/realtime/calls", content=OFFER, headers=SDP_HEADERS)
    assert response.status_code == 201, response.text
    call_id: str = response.headers["location"].rsplit("/", 1)[1]
    return call_id


async def live_call(http: httpx.AsyncClient) -> str:
    """Create a fake-media Live session with an allow-list; its id."""
    body = {"session": LIVE_SESSION, "transport": {"type": "webrtc", "sdp": OFFER.decode()}}
    response = await http.post("/v1/live/sessions", json=body, headers=KEY)
    assert response.status_code == 200, response.text
    session_id: str = response.json()["session"]["id"]
    return session_id


async def next_of(connection: EmulatorSidebandConnection, event_type: str) -> dict[str, Any]:
    """The next event of this type on the sideband (others skipped), within WAIT_S."""
    async with asyncio.timeout(WAIT_S):
        while True:
            event = await connection.recv()
            if event["type"] == event_type:
                return event


class TestFakeMedia:
    """`fake_media`: calls answered without aiortc, alive until hung up."""

    async def test_realtime_call_is_connected_at_once(self, http: httpx.AsyncClient) -> None:
        """A bare `v=0` offer gets a 201 with a canned SDP answer and the call is connected."""
        response = await http.post("/v1/realtime/calls", content=OFFER, headers=SDP_HEADERS)
        assert response.status_code == 201
        assert response.text.startswith("v=0\r\n")
        assert "m=audio" in response.text
        call_id = response.headers["location"].rsplit("/", 1)[1]
        record = (await http.get(f"/_emulator/calls/{call_id}")).json()
        assert record["state"] == "connected"
        assert record["ended"] is None

    async def test_live_session_answers_json(self, http: httpx.AsyncClient) -> None:
        """A Live session is answered with its id and a canned WebRTC answer."""
        body = {"session": LIVE_SESSION, "transport": {"type": "webrtc", "sdp": OFFER.decode()}}
        answer = (await http.post("/v1/live/sessions", json=body, headers=KEY)).json()
        assert answer["session"]["id"].startswith("sess_")
        assert answer["transport"]["sdp"].startswith("v=0")

    async def test_non_sdp_offer_is_400(self, http: httpx.AsyncClient) -> None:
        """An offer that does not start with `v=0` is refused as without fake media."""
        response = await http.post("/v1/realtime/calls", content=b"hello", headers=SDP_HEADERS)
        assert response.json()["error"]["code"] == "invalid_sdp"

    async def test_sideband_starts_with_opening_event(
        self, http: httpx.AsyncClient, sideband: EmulatorSideband
    ) -> None:
        """A sideband attached after the answer still sees `session.created` first."""
        call_id = await realtime_call(http)
        connection = await sideband.connect("realtime", call_id)
        assert (await connection.recv())["type"] == "session.created"

    async def test_hangup_is_recorded_with_time(self, http: httpx.AsyncClient) -> None:
        """A hang-up ends the call; the record says `hangup` and when, in ms from creation."""
        call_id = await realtime_call(http)
        hangup = await http.post(f"/v1/realtime/calls/{call_id}/hangup", headers=KEY)
        assert hangup.status_code == 200
        record = (await http.get(f"/_emulator/calls/{call_id}")).json()
        assert record["state"] == "closed"
        assert record["ended"] == "hangup"
        assert record["ended_at_ms"] >= 0
        assert record["session"]["type"] == "realtime"

    def test_works_without_aiortc(self) -> None:
        """Without aiortc a fake-media call works end to end; a WebRTC call answers 501."""
        script = textwrap.dedent(
            """
            import asyncio, sys
            sys.modules["aiortc"] = None
            import httpx
            from emulator import create_emulator

            async def main():
                fake = create_emulator(fake_media=True)
                real = create_emulator()
                headers = {"Authorization": "Bearer sk-x", "Content-Type": "application/sdp"}
                for app, expected in ((fake, 201), (real, 501)):
                    transport = httpx.ASGITransport(app=app)
                    async with httpx.AsyncClient(transport=transport, base_url="http://e") as c:
                        offer = b"v=0\\r\\n"
                        r = await c.post("/v1/realtime/calls", content=offer, headers=headers)
                        assert r.status_code == expected, r.text
                        if expected == 201:
                            call_id = r.headers["location"].rsplit("/", 1)[1]
                            connection = await app.sideband().connect("realtime", call_id)
                            assert (await connection.recv())["type"] == "session.created"
                            await c.post(f"/v1/realtime/calls/{call_id}/hangup", headers=headers)
                        else:
                            assert "aiortc" in r.json()["error"]["message"]
                assert "aiortc.rtcpeerconnection" not in sys.modules
                print("ok")

            asyncio.run(main())
            """
        )
        environment = {**os.environ, "PYTHONPATH": str(ROOT)}
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=20,
            env=environment,
            check=False,
            cwd=ROOT,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip().endswith("ok")


class TestClientEventControl:
    """`POST /_emulator/calls/{id}/client_event`: the browser's data channel, simulated."""

    async def test_realtime_update_is_an_override(self, http: httpx.AsyncClient) -> None:
        """A browser `session.update` is applied, answered, and on record as an open override."""
        call_id = await realtime_call(http)
        response = await http.post(f"/_emulator/calls/{call_id}/client_event", json=OVERRIDE)
        assert response.json() == {"emitted": ["session.updated"]}
        record = (await http.get(f"/_emulator/calls/{call_id}")).json()
        assert record["session"]["audio"]["output"]["voice"] == "verse"
        assert record["sideband_updates"] == 0
        [override] = record["overrides"]
        assert override["at_ms"] >= 0
        assert override["reverted_after_ms"] is None

    async def test_sideband_update_reverts(
        self, http: httpx.AsyncClient, sideband: EmulatorSideband
    ) -> None:
        """The next trusted `session.update` is counted and closes the override with its delay."""
        call_id = await realtime_call(http)
        connection = await sideband.connect("realtime", call_id)
        await http.post(f"/_emulator/calls/{call_id}/client_event", json=OVERRIDE)
        revert = {"type": "session.update", "session": {"audio": {"output": {"voice": "alloy"}}}}
        await connection.send(revert)
        record = (await http.get(f"/_emulator/calls/{call_id}")).json()
        assert record["sideband_updates"] == 1
        assert record["overrides"][0]["reverted_after_ms"] >= 0
        assert record["session"]["audio"]["output"]["voice"] == "alloy"

    async def test_live_allow_list_applies(
        self, http: httpx.AsyncClient, sideband: EmulatorSideband
    ) -> None:
        """On Live the browser's event meets the allow-list; the sideband's does not."""
        session_id = await live_call(http)
        update = {"type": "session.update", "session": {"idle_timeout_s": 60}}
        response = await http.post(f"/_emulator/calls/{session_id}/client_event", json=update)
        assert response.json() == {"emitted": ["error"]}
        connection = await sideband.connect("live", session_id)
        await connection.send(update)
        updated = await next_of(connection, "session.updated")
        assert updated["session"]["idle_timeout_s"] == 60

    async def test_unknown_call_is_404(self, http: httpx.AsyncClient) -> None:
        """A control on a call the emulator does not hold is a 404."""
        response = await http.post("/_emulator/calls/rtc_none/client_event", json=OVERRIDE)
        assert response.status_code == 404

    async def test_body_not_json_is_400(self, http: httpx.AsyncClient) -> None:
        """A body that is not a JSON object is a 400."""
        call_id = await realtime_call(http)
        response = await http.post(f"/_emulator/calls/{call_id}/client_event", content=b"[")
        assert response.status_code == 400


class TestResponseControl:
    """`POST /_emulator/calls/{id}/response` and Live's own usage events."""

    async def test_realtime_response_done_matches_schema(
        self, http: httpx.AsyncClient, sideband: EmulatorSideband
    ) -> None:
        """`response.done` carries the asked tokens, valid for OpenAI's schema and the SDK."""
        call_id = await realtime_call(http)
        connection = await sideband.connect("realtime", call_id)
        tokens = {"input_tokens": 120, "output_tokens": 45}
        response = await http.post(f"/_emulator/calls/{call_id}/response", json=tokens)
        emitted = response.json()["emitted"]
        assert (emitted[0], emitted.count("response.done")) == ("response.created", 1)
        event = await next_of(connection, "response.done")
        assert ga_errors(event, "RealtimeServerEventResponseDone") == []
        usage = ResponseDoneEvent.model_validate(event).response.usage
        assert usage is not None
        assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (120, 45, 165)

    async def test_defaults_are_small(
        self, http: httpx.AsyncClient, sideband: EmulatorSideband
    ) -> None:
        """Without a body the response uses small default token counts."""
        call_id = await realtime_call(http)
        connection = await sideband.connect("realtime", call_id)
        response = await http.post(f"/_emulator/calls/{call_id}/response")
        assert response.status_code == 200
        usage = ResponseDoneEvent.model_validate(
            await next_of(connection, "response.done")
        ).response.usage
        assert usage is not None
        assert (usage.input_tokens, usage.output_tokens) == (12, 24)

    @pytest.mark.parametrize("value", [-1, "12", True, 1.5])
    async def test_bad_tokens_are_400(self, http: httpx.AsyncClient, value: object) -> None:
        """Token counts must be non-negative integers."""
        call_id = await realtime_call(http)
        body = {"input_tokens": value}
        response = await http.post(f"/_emulator/calls/{call_id}/response", json=body)
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "input_tokens"

    async def test_live_response_reports_seconds(
        self, http: httpx.AsyncClient, sideband: EmulatorSideband
    ) -> None:
        """On Live the control emits `session.usage.updated`, valid for the SDK."""
        session_id = await live_call(http)
        response = await http.post(f"/_emulator/calls/{session_id}/response", json={})
        assert response.json() == {"emitted": ["session.usage.updated"]}
        connection = await sideband.connect("live", session_id)
        event = SessionUsageUpdatedEvent.model_validate(
            await next_of(connection, "session.usage.updated")
        )
        assert event.usage.seconds >= 0
        assert event.usage.active_seconds is not None

    async def test_live_reports_usage_periodically(
        self, http: httpx.AsyncClient, sideband: EmulatorSideband
    ) -> None:
        """A Live call emits `session.usage.updated` by itself every `usage_interval`."""
        session_id = await live_call(http)
        connection = await sideband.connect("live", session_id)
        first = await next_of(connection, "session.usage.updated")
        second = await next_of(connection, "session.usage.updated")
        for event in (first, second):
            SessionUsageUpdatedEvent.model_validate(event)

    async def test_live_says_transcript_fragments_when_asked(self) -> None:
        """With `transcript_interval` (and no usage reports) a Live call emits
        `session.input_transcript.delta` by itself, valid for the SDK, and nothing metered."""
        emulator = fake_media_emulator(usage_interval=None, transcript_interval=0.05)
        async with emulator as app, emulator_client(app) as http:
            session_id = await live_call(http)
            connection = await app.sideband().connect("live", session_id)
            seen = [await connection.recv() for _ in range(4)]
        deltas = [event for event in seen if event["type"] == "session.input_transcript.delta"]
        assert len(deltas) >= 2
        for event in deltas:
            InputTranscriptDeltaEvent.model_validate(event)
        assert not [event for event in seen if event["type"] == "session.usage.updated"]

    async def test_live_closed_carries_final_usage(
        self, http: httpx.AsyncClient, sideband: EmulatorSideband
    ) -> None:
        """A Live hang-up emits `session.closed` with the final usage, valid for the SDK."""
        session_id = await live_call(http)
        connection = await sideband.connect("live", session_id)
        await http.post(f"/v1/live/sessions/{session_id}/hangup", headers=KEY)
        closed = SessionClosedEvent.model_validate(await next_of(connection, "session.closed"))
        assert closed.reason == "close_requested"
        assert closed.usage.paused_seconds == 0

    def test_transcript_text_is_the_known_constant(self) -> None:
        """The transcript event's text stays TRANSCRIPT, which the privacy tests look for."""
        assert transcript("realtime", 10)["transcript"] == TRANSCRIPT
        assert transcript("live", 10)["delta"] == TRANSCRIPT


class TestEmulatorSideband:
    """`EmulatorSideband`: a call's sideband in process, ending with OpenAI's close codes."""

    async def test_is_one_per_emulator(self, emulator: Emulator) -> None:
        """The emulator hands out one sideband for all its calls."""
        assert emulator.sideband() is emulator.sideband()

    async def test_events_arrive_in_order(
        self, http: httpx.AsyncClient, sideband: EmulatorSideband, emulator: Emulator
    ) -> None:
        """Server events arrive in the order the call emitted them."""
        call_id = await realtime_call(http)
        connection = await sideband.connect("realtime", call_id)
        for index in range(5):
            await http.post(f"/_emulator/calls/{call_id}/response", json={"input_tokens": index})
        assert (await connection.recv())["type"] == "session.created"
        seen = [
            (await next_of(connection, "response.done"))["response"]["usage"]["input_tokens"]
            for _ in range(5)
        ]
        assert seen == [0, 1, 2, 3, 4]

    async def test_ended_after_the_last_event(
        self, http: httpx.AsyncClient, sideband: EmulatorSideband
    ) -> None:
        """After a hang-up, recv yields `session.closed`, then ends with the normal closure."""
        session_id = await live_call(http)
        connection = await sideband.connect("live", session_id)
        await http.post(f"/v1/live/sessions/{session_id}/hangup", headers=KEY)
        await next_of(connection, "session.closed")
        with pytest.raises(SidebandEnded) as ended:
            await connection.recv()
        assert ended.value.code == CLOSE_NORMAL

    async def test_waiting_recv_ends_with_the_call(
        self, http: httpx.AsyncClient, sideband: EmulatorSideband
    ) -> None:
        """A recv already waiting when a Realtime call ends ends with the normal closure."""
        call_id = await realtime_call(http)
        connection = await sideband.connect("realtime", call_id)
        await connection.recv()  # session.created
        waiting = asyncio.ensure_future(connection.recv())
        await asyncio.sleep(0)
        await http.post(f"/v1/realtime/calls/{call_id}/hangup", headers=KEY)
        with pytest.raises(SidebandEnded) as ended:
            async with asyncio.timeout(WAIT_S):
                await waiting
        assert ended.value.code == CLOSE_NORMAL

    async def test_send_after_end_is_ended(
        self, http: httpx.AsyncClient, sideband: EmulatorSideband
    ) -> None:
        """Sending to a call that has ended ends with the normal closure."""
        call_id = await realtime_call(http)
        connection = await sideband.connect("realtime", call_id)
        await http.post(f"/v1/realtime/calls/{call_id}/hangup", headers=KEY)
        with pytest.raises(SidebandEnded) as ended:
            await connection.send({"type": "session.update", "session": {}})
        assert ended.value.code == CLOSE_NORMAL

    @pytest.mark.parametrize("kind", ["realtime", "live"])
    async def test_unknown_or_other_kind_is_unknown_call(
        self, http: httpx.AsyncClient, sideband: EmulatorSideband, kind: Any
    ) -> None:
        """An id the emulator does not hold, or a call of the other kind, is OpenAI's 4404."""
        call_id = await realtime_call(http)
        target = "rtc_unknown" if kind == "realtime" else call_id
        with pytest.raises(SidebandEnded) as ended:
            await sideband.connect(kind, target)
        assert ended.value.code == CLOSE_UNKNOWN_CALL

    async def test_close_detaches_and_the_call_goes_on(
        self, http: httpx.AsyncClient, sideband: EmulatorSideband
    ) -> None:
        """Closing the sideband stops its events (no close code: it was us); the call stays open."""
        call_id = await realtime_call(http)
        connection = await sideband.connect("realtime", call_id)
        await connection.close()
        await http.post(f"/_emulator/calls/{call_id}/response")
        with pytest.raises(SidebandEnded) as ended:
            await connection.recv()
        assert ended.value.code is None
        assert (await http.get(f"/_emulator/calls/{call_id}")).json()["state"] == "connected"


@pytest.fixture(name="emulator_process", scope="module")
def fixture_emulator_process() -> Iterator[ServiceProcess]:
    """`python -m service emulator --fake-media` on its own."""
    port = free_port()
    args = ("emulator", "--port", str(port), "--fake-media", "--usage-interval", "0.1")
    process = ServiceProcess({"PORT": str(port)}, args)
    try:
        process.wait_ready(path="/healthz")
        yield process
    finally:
        assert process.stop() == 0


class TestFakeMediaProcess:
    """The `--fake-media` flag over real sockets."""

    async def test_websocket_sideband_and_hangup(self, emulator_process: ServiceProcess) -> None:
        """Calls, the WebSocket sideband, an override's revert and the hang-up all work."""
        async with httpx.AsyncClient(base_url=emulator_process.url, timeout=WAIT_S) as http:
            call_id = await realtime_call(http)
            url = emulator_process.url.replace("http://", "ws://")
            url += f"/v1/realtime?call_id={call_id}"
            async with connect(
                url, additional_headers=KEY, open_timeout=WAIT_S, logger=SIDEBAND_LOG
            ) as ws:
                first = orjson.loads(await ws.recv())
                await http.post(f"/_emulator/calls/{call_id}/client_event", json=OVERRIDE)
                updated = orjson.loads(await ws.recv())
                revert = {"type": "session.update", "session": {"instructions": "policy"}}
                await ws.send(orjson.dumps(revert).decode())
                reverted = orjson.loads(await ws.recv())
                record = (await http.get(f"/_emulator/calls/{call_id}")).json()
                await http.post(f"/v1/realtime/calls/{call_id}/hangup", headers=KEY)
                async with asyncio.timeout(WAIT_S):
                    await ws.wait_closed()
        assert [first["type"], updated["type"], reverted["type"]] == [
            "session.created",
            "session.updated",
            "session.updated",
        ]
        assert record["overrides"][0]["reverted_after_ms"] >= 0
        assert ws.close_code == 1000


COMMITTED_TURN = [
    "input_audio_buffer.committed",
    "conversation.item.added",
    "conversation.item.input_audio_transcription.completed",
    "conversation.item.done",
]
"""What a turn committed by turn detection emits before any response."""


def detection_update(detection: dict[str, Any] | None) -> dict[str, Any]:
    """A `session.update` setting the session's `audio.input.turn_detection`."""
    return {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"turn_detection": detection}}},
    }


class TestTurnControl:
    """`POST /_emulator/calls/{id}/turn`: a turn ended by turn detection, answered as OpenAI
    answers it (a response unless `create_response` is false)."""

    async def turn(self, http: httpx.AsyncClient, call_id: str) -> list[str]:
        response = await http.post(f"/_emulator/calls/{call_id}/turn")
        assert response.status_code == 200, response.text
        emitted: list[str] = response.json()["emitted"]
        return emitted

    async def update(self, http: httpx.AsyncClient, call_id: str, event: object) -> list[str]:
        response = await http.post(f"/_emulator/calls/{call_id}/client_event", json=event)
        assert response.status_code == 200, response.text
        emitted: list[str] = response.json()["emitted"]
        return emitted

    async def test_default_session_answers_the_turn(
        self, http: httpx.AsyncClient, sideband: EmulatorSideband
    ) -> None:
        """OpenAI's default (server_vad, `create_response` true): the committed turn starts a
        whole response, whose assistant item follows the user's."""
        call_id = await realtime_call(http)
        connection = await sideband.connect("realtime", call_id)
        emitted = await self.turn(http, call_id)
        committed = await next_of(connection, "input_audio_buffer.committed")
        created = await next_of(connection, "response.created")
        added = await next_of(connection, "conversation.item.added")
        done = ResponseDoneEvent.model_validate(await next_of(connection, "response.done"))
        assert emitted[:5] == [*COMMITTED_TURN, "response.created"]
        assert emitted.count("response.created") == emitted.count("response.done") == 1
        assert added["previous_item_id"] == committed["item_id"]
        assert done.response.id == created["response"]["id"]
        assert done.response.status == "completed"

    @pytest.mark.parametrize("detector", ["server_vad", "semantic_vad"])
    async def test_create_response_true_answers_each_detector(
        self, http: httpx.AsyncClient, detector: str
    ) -> None:
        """An explicit `create_response: true` answers the turn, for both detectors."""
        call_id = await realtime_call(http)
        await self.update(
            http, call_id, detection_update({"type": detector, "create_response": True})
        )
        emitted = await self.turn(http, call_id)
        assert emitted[: len(COMMITTED_TURN) + 1] == [*COMMITTED_TURN, "response.created"]
        assert emitted.count("response.done") == 1

    @pytest.mark.parametrize("detector", ["server_vad", "semantic_vad"])
    async def test_create_response_false_commits_without_a_response(
        self, http: httpx.AsyncClient, detector: str
    ) -> None:
        """`create_response: false` (the service's pin): the turn is committed, no response."""
        call_id = await realtime_call(http)
        update = detection_update({"type": detector, "create_response": False})
        assert await self.update(http, call_id, update) == ["session.updated"]
        assert await self.turn(http, call_id) == COMMITTED_TURN

    async def test_no_second_response_while_one_is_in_progress(
        self, http: httpx.AsyncClient, emulator: Emulator
    ) -> None:
        """A response in progress (held) is not joined by the turn's: OpenAI runs one at a time."""
        call_id = await realtime_call(http)
        held = await http.post(f"/_emulator/calls/{call_id}/response", json={"hold": True})
        assert held.json()["emitted"][0] == "response.created"
        assert await self.turn(http, call_id) == COMMITTED_TURN
        call = emulator.sideband().registry.get(call_id)
        assert call.conversation is not None
        assert call.conversation.response is not None

    async def test_held_responses_leave_the_turn_s_response_to_run(
        self, http: httpx.AsyncClient
    ) -> None:
        """`/hold` holds `response.create`s: the turn's own response still runs to its end,
        and a browser's `response.create` after it is held as before."""
        call_id = await realtime_call(http)
        await http.post(f"/_emulator/calls/{call_id}/hold", json={"responses": True})
        emitted = await self.turn(http, call_id)
        assert emitted.count("response.created") == emitted.count("response.done") == 1
        created = await self.update(http, call_id, {"type": "response.create"})
        assert "response.created" in created
        assert "response.done" not in created

    async def test_turn_detection_null_detects_nothing(self, http: httpx.AsyncClient) -> None:
        """Turn detection null: the audio waits, and the client's commit gets no response."""
        call_id = await realtime_call(http)
        await self.update(http, call_id, detection_update(None))
        assert await self.turn(http, call_id) == []
        commit = await self.update(http, call_id, {"type": "input_audio_buffer.commit"})
        assert commit == ["input_audio_buffer.committed", "conversation.item.added"]

    async def test_client_commit_never_starts_a_response(self, http: httpx.AsyncClient) -> None:
        """A client's `input_audio_buffer.commit` commits the turn only: OpenAI answers it on
        `response.create`, even with server_vad's `create_response` true."""
        call_id = await realtime_call(http)
        await self.update(http, call_id, {"type": "input_audio_buffer.append", "audio": "AAAA"})
        commit = await self.update(http, call_id, {"type": "input_audio_buffer.commit"})
        assert commit == ["input_audio_buffer.committed", "conversation.item.added"]

    async def test_live_turn_sends_its_transcript(self, http: httpx.AsyncClient) -> None:
        """A Live call's turn is its input transcript."""
        session_id = await live_call(http)
        assert await self.turn(http, session_id) == ["session.input_transcript.delta"]

    @pytest.mark.parametrize("value", [-1, "10", True, 3_600_001])
    async def test_bad_audio_ms_is_400(self, http: httpx.AsyncClient, value: object) -> None:
        """`audio_ms` must be a whole number of milliseconds within an hour."""
        call_id = await realtime_call(http)
        response = await http.post(f"/_emulator/calls/{call_id}/turn", json={"audio_ms": value})
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "audio_ms"
