"""`service.server.emulated`: the in-process emulator's sideband, as the service's `Sideband`.

The emulator ends a sideband with the close code OpenAI's socket would carry;
the adapter must turn each into the reason the supervisor acts on, as
`WebSocketSideband` does for a real socket. Fake-media calls, no aiortc.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from emulator import Emulator
from service.server.emulated import EmulatedSideband, NoSideband, in_process
from service.upstream.sideband import Sideband, SidebandClosed
from tests.emulators import emulator_client, fake_media_emulator
from tests.test_emulator_controls import KEY, live_call, realtime_call

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


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
def fixture_sideband(emulator: Emulator) -> Sideband:
    """The service's `Sideband` over the emulator's (typed as the protocol: mypy checks it)."""
    return EmulatedSideband(emulator.sideband())


class TestEmulatedSideband:
    """Events pass through; every ending becomes the service's `SidebandClosed` reason."""

    async def test_events_pass_through(self, http: httpx.AsyncClient, sideband: Sideband) -> None:
        """A call's server events arrive as the emulator emitted them."""
        call_id = await realtime_call(http)
        connection = await sideband.connect("realtime", call_id)
        assert (await connection.recv())["type"] == "session.created"

    async def test_ended_call_is_ended(self, http: httpx.AsyncClient, sideband: Sideband) -> None:
        """After a hang-up and its last event, recv raises `ended`."""
        session_id = await live_call(http)
        connection = await sideband.connect("live", session_id)
        await http.post(f"/v1/live/sessions/{session_id}/hangup", headers=KEY)
        seen = [(await connection.recv())["type"] for _ in range(2)]
        with pytest.raises(SidebandClosed) as closed:
            await connection.recv()
        assert seen[-1] == "session.closed"
        assert closed.value.reason == "ended"

    @pytest.mark.parametrize("kind", ["realtime", "live"])
    async def test_a_hang_up_ends_either_kind_the_same_way(
        self, http: httpx.AsyncClient, sideband: Sideband, kind: Any
    ) -> None:
        """A hang-up ends a Realtime call and a Live session alike: `ended`, so the
        supervisor logs and counts the same `how` for both."""
        if kind == "realtime":
            call_id, path = await realtime_call(http), "/v1/realtime/calls"
        else:
            call_id, path = await live_call(http), "/v1/live/sessions"
        connection = await sideband.connect(kind, call_id)
        await http.post(f"{path}/{call_id}/hangup", headers=KEY)
        reason = None
        for _ in range(100):  # the events before the end, then the end
            try:
                await connection.recv()
            except SidebandClosed as closed:
                reason = closed.reason
                break
        assert reason == "ended"

    async def test_send_after_end_is_ended(
        self, http: httpx.AsyncClient, sideband: Sideband
    ) -> None:
        """Sending to a call that has ended raises `ended`."""
        call_id = await realtime_call(http)
        connection = await sideband.connect("realtime", call_id)
        await http.post(f"/v1/realtime/calls/{call_id}/hangup", headers=KEY)
        with pytest.raises(SidebandClosed) as closed:
            await connection.send({"type": "session.update", "session": {}})
        assert closed.value.reason == "ended"

    @pytest.mark.parametrize("kind", ["realtime", "live"])
    async def test_unknown_call_is_unknown_call(
        self, http: httpx.AsyncClient, sideband: Sideband, kind: Any
    ) -> None:
        """An id the emulator does not hold, or a call of the other kind, is `unknown_call`."""
        call_id = await realtime_call(http)
        target = "rtc_unknown" if kind == "realtime" else call_id
        with pytest.raises(SidebandClosed) as closed:
            await sideband.connect(kind, target)
        assert closed.value.reason == "unknown_call"

    async def test_ended_call_refuses_a_new_attach(
        self, http: httpx.AsyncClient, sideband: Sideband
    ) -> None:
        """Once a call ended, attaching again is `unknown_call`: the supervisor's proof of
        the end after a normal close (which alone it takes for a drop)."""
        call_id = await realtime_call(http)
        await http.post(f"/v1/realtime/calls/{call_id}/hangup", headers=KEY)
        with pytest.raises(SidebandClosed) as closed:
            await sideband.connect("realtime", call_id)
        assert closed.value.reason == "unknown_call"

    async def test_detached_is_dropped(self, http: httpx.AsyncClient, sideband: Sideband) -> None:
        """After our own close, recv raises `dropped`: the call itself may go on."""
        call_id = await realtime_call(http)
        connection = await sideband.connect("realtime", call_id)
        await connection.close()
        with pytest.raises(SidebandClosed) as closed:
            await connection.recv()
        assert closed.value.reason == "dropped"


class TestInProcess:
    """`in_process()`: the emulator as the service's transport and sideband."""

    def test_sideband_is_the_emulated_one(self) -> None:
        """With the call routes importable, the sideband leads into the emulator's calls."""
        _, sideband = in_process()
        assert isinstance(sideband, EmulatedSideband)

    async def test_without_call_routes_every_call_is_unknown(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """When the emulator's call routes cannot be imported, every sideband is `unknown_call`."""
        monkeypatch.setitem(sys.modules, "emulator.calls.http", None)
        _, sideband = in_process()
        assert isinstance(sideband, NoSideband)
        with pytest.raises(SidebandClosed) as closed:
            await sideband.connect("realtime", "rtc_any")
        assert closed.value.reason == "unknown_call"
