"""CALLS_RESPONSES against the emulator's turn detection: real service and emulator processes.

The emulator (`--fake-media`) answers a turn ended by turn detection as OpenAI does: a
response, unless the session's `turn_detection.create_response` is false. The service's
`CALLS_RESPONSES=server` pins it false and answers each committed turn itself over the
sideband, marking its `response.create` (`metadata.rtp_turn`); under `client` (the
default) the turn is left to OpenAI. A second sideband, the test's, watches the call's
server events in order; the turn is played by the emulator's `/turn` control, the
browser's events by its `/client_event` control. Every wait is for an event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import SDP_OFFER
from tests.paths import REALTIME_CALLS
from tests.servers import ServiceProcess, emulator_process

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]
KEY = "sk-test-EMULATED-TURNS-0123456789abcdef"
MARK = "rtp_turn"
"""The `metadata` key of the service's own responses (`service.calls.turns.METADATA_KEY`)."""
WAIT_S = 30.0
"""How long to wait for an event before calling it a hang (never a bound the behaviour must
meet; pytest-timeout bounds the whole test)."""
VOICE = "verse"
SIDEBAND_LOG = logging.getLogger("tests.sideband_client")
SIDEBAND_LOG.setLevel(logging.WARNING)  # the handshake's headers carry the key


@pytest.fixture(name="emulator", scope="module")
def fixture_emulator() -> Iterator[ServiceProcess]:
    with emulator_process("--fake-media") as process:
        yield process


@pytest.fixture(name="service")
def fixture_service(
    emulator: ServiceProcess,
) -> Iterator[Callable[[str], ServiceProcess]]:
    """Start a service process with this CALLS_RESPONSES, on the emulator; stopped after."""
    started: list[ServiceProcess] = []

    def start(responses: str) -> ServiceProcess:
        process = ServiceProcess(
            {
                "AUTH_MODE": "none",
                "WORKERS": "1",
                "OPENAI_BASE_URL": f"{emulator.url}/v1",
                "OPENAI_API_KEY": KEY,
                "CALLS_RESPONSES": responses,
                "LOG_LEVEL": "INFO",
            }
        )
        started.append(process)
        process.wait_ready()
        return process

    yield start
    for process in started:
        assert process.stop() == 0


class Watcher:
    """The test's own sideband on the call: its server events, in order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def until(self, done: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Every event up to and including the first for which `done` holds."""
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(WAIT_S):
            while not seen or not done(seen[-1]):
                seen.append(orjson.loads(await self.ws.recv()))
        return seen


@asynccontextmanager
async def watching(emulator: ServiceProcess, call_id: str) -> AsyncIterator[Watcher]:
    url = emulator.url.replace("http://", "ws://") + f"/v1/realtime?call_id={call_id}"
    headers = {"Authorization": f"Bearer {KEY}"}
    async with connect(
        url, additional_headers=headers, open_timeout=WAIT_S, logger=SIDEBAND_LOG
    ) as ws:
        yield Watcher(ws)


def voice(event: dict[str, Any]) -> object:
    return event.get("session", {}).get("audio", {}).get("output", {}).get("voice")


async def supervised_call(
    http: httpx.AsyncClient, process: ServiceProcess
) -> tuple[str, dict[str, Any]]:
    """A call created through the service; its id and the emulator's record of it."""
    created = await http.post(
        f"{process.url}{REALTIME_CALLS}",
        content=SDP_OFFER,
        headers={"Content-Type": "application/sdp"},
    )
    assert created.status_code == 201, created.text
    call_id = created.headers["location"].rsplit("/", 1)[-1]
    return call_id, (await http.get(f"/_emulator/calls/{call_id}")).json()


async def browser(
    http: httpx.AsyncClient, call_id: str, event: dict[str, Any], **query: str
) -> None:
    """The browser sends `event` on its data channel (the emulator's control)."""
    sent = await http.post(f"/_emulator/calls/{call_id}/client_event", json=event, params=query)
    assert sent.status_code == 200, sent.text


