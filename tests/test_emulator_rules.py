"""The emulator follows OpenAI's Realtime rules where the service's behaviour depends on them.

Each rule is driven from both sides of a call: the browser's data channel
(`POST /_emulator/calls/{id}/client_event`, untrusted) and the sideband
(`EmulatorSideband`, trusted), in process with fake media. Server events are
validated against the openai SDK's models.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from openai.types.realtime import (
    RealtimeErrorEvent,
    RealtimeSessionCreateRequest,
    SessionUpdatedEvent,
)

from emulator import Emulator, create_emulator
from emulator.calls import EmulatorSideband
from tests.test_emulator_controls import KEY

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]
SESSION: dict[str, Any] = {
    "type": "realtime",
    "model": "gpt-realtime",
    "output_modalities": ["audio"],
    "audio": {"output": {"voice": "marin"}},
}
Send = Callable[[str, dict[str, Any]], Awaitable[list[dict[str, Any]]]]


@pytest.fixture(name="emulator")
async def fixture_emulator() -> AsyncIterator[Emulator]:
    """An in-process fake-media emulator (no usage ticks), every call hung up afterwards."""
    app = create_emulator(fake_media=True, usage_interval=None)
    yield app
    await app.calls.close()


@pytest.fixture(name="http")
async def fixture_http(emulator: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the in-process emulator."""
    transport = httpx.ASGITransport(app=emulator)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
        yield client


@pytest.fixture(name="sideband")
def fixture_sideband(emulator: Emulator) -> EmulatorSideband:
    """The in-process sideband to the emulator's calls."""
    return emulator.sideband()


async def realtime_call(http: httpx.AsyncClient, session: dict[str, Any] | None = None) -> str:
    """Create a fake-media Realtime call with a session (multipart, as the service does); its id."""
    files: Any = {
        "sdp": (None, b"v=0\r\n", "application/sdp"),
        "session": (None, orjson.dumps(session or SESSION), "application/json"),
    }
    response = await http.post("/v1/realtime/calls", files=files, headers=KEY)
    assert response.status_code == 201, response.text
    call_id: str = response.headers["location"].rsplit("/", 1)[1]
    return call_id


@pytest.fixture(name="send", params=["data_channel", "sideband"])
def fixture_send(
    request: pytest.FixtureRequest, emulator: Emulator, http: httpx.AsyncClient
) -> Send:
    """Send a client event from one side of the call; the server events it caused."""

    async def send(call_id: str, event: dict[str, Any]) -> list[dict[str, Any]]:
        # A client event is answered before `send` returns, so the events it caused
        # are the history's newest.
        call = emulator.sideband().registry.get(call_id)
        before = len(call.history)
        if request.param == "data_channel":
            response = await http.post(f"/_emulator/calls/{call_id}/client_event", json=event)
            assert response.status_code == 200, response.text
        else:
            connection = await emulator.sideband().connect("realtime", call_id)
            await connection.send(event)
            await connection.close()
        return list(call.history)[before:]

    return send


def only_error(emitted: list[dict[str, Any]]) -> RealtimeErrorEvent:
    """The one event emitted, an `error` valid for the SDK."""
    assert [event["type"] for event in emitted] == ["error"]
    return RealtimeErrorEvent.model_validate(emitted[0])


class TestModelCannotChange:
    """`session.update` may change any field "except for `voice` and `model`"."""

    async def test_same_model_is_accepted(self, http: httpx.AsyncClient, send: Send) -> None:
        """An update restating the session's own model is applied and answered."""
        call_id = await realtime_call(http)
        update = {
            "type": "session.update",
            "session": {"type": "realtime", "model": "gpt-realtime", "instructions": "Be brief."},
        }
        [updated] = await send(call_id, update)
        session = SessionUpdatedEvent.model_validate(updated).session
        assert isinstance(session, RealtimeSessionCreateRequest)
        assert session.model == "gpt-realtime"
        assert updated["session"]["instructions"] == "Be brief."

    async def test_other_model_is_an_error_and_session_unchanged(
        self, http: httpx.AsyncClient, send: Send
    ) -> None:
        """Another model gets `error` (invalid_request_error, `session.model`), no update."""
        call_id = await realtime_call(http)
        update = {
            "type": "session.update",
            "event_id": "evt_model",
            "session": {"type": "realtime", "model": "gpt-realtime-mini", "instructions": "x"},
        }
        error = only_error(await send(call_id, update)).error
        record = (await http.get(f"/_emulator/calls/{call_id}")).json()
        assert (error.type, error.param, error.event_id) == (
            "invalid_request_error",
            "session.model",
            "evt_model",
        )
        assert record["session"]["model"] == "gpt-realtime"
        assert "instructions" not in record["session"]
        assert record["overrides"] == []
        assert record["sideband_updates"] == 0
