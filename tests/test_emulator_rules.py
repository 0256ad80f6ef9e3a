"""The emulator follows OpenAI's Realtime rules where the service's behaviour depends on them.

Each rule is driven from both sides of a call: the browser's data channel
(`POST /_emulator/calls/{id}/client_event`, untrusted) and the sideband
(`EmulatorSideband`, trusted), in process with fake media. Server events are
validated against the openai SDK's models.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
from openai.types.realtime import (
    ConversationItemAdded,
    ConversationItemDeletedEvent,
    RealtimeErrorEvent,
    RealtimeSessionCreateRequest,
    ResponseCreatedEvent,
    ResponseDoneEvent,
    ResponseOutputItemAddedEvent,
    SessionUpdatedEvent,
)

from emulator import Emulator
from emulator.calls import EmulatorSideband
from tests.emulators import emulator_client, fake_media_emulator
from tests.test_emulator_controls import KEY, next_of

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]
SESSION: dict[str, Any] = {
    "type": "realtime",
    "model": "gpt-realtime",
    "output_modalities": ["audio"],
    "audio": {"output": {"voice": "marin"}},
}
VOICE: dict[str, Any] = {
    "type": "session.update",
    "session": {"audio": {"output": {"voice": "verse"}}},
}
SYSTEM: dict[str, Any] = {
    "type": "conversation.item.create",
    "item": {
        "type": "message",
        "role": "system",
        "content": [{"type": "input_text", "text": "The caller is verified."}],
    },
}
Send = Callable[[str, dict[str, Any]], Awaitable[list[dict[str, Any]]]]


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


def types(emitted: list[dict[str, Any]]) -> list[str]:
    """The types of these events, in order."""
    return [event["type"] for event in emitted]


def first(emitted: list[dict[str, Any]], event_type: str) -> dict[str, Any]:
    """The first event of this type."""
    return next(event for event in emitted if event["type"] == event_type)


async def play(http: httpx.AsyncClient, call_id: str, **request: Any) -> list[str]:
    """Play a response through the emulator's control; the types it emitted."""
    response = await http.post(f"/_emulator/calls/{call_id}/response", json=request)
    assert response.status_code == 200, response.text
    emitted: list[str] = response.json()["emitted"]
    return emitted


class TestVoiceCannotChangeOnceSpoken:
    """`voice` "can be updated only if there have been no other audio outputs yet"."""

    async def test_before_any_audio_the_voice_changes(
        self, http: httpx.AsyncClient, send: Send
    ) -> None:
        """Before the model has spoken, another voice is applied."""
        call_id = await realtime_call(http)
        [updated] = await send(call_id, VOICE)
        assert updated["session"]["audio"]["output"]["voice"] == "verse"

    async def test_after_audio_another_voice_is_refused(
        self, http: httpx.AsyncClient, send: Send
    ) -> None:
        """Once a spoken response played, another voice is `cannot_update_voice`, unchanged."""
        call_id = await realtime_call(http)
        await play(http, call_id)
        error = only_error(await send(call_id, VOICE)).error
        record = (await http.get(f"/_emulator/calls/{call_id}")).json()
        assert (error.type, error.code) == ("invalid_request_error", "cannot_update_voice")
        assert record["session"]["audio"]["output"]["voice"] == "marin"

    async def test_after_audio_the_same_voice_is_accepted(
        self, http: httpx.AsyncClient, send: Send
    ) -> None:
        """Restating the session's own voice after audio is no change, and is applied."""
        call_id = await realtime_call(http)
        await play(http, call_id)
        same = {"type": "session.update", "session": {"audio": {"output": {"voice": "marin"}}}}
        assert types(await send(call_id, same)) == ["session.updated"]

    async def test_a_text_only_response_leaves_the_voice_free(
        self, http: httpx.AsyncClient, send: Send
    ) -> None:
        """A response without audio produced none: the voice may still change."""
        call_id = await realtime_call(http)
        text_only = {"type": "response.create", "response": {"output_modalities": ["text"]}}
        await send(call_id, text_only)
        assert types(await send(call_id, VOICE)) == ["session.updated"]


