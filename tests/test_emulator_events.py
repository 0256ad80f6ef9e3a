"""Every server event the emulator emits in a scripted Realtime call is one the openai SDK knows.

The script plays each case the emulator answers (updates accepted and
refused, items created, retrieved, truncated and deleted, responses spoken,
written, calling a function, held and cancelled, the audio buffers, heard
audio and its transcript, turns ended by turn detection with and without
their response, unknown and malformed events, the hang-up) from the
browser's side and the sideband's. Each event the sideband saw must
validate as `RealtimeServerEvent` (a discriminated union: an unknown type
fails) and carry no field the SDK's model lacks, or, for the events OpenAI's
published schema covers, pass that schema closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pydantic
import pytest
from openai import BaseModel
from openai.types.realtime import RealtimeServerEvent

from emulator import Emulator
from emulator.calls.sideband import EmulatorSidebandConnection, SidebandEnded
from tests.contract import ga_errors
from tests.emulators import emulator_client, fake_media_emulator
from tests.test_emulator_controls import KEY
from tests.test_emulator_rules import SYSTEM, realtime_call

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]
ADAPTER: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RealtimeServerEvent)
PUBLISHED = {
    "error": "RealtimeServerEventError",
    "response.done": "RealtimeServerEventResponseDone",
    "session.created": "RealtimeServerEventSessionCreated",
    "session.updated": "RealtimeServerEventSessionUpdated",
}
TOOL = {"type": "function", "name": "lookup_order", "parameters": {"type": "object"}}


@pytest.fixture(name="emulator")
async def fixture_emulator() -> AsyncIterator[Emulator]:
    """An in-process fake-media emulator (no usage ticks), every call hung up afterwards."""
    async with fake_media_emulator() as app:
        yield app


@pytest.fixture(name="http")
async def fixture_http(emulator: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the in-process emulator."""
    async with emulator_client(emulator) as client:
        yield client


def unknown_fields(model: object, path: str = "") -> list[str]:
    """Every field the SDK's models do not declare, anywhere in a validated event."""
    if isinstance(model, list):
        return [
            name for i, item in enumerate(model) for name in unknown_fields(item, f"{path}[{i}]")
        ]
    if isinstance(model, dict):
        return [
            name for key, value in model.items() for name in unknown_fields(value, f"{path}.{key}")
        ]
    if not isinstance(model, BaseModel):
        return []
    found = [f"{path}.{name}" for name in model.model_extra or {}]
    for name in type(model).model_fields:
        found += unknown_fields(getattr(model, name), f"{path}.{name}")
    return found


async def everything(connection: EmulatorSidebandConnection) -> list[dict[str, Any]]:
    """Every event the sideband receives until the call ends."""
    seen = []
    while True:
        try:
            seen.append(await connection.recv())
        except SidebandEnded:
            return seen


async def script(http: httpx.AsyncClient, emulator: Emulator, call_id: str) -> None:
    """Play every case, from the browser's channel and from the sideband, then hang up."""
    registry = emulator.sideband().registry
    call = registry.get(call_id)

    def browser(event: object) -> None:
        call.client_event(event, trusted=False)

    def sideband(event: object) -> None:
        registry.send_client_event(call_id, event)

    async def control(**request: Any) -> None:
        response = await http.post(f"/_emulator/calls/{call_id}/response", json=request)
        assert response.status_code == 200, response.text

    async def turn() -> None:
        response = await http.post(f"/_emulator/calls/{call_id}/turn", json={"audio_ms": 800})
        assert response.status_code == 200, response.text

    sideband({"type": "session.update", "session": {"type": "realtime", "model": "gpt-realtime"}})
    browser({"type": "session.update", "session": {"model": "gpt-realtime-mini"}})
    browser({"type": "session.update"})
    browser(SYSTEM)
    [added] = [event for event in call.history if event["type"] == "conversation.item.added"][-1:]
    item_id = added["item"]["id"]
    browser({"type": "conversation.item.retrieve", "item_id": item_id})
    browser({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0})
    browser(
        {
            "type": "response.create",
            "response": {
                "audio": {"output": {"voice": "cedar"}},
                "output_modalities": ["text"],
                "max_output_tokens": 50,
                "metadata": {"turn": "1"},
            },
        }
    )
    browser({"type": "response.create", "response": {"conversation": "none"}})
    browser({"type": "response.create", "response": {"tools": [TOOL]}})
    calls = [
        event for event in call.history if event["type"] == "response.function_call_arguments.done"
    ]
    browser(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "function_call_output",
                "call_id": calls[-1]["call_id"],
                "output": "{}",
            },
        }
    )
    await control(function_call={"name": "transfer_call"})
    browser({"type": "session.update", "session": {"audio": {"output": {"voice": "verse"}}}})
    await control(hold=True)
    browser({"type": "response.create", "event_id": "again"})
    sideband({"type": "output_audio_buffer.clear"})
    sideband({"type": "response.cancel"})
    sideband({"type": "response.cancel", "event_id": "none-left"})
    await control(hold=True)
    await control(input_tokens=5, output_tokens=6)
    # A browser's response held open (the call's `hold_responses`), cancelled by its id.
    call.hold_responses = True
    browser({"type": "response.create", "response": {"audio": {"output": {"voice": "cedar"}}}})
    call.hold_responses = False
    [held] = [event for event in call.history if event["type"] == "response.created"][-1:]
    sideband({"type": "response.cancel", "response_id": held["response"]["id"]})
    [spoken] = [event for event in call.history if event["type"] == "response.done"][-1:]
    truncate = {"type": "conversation.item.truncate", "content_index": 0, "audio_end_ms": 0}
    sideband({**truncate, "item_id": spoken["response"]["output"][0]["id"]})
    sideband({"type": "conversation.item.delete", "item_id": item_id})
    sideband({"type": "conversation.item.delete", "item_id": item_id})
    browser({"type": "input_audio_buffer.commit"})
    browser({"type": "input_audio_buffer.append", "audio": "AAAA"})
    browser({"type": "input_audio_buffer.commit"})
    browser({"type": "input_audio_buffer.clear"})
    call.heard(120)
    # Turns ended by turn detection: answered by default, committed only once the session
    # says `create_response: false`, and not even detected with turn detection null.
    await turn()
    detection: dict[str, Any] = {"type": "semantic_vad", "create_response": False}
    for setting in (detection, None):
        audio = {"input": {"turn_detection": setting}}
        sideband({"type": "session.update", "session": {"type": "realtime", "audio": audio}})
        await turn()
    browser({"type": "input_audio_buffer.commit"})
    browser({"type": "session.fly", "event_id": "u1"})
    browser(["not", "an", "event"])
    await http.post(f"/v1/realtime/calls/{call_id}/hangup", headers=KEY)


