"""A held `response.create`: the emulator keeps it in progress until `response.cancel`.

OpenAI streams a response over time, so a supervisor's cancel can reach it
before `response.done`. The emulator answers a `response.create` at once unless
held: `client_event?hold=true` holds that one, `POST /_emulator/calls/{id}/hold`
every one of the call's (data channel and sideband alike). A held response ends
`cancelled` when cancelled, and the timeline names the ids each event named.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from openai.types.realtime import ResponseCreatedEvent, ResponseDoneEvent

from emulator import Emulator, create_emulator
from emulator.calls import CallRegistry, EmulatorSideband
from emulator.calls.sideband import EmulatorSidebandConnection
from tests.test_emulator_rules import SYSTEM, realtime_call
from tests.test_webrtc_peer import REALTIME_SESSION, BrowserPeer, connect

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]
VERSE = {"type": "response.create", "response": {"audio": {"output": {"voice": "verse"}}}}


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


async def browser(
    http: httpx.AsyncClient, call_id: str, event: dict[str, Any], hold: str | None = None
) -> list[str]:
    """A client event as if from the call's data channel; the types it emitted."""
    params = {} if hold is None else {"hold": hold}
    response = await http.post(
        f"/_emulator/calls/{call_id}/client_event", json=event, params=params
    )
    assert response.status_code == 200, response.text
    emitted: list[str] = response.json()["emitted"]
    return emitted