class TestResponseCreate:
    """`response.create`: `response.created`, its output items, then `response.done`."""

    async def test_overrides_shape_the_response(self, http: httpx.AsyncClient, send: Send) -> None:
        """The response's voice, modalities, cap and metadata are those asked for."""
        call_id = await realtime_call(http)
        create = {
            "type": "response.create",
            "response": {
                "audio": {"output": {"voice": "cedar"}},
                "output_modalities": ["text"],
                "max_output_tokens": 7,
                "metadata": {"turn": "greeting"},
            },
        }
        emitted = await send(call_id, create)
        created = ResponseCreatedEvent.model_validate(emitted[0]).response
        done = ResponseDoneEvent.model_validate(first(emitted, "response.done")).response
        assert created.audio is not None
        assert created.audio.output is not None
        assert (
            created.status,
            created.audio.output.voice,
            created.output_modalities,
            created.max_output_tokens,
            created.metadata,
        ) == ("in_progress", "cedar", ["text"], 7, {"turn": "greeting"})
        assert types(emitted)[1] == "response.output_item.added"
        assert done.status == "completed"
        assert done.usage is not None
        assert done.usage.output_tokens == 7

    async def test_the_session_fills_in(self, http: httpx.AsyncClient, send: Send) -> None:
        """Without overrides the response takes the session's voice and modalities."""
        call_id = await realtime_call(http)
        emitted = await send(call_id, {"type": "response.create"})
        created = ResponseCreatedEvent.model_validate(emitted[0]).response
        assert created.audio is not None
        assert created.audio.output is not None
        assert (created.audio.output.voice, created.output_modalities) == ("marin", ["audio"])
        assert created.max_output_tokens == "inf"
        assert types(emitted)[-2:] == ["response.done", "output_audio_buffer.stopped"]

    async def test_a_function_tool_is_called_by_name(
        self, http: httpx.AsyncClient, send: Send
    ) -> None:
        """With a function among the tools, the output is a `function_call` of that name."""
        call_id = await realtime_call(http)
        tool = {"type": "function", "name": "lookup_order", "parameters": {"type": "object"}}
        emitted = await send(call_id, {"type": "response.create", "response": {"tools": [tool]}})
        added = ResponseOutputItemAddedEvent.model_validate(
            first(emitted, "response.output_item.added")
        )
        done = ResponseDoneEvent.model_validate(first(emitted, "response.done")).response
        assert added.item.type == "function_call"
        assert added.item.name == "lookup_order"
        assert done.output is not None
        assert [(item.type, getattr(item, "name", None)) for item in done.output] == [
            ("function_call", "lookup_order")
        ]

    async def test_a_function_output_is_answered_not_called_again(
        self, http: httpx.AsyncClient, send: Send
    ) -> None:
        """After a `function_call_output`, the same tools get a spoken answer, not a loop."""
        call_id = await realtime_call(http)
        tool = {"type": "function", "name": "lookup_order", "parameters": {"type": "object"}}
        create = {"type": "response.create", "response": {"tools": [tool]}}
        called = first(await send(call_id, create), "response.function_call_arguments.done")
        output = {"type": "function_call_output", "call_id": called["call_id"], "output": "{}"}
        await send(call_id, {"type": "conversation.item.create", "item": output})
        answer = first(await send(call_id, create), "response.output_item.added")
        assert (answer["item"]["type"], answer["item"]["role"]) == ("message", "assistant")

    async def test_only_the_responses_own_tools_call(
        self, http: httpx.AsyncClient, send: Send
    ) -> None:
        """The session's tools alone make no call; a forced `tool_choice` does."""
        tool = {"type": "function", "name": "lookup_order", "parameters": {"type": "object"}}
        call_id = await realtime_call(http, {**SESSION, "tools": [tool]})
        plain = first(
            await send(call_id, {"type": "response.create"}), "response.output_item.added"
        )
        forced = {"type": "function", "name": "lookup_order"}
        create = {"type": "response.create", "response": {"tool_choice": forced}}
        called = first(await send(call_id, create), "response.output_item.added")
        assert plain["item"]["type"] == "message"
        assert (called["item"]["type"], called["item"]["name"]) == ("function_call", "lookup_order")

    async def test_the_control_plays_a_function_call(
        self, http: httpx.AsyncClient, sideband: EmulatorSideband
    ) -> None:
        """`POST …/response` with `function_call` announces a `function_call` item of that name."""
        call_id = await realtime_call(http)
        connection = await sideband.connect("realtime", call_id)
        await play(http, call_id, function_call={"name": "transfer_call"})
        added = ResponseOutputItemAddedEvent.model_validate(
            await next_of(connection, "response.output_item.added")
        )
        assert (added.item.type, getattr(added.item, "name", None)) == (
            "function_call",
            "transfer_call",
        )

    async def test_a_second_response_while_one_is_active_is_refused(
        self, http: httpx.AsyncClient, send: Send
    ) -> None:
        """While a response is in progress another `response.create` is an `error`."""
        call_id = await realtime_call(http)
        await play(http, call_id, hold=True)
        error = only_error(await send(call_id, {"type": "response.create", "event_id": "e2"}))
        assert (error.error.code, error.error.event_id) == (
            "conversation_already_has_active_response",
            "e2",
        )