class TestEveryServerEvent:
    """The scripted call's events, all validated against the SDK."""

    async def test_every_event_validates_strictly(
        self, http: httpx.AsyncClient, emulator: Emulator
    ) -> None:
        """Each event is a known `RealtimeServerEvent` with only the fields its model has."""
        call_id = await realtime_call(http)
        connection = await emulator.sideband().connect("realtime", call_id)
        await script(http, emulator, call_id)
        seen = await everything(connection)
        problems = []
        for index, event in enumerate(seen):
            try:
                validated = ADAPTER.validate_python(event)
            except pydantic.ValidationError as invalid:
                problems.append(f"{index} {event['type']}: {invalid}")
                continue
            if event["type"] in PUBLISHED:
                # OpenAI's published schema, closed (no unknown field passes), knows fields
                # the SDK's models lag behind on (a session's `id` and `object`): it decides.
                published = ga_errors(event, PUBLISHED[event["type"]])
                problems += [f"{index} {event['type']}: {problem}" for problem in published]
            else:
                extra = unknown_fields(validated)
                problems += [f"{index} {event['type']}: extra {name}" for name in extra]
        assert problems == []
        kinds = {event["type"] for event in seen}
        assert kinds >= {
            "session.created",
            "session.updated",
            "error",
            "conversation.item.added",
            "conversation.item.done",
            "conversation.item.retrieved",
            "conversation.item.truncated",
            "conversation.item.deleted",
            "conversation.item.input_audio_transcription.completed",
            "input_audio_buffer.committed",
            "input_audio_buffer.cleared",
            "output_audio_buffer.started",
            "output_audio_buffer.stopped",
            "output_audio_buffer.cleared",
            "response.created",
            "response.output_item.added",
            "response.output_item.done",
            "response.content_part.added",
            "response.content_part.done",
            "response.output_text.delta",
            "response.output_text.done",
            "response.output_audio_transcript.delta",
            "response.output_audio_transcript.done",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.done",
        }

    async def test_turn_responses_validate(
        self, http: httpx.AsyncClient, emulator: Emulator
    ) -> None:
        """A turn answered by turn detection (`create_response` true) and one left unanswered
        (`create_response` false): each event validates strictly, and only the first responds."""
        call_id = await realtime_call(http)
        connection = await emulator.sideband().connect("realtime", call_id)
        registry = emulator.sideband().registry
        answered = await http.post(f"/_emulator/calls/{call_id}/turn")
        audio = {"input": {"turn_detection": {"type": "server_vad", "create_response": False}}}
        update = {"type": "session.update", "session": {"type": "realtime", "audio": audio}}
        registry.send_client_event(call_id, update)
        unanswered = await http.post(f"/_emulator/calls/{call_id}/turn")
        await http.post(f"/v1/realtime/calls/{call_id}/hangup", headers=KEY)
        seen = await everything(connection)
        problems = []
        for index, event in enumerate(seen):
            try:
                validated = ADAPTER.validate_python(event)
            except pydantic.ValidationError as invalid:
                problems.append(f"{index} {event['type']}: {invalid}")
                continue
            if event["type"] not in PUBLISHED:
                problems += [
                    f"{index} {event['type']}: extra {n}" for n in unknown_fields(validated)
                ]
        assert problems == []
        assert answered.json()["emitted"].count("response.done") == 1
        assert "response.created" not in unanswered.json()["emitted"]
        kinds = [event["type"] for event in seen]
        assert kinds.count("input_audio_buffer.committed") == 2
        assert kinds.count("response.created") == kinds.count("response.done") == 1

    async def test_an_unknown_type_fails_validation(self) -> None:
        """The check is strict: an event type the SDK does not know is refused."""
        with pytest.raises(pydantic.ValidationError):
            ADAPTER.validate_python({"type": "response.fly", "event_id": "event_1"})

    async def test_an_unknown_field_is_found(self) -> None:
        """The check is strict: a field the SDK's model lacks is reported."""
        validated = ADAPTER.validate_python(
            {"type": "conversation.item.deleted", "event_id": "e", "item_id": "i", "extra": 1}
        )
        assert unknown_fields(validated) == [".extra"]