async def attached(http: httpx.AsyncClient, call_id: str, watcher: Watcher) -> None:
    """Return once the service's sideband is attached and has handled everything so far: the
    browser's voice change is put back (by its revert, or by the restatement the service
    sends as it attaches, if it attached after the change)."""
    audio = {"output": {"voice": VOICE}}
    await browser(
        http, call_id, {"type": "session.update", "session": {"type": "realtime", "audio": audio}}
    )
    await watcher.until(lambda e: e["type"] == "session.updated" and voice(e) == VOICE)
    await watcher.until(lambda e: e["type"] == "session.updated" and voice(e) != VOICE)


async def turn(http: httpx.AsyncClient, call_id: str) -> list[str]:
    """The user's turn ends, committed by turn detection (the emulator's control)."""
    played = await http.post(f"/_emulator/calls/{call_id}/turn")
    assert played.status_code == 200, played.text
    emitted: list[str] = played.json()["emitted"]
    return emitted


def responses(seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event["response"] for event in seen if event["type"] == "response.created"]


class TestTurnsAnswered:
    """Who answers a committed turn: the service's mark, or the emulator's turn detection."""

    async def test_server_mode_turn_gets_only_the_service_s_response(
        self, emulator: ServiceProcess, service: Callable[[str], ServiceProcess]
    ) -> None:
        """CALLS_RESPONSES=server: create_response is pinned false, so the emulator starts no
        response of its own; the one response the turn gets carries the service's mark."""
        process = service("server")
        async with httpx.AsyncClient(base_url=emulator.url, timeout=WAIT_S) as http:
            call_id, record = await supervised_call(http, process)
            detection = record["session"]["audio"]["input"]["turn_detection"]
            assert detection["create_response"] is False
            async with watching(emulator, call_id) as watcher:
                await attached(http, call_id, watcher)
                emitted = await turn(http, call_id)
                # An automatic response would be emitted with the commit, before the
                # service's, and end first: the first response.done is the turn's answer.
                seen = await watcher.until(lambda e: e["type"] == "response.done")
        assert "response.created" not in emitted
        assert "input_audio_buffer.committed" in emitted
        [created] = responses(seen)
        assert MARK in (created.get("metadata") or {})
        assert seen[-1]["response"]["id"] == created["id"]
        assert seen[-1]["response"]["status"] == "completed"

    async def test_client_mode_turn_is_answered_by_turn_detection(
        self, emulator: ServiceProcess, service: Callable[[str], ServiceProcess]
    ) -> None:
        """CALLS_RESPONSES=client (the default): nothing is pinned, the emulator's automatic
        response answers the turn, unmarked, and the service sends no response.create."""
        process = service("client")
        async with httpx.AsyncClient(base_url=emulator.url, timeout=WAIT_S) as http:
            call_id, record = await supervised_call(http, process)
            audio_in = record["session"]["audio"].get("input", {})
            detection = audio_in.get("turn_detection") or {}
            assert detection.get("create_response", True) is True
            async with watching(emulator, call_id) as watcher:
                await attached(http, call_id, watcher)
                emitted = await turn(http, call_id)
                answer = await watcher.until(lambda e: e["type"] == "response.done")
                # The browser's response in another voice, held: the service cancels it once
                # it has handled every event before it (the turn's included).
                breach = {
                    "type": "response.create",
                    "response": {"audio": {"output": {"voice": VOICE}}},
                }
                await browser(http, call_id, breach, hold="true")
                after = await watcher.until(
                    lambda e: (
                        e["type"] == "response.done" and e["response"]["status"] == "cancelled"
                    )
                )
            record = (await http.get(f"/_emulator/calls/{call_id}")).json()
        assert emitted.count("response.created") == emitted.count("response.done") == 1
        committed = next(e for e in answer if e["type"] == "input_audio_buffer.committed")
        [created] = responses(answer)
        assert MARK not in (created.get("metadata") or {})
        assert answer[-1]["response"]["status"] == "completed"
        assistant = next(
            e
            for e in answer
            if e["type"] == "conversation.item.added" and e["item"]["role"] == "assistant"
        )
        assert assistant["previous_item_id"] == committed["item_id"]
        assert [r["audio"]["output"]["voice"] for r in responses(after)] == [VOICE]
        sent = [e["type"] for e in record["client_events"] if e["source"] == "sideband"]
        assert "response.create" not in sent
        assert "response.cancel" in sent