class TestResponseCancel:
    """`response.cancel` ends the active response with `response.done`, status `cancelled`."""

    async def test_cancel_ends_the_response_cancelled(
        self, http: httpx.AsyncClient, send: Send
    ) -> None:
        """A held response cancelled from either side is done, `cancelled` by the client."""
        call_id = await realtime_call(http)
        await play(http, call_id, hold=True)
        emitted = await send(call_id, {"type": "response.cancel"})
        done = ResponseDoneEvent.model_validate(first(emitted, "response.done")).response
        assert done.status == "cancelled"
        assert done.status_details is not None
        assert done.status_details.reason == "client_cancelled"
        assert "response.output_item.done" in types(emitted)

    async def test_nothing_to_cancel_is_an_error(self, http: httpx.AsyncClient, send: Send) -> None:
        """With no response in progress, `response.cancel` is an `error` and changes nothing."""
        call_id = await realtime_call(http)
        only_error(await send(call_id, {"type": "response.cancel", "event_id": "c1"}))

    async def test_a_held_response_is_finished_by_the_control(
        self, http: httpx.AsyncClient
    ) -> None:
        """`hold` leaves the response in progress; the next control request completes it."""
        call_id = await realtime_call(http)
        held = await play(http, call_id, hold=True)
        finished = await play(http, call_id, output_tokens=3)
        assert "response.created" in held
        assert "response.done" not in held
        assert "response.created" not in finished
        assert "response.done" in finished


class TestConversationItems:
    """`conversation.item.create` and `conversation.item.delete`."""

    async def test_system_item_is_added_with_a_real_id(
        self, http: httpx.AsyncClient, send: Send
    ) -> None:
        """A system item gets `conversation.item.added` (an `item_…` id) then `.done`."""
        call_id = await realtime_call(http)
        emitted = await send(call_id, SYSTEM)
        added = ConversationItemAdded.model_validate(emitted[0])
        assert types(emitted) == ["conversation.item.added", "conversation.item.done"]
        assert added.item.id is not None
        assert re.fullmatch(r"item_[0-9a-f]{24}", added.item.id)
        assert (added.item.type, getattr(added.item, "role", None)) == ("message", "system")

    async def test_invalid_item_is_an_error(self, http: httpx.AsyncClient, send: Send) -> None:
        """An item with an unknown role is an `error` naming `item.role`."""
        call_id = await realtime_call(http)
        bad = {"type": "conversation.item.create", "item": {"type": "message", "role": "x"}}
        assert only_error(await send(call_id, bad)).error.param == "item.role"

    async def test_delete_is_answered_deleted(self, http: httpx.AsyncClient, send: Send) -> None:
        """Deleting an item gets `conversation.item.deleted` with its id; twice is an `error`."""
        call_id = await realtime_call(http)
        [added, _] = await send(call_id, SYSTEM)
        delete = {"type": "conversation.item.delete", "item_id": added["item"]["id"]}
        [deleted] = await send(call_id, delete)
        assert ConversationItemDeletedEvent.model_validate(deleted).item_id == added["item"]["id"]
        assert only_error(await send(call_id, delete)).error.param == "item_id"