async def record(http: httpx.AsyncClient, call_id: str) -> dict[str, Any]:
    response = await http.get(f"/_emulator/calls/{call_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def newest(emulator: Emulator, call_id: str, event_type: str) -> dict[str, Any]:
    history = emulator.sideband().registry.get(call_id).history
    return [event for event in history if event["type"] == event_type][-1]


class TestHeldResponseCreate:
    """`?hold=true` and the call's `hold_responses`."""

    async def test_held_response_stays_in_progress_until_cancelled(
        self, http: httpx.AsyncClient, emulator: Emulator
    ) -> None:
        """Held: `response.created` and no `response.done`; the sideband's cancel by id ends
        it `cancelled` (`client_cancelled`), its output item incomplete."""
        call_id = await realtime_call(http)
        emitted = await browser(http, call_id, VERSE, hold="true")
        assert emitted[0] == "response.created"
        assert "response.done" not in emitted
        created = ResponseCreatedEvent.model_validate(newest(emulator, call_id, "response.created"))
        connection = await emulator.sideband().connect("realtime", call_id)
        await connection.send({"type": "response.cancel", "response_id": created.response.id})
        done = ResponseDoneEvent.model_validate(newest(emulator, call_id, "response.done"))
        assert (done.response.id, done.response.status) == (created.response.id, "cancelled")
        assert done.response.status_details is not None
        assert done.response.status_details.reason == "client_cancelled"
        assert done.response.output is not None
        assert [getattr(item, "status", None) for item in done.response.output] == ["incomplete"]

    async def test_unheld_response_runs_to_its_end(self, http: httpx.AsyncClient) -> None:
        """Without hold (or `hold=false`) the response completes at once, and a later cancel
        finds nothing active."""
        call_id = await realtime_call(http)
        assert "response.done" in await browser(http, call_id, VERSE, hold="false")
        cancel = {"type": "response.cancel"}
        assert await browser(http, call_id, cancel) == ["error"]

    async def test_bad_hold_flag_is_400(self, http: httpx.AsyncClient) -> None:
        """`hold` is true or false, nothing else."""
        call_id = await realtime_call(http)
        response = await http.post(
            f"/_emulator/calls/{call_id}/client_event", json=VERSE, params={"hold": "yes"}
        )
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "hold"

    async def test_call_hold_holds_data_channel_and_sideband_responses(
        self, http: httpx.AsyncClient, emulator: Emulator
    ) -> None:
        """`POST .../hold {"responses": true}` holds every response.create of the call, shown
        on its record, until turned off."""
        call_id = await realtime_call(http)
        response = await http.post(f"/_emulator/calls/{call_id}/hold", json={"responses": True})
        assert response.json() == {"hold_responses": True}
        assert (await record(http, call_id))["hold_responses"] is True
        assert "response.done" not in await browser(http, call_id, VERSE)
        connection = await emulator.sideband().connect("realtime", call_id)
        await connection.send({"type": "response.cancel"})
        await connection.send({"type": "response.create"})
        history = emulator.sideband().registry.get(call_id).history
        assert [event["type"] for event in history].count("response.done") == 1
        await connection.send({"type": "response.cancel"})
        await http.post(f"/_emulator/calls/{call_id}/hold", json={"responses": False})
        assert "response.done" in await browser(http, call_id, VERSE)

    @pytest.mark.parametrize("body", [{}, {"responses": "yes"}])
    async def test_bad_hold_body_is_400(
        self, http: httpx.AsyncClient, body: dict[str, Any]
    ) -> None:
        """`responses` must be a boolean."""
        call_id = await realtime_call(http)
        response = await http.post(f"/_emulator/calls/{call_id}/hold", json=body)
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "responses"


class TestTimelineIds:
    """The timeline names the response and item ids a client event named."""

    async def test_cancel_and_delete_show_their_ids(
        self, http: httpx.AsyncClient, emulator: Emulator
    ) -> None:
        """A sideband's cancel shows its `response_id`, a delete its `item_id`; an event
        naming none shows neither."""
        call_id = await realtime_call(http)
        await browser(http, call_id, SYSTEM)
        item_id = newest(emulator, call_id, "conversation.item.added")["item"]["id"]
        await browser(http, call_id, VERSE, hold="true")
        response_id = newest(emulator, call_id, "response.created")["response"]["id"]
        connection = await emulator.sideband().connect("realtime", call_id)
        await connection.send({"type": "response.cancel", "response_id": response_id})
        await connection.send({"type": "conversation.item.delete", "item_id": item_id})
        timeline = (await record(http, call_id))["client_events"]
        assert [
            (entry["type"], entry["source"], entry.get("response_id"), entry.get("item_id"))
            for entry in timeline
        ] == [
            ("conversation.item.create", "data_channel", None, None),
            ("response.create", "data_channel", None, None),
            ("response.cancel", "sideband", response_id, None),
            ("conversation.item.delete", "sideband", None, item_id),
        ]
        assert "response.done" in timeline[2]["answered"]


async def next_of(connection: EmulatorSidebandConnection, event_type: str) -> dict[str, Any]:
    """The sideband's next event of this type."""
    while True:
        event = await connection.recv()
        if event["type"] == event_type:
            return event


class TestSpokenResponse:
    """A browser's own `response.create` (`spoken`) is in progress while it is spoken."""

    async def test_spoken_response_completes_after_it_is_spoken(
        self, http: httpx.AsyncClient, emulator: Emulator
    ) -> None:
        """It answers `response.created` and no `response.done`; the done, `completed`,
        follows on the event loop."""
        call_id = await realtime_call(http)
        call = emulator.sideband().registry.get(call_id)
        call.speak_s = 0.0
        connection = await emulator.sideband().connect("realtime", call_id)
        emitted = call.client_event(VERSE, trusted=False, spoken=True)
        assert emitted[0]["type"] == "response.created"
        assert "response.done" not in [event["type"] for event in emitted]
        done = ResponseDoneEvent.model_validate(await next_of(connection, "response.done"))
        assert (done.response.id, done.response.status) == (
            emitted[0]["response"]["id"],
            "completed",
        )

    async def test_cancel_while_spoken_ends_it_cancelled_once(
        self, http: httpx.AsyncClient, emulator: Emulator
    ) -> None:
        """A cancel before it is spoken ends it `cancelled`, once: the next `response.done`
        is the next response's, `completed`."""
        call_id = await realtime_call(http)
        call = emulator.sideband().registry.get(call_id)
        call.speak_s = 0.0
        connection = await emulator.sideband().connect("realtime", call_id)
        first_id = call.client_event(VERSE, trusted=False, spoken=True)[0]["response"]["id"]
        await connection.send({"type": "response.cancel", "response_id": first_id})
        second = call.client_event({"type": "response.create"}, trusted=False, spoken=True)
        second_id = second[0]["response"]["id"]
        cancelled = ResponseDoneEvent.model_validate(await next_of(connection, "response.done"))
        completed = ResponseDoneEvent.model_validate(await next_of(connection, "response.done"))
        assert [(cancelled.response.id, cancelled.response.status)] == [(first_id, "cancelled")]
        assert [(completed.response.id, completed.response.status)] == [(second_id, "completed")]

    async def test_held_call_is_not_spoken(
        self, http: httpx.AsyncClient, emulator: Emulator
    ) -> None:
        """With `hold_responses` a spoken response waits for its cancel, however long."""
        call_id = await realtime_call(http)
        call = emulator.sideband().registry.get(call_id)
        call.speak_s = 0.0
        await http.post(f"/_emulator/calls/{call_id}/hold", json={"responses": True})
        connection = await emulator.sideband().connect("realtime", call_id)
        call.client_event(VERSE, trusted=False, spoken=True)
        # A control response finishes the held one: were it spoken, the speaking's done
        # (default usage) would come first.
        await http.post(f"/_emulator/calls/{call_id}/response", json={"output_tokens": 7})
        done = ResponseDoneEvent.model_validate(await next_of(connection, "response.done"))
        assert done.response.usage is not None
        assert done.response.usage.output_tokens == 7


@pytest.fixture(name="registry")
async def fixture_registry() -> AsyncIterator[CallRegistry]:
    """An emulator call registry with real media, every call hung up afterwards."""
    registry = CallRegistry(max_calls=2)
    yield registry
    await registry.close_all()


@pytest.fixture(name="browser")
async def fixture_browser() -> AsyncIterator[BrowserPeer]:
    """A browser-side aiortc peer, closed afterwards."""
    peer = BrowserPeer()
    yield peer
    await peer.close()


class TestDataChannelSpeaks:
    """Over real WebRTC the browser's `response.create` is spoken, so a cancel reaches it."""

    async def test_sideband_cancel_reaches_a_data_channel_response(
        self, registry: CallRegistry, browser: BrowserPeer
    ) -> None:
        """The browser's response is in progress after `response.created`; the sideband's
        cancel ends it `cancelled`, as the browser sees it."""
        call_id = await connect(registry, browser, "realtime", REALTIME_SESSION)
        await browser.next_event("session.created")
        registry.get(call_id).speak_s = 3600.0  # spoken long after the cancel, whatever the load
        sideband = await EmulatorSideband(registry).connect("realtime", call_id)
        browser.send(VERSE)
        created = ResponseCreatedEvent.model_validate(await browser.next_event("response.created"))
        await sideband.send({"type": "response.cancel", "response_id": created.response.id})
        done = ResponseDoneEvent.model_validate(await browser.next_event("response.done"))
        assert (done.response.id, done.response.status) == (created.response.id, "cancelled")