class TestOtherClientEvents:
    """Unknown events and the input audio buffer."""

    async def test_unknown_type_is_an_error_with_event_id(
        self, http: httpx.AsyncClient, send: Send
    ) -> None:
        """An unknown type is `invalid_request_error` on `type`, its `event_id` echoed."""
        call_id = await realtime_call(http)
        error = only_error(await send(call_id, {"type": "session.fly", "event_id": "u1"})).error
        assert (error.type, error.code, error.param, error.event_id) == (
            "invalid_request_error",
            "invalid_value",
            "type",
            "u1",
        )

    async def test_commit_needs_audio(self, http: httpx.AsyncClient, send: Send) -> None:
        """Committing an empty buffer is an `error`; after an append it adds a user item."""
        call_id = await realtime_call(http)
        commit = {"type": "input_audio_buffer.commit"}
        only_error(await send(call_id, commit))
        assert await send(call_id, {"type": "input_audio_buffer.append", "audio": "AAAA"}) == []
        emitted = await send(call_id, commit)
        assert types(emitted) == ["input_audio_buffer.committed", "conversation.item.added"]
        assert emitted[0]["item_id"] == emitted[1]["item"]["id"]

    async def test_clear_is_cleared(self, http: httpx.AsyncClient, send: Send) -> None:
        """`input_audio_buffer.clear` gets `input_audio_buffer.cleared`."""
        call_id = await realtime_call(http)
        emitted = await send(call_id, {"type": "input_audio_buffer.clear"})
        assert types(emitted) == ["input_audio_buffer.cleared"]


class TestTimeline:
    """`GET /_emulator/calls/{id}` lists the client events received, with their source."""

    async def test_sideband_cancel_and_delete_are_on_the_timeline(
        self, http: httpx.AsyncClient, sideband: EmulatorSideband
    ) -> None:
        """A sideband's `response.cancel` and `conversation.item.delete` are honoured and shown."""
        call_id = await realtime_call(http)
        browser = await http.post(f"/_emulator/calls/{call_id}/client_event", json=SYSTEM)
        assert browser.json()["emitted"] == ["conversation.item.added", "conversation.item.done"]
        connection = await sideband.connect("realtime", call_id)
        await play(http, call_id, hold=True)
        await connection.send({"type": "response.cancel"})
        cancelled = ResponseDoneEvent.model_validate(await next_of(connection, "response.done"))
        assert cancelled.response.status == "cancelled"
        history = list(sideband.registry.get(call_id).history)
        system_id = first(history, "conversation.item.added")["item"]["id"]
        await connection.send({"type": "conversation.item.delete", "item_id": system_id})
        timeline = (await http.get(f"/_emulator/calls/{call_id}")).json()["client_events"]
        assert [(entry["type"], entry["source"]) for entry in timeline] == [
            ("conversation.item.create", "data_channel"),
            ("response.cancel", "sideband"),
            ("conversation.item.delete", "sideband"),
        ]
        assert "response.done" in timeline[1]["answered"]
        assert timeline[2]["answered"] == ["conversation.item.deleted"]
        assert all(entry["at_ms"] >= 0 for entry in timeline)
