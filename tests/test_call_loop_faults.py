"""The call loop's own rules for a failing sideband: when the backoff restarts, how a fault logs.

The sideband is scripted (tests/sidebands.py) and the clock injected, so a
connection's age is exactly what the test says; tests/test_hostile_sidebands.py
runs the same loop against a real hostile server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import respx

from service.api import create_app
from service.calls import reattach
from service.contract.calls import CallKind
from service.upstream.sideband import SidebandConnection
from tests.clocks import FakeClock
from tests.conftest import CALL_ID, SDP_OFFER, MakeSettings, serving
from tests.paths import REALTIME_CALLS
from tests.sidebands import ScriptedConnection, ScriptedSideband
from tests.suite_logs import captured_logs
from tests.test_admin import ALICE, OPS, admin_settings, bearer, create_call

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]
DEPTH = 500
SLOW_CLOSE_S = 0.5


@asynccontextmanager
async def service(
    make_settings: MakeSettings,
    upstream: respx.MockRouter,
    sideband: ScriptedSideband,
    clock: FakeClock,
) -> AsyncIterator[httpx.AsyncClient]:
    """The service on respx's OpenAI and the scripted sideband, on the test's clock."""
    transport = httpx.MockTransport(upstream.async_handler)
    app = create_app(make_settings(), transport=transport, sideband=sideband, clock=clock)
    async with serving(app) as client:
        response = await client.post(
            REALTIME_CALLS, content=SDP_OFFER, headers={"Content-Type": "application/sdp"}
        )
        assert response.status_code == 201
        yield client


def raise_deep(depth: int) -> None:
    """A fault raised `depth` frames down, as a deeply nested event would make one."""
    if depth:
        raise_deep(depth - 1)
    raise RecursionError("deep")


class FaultyConnection(ScriptedConnection):
    """A scripted sideband whose first event raises a fault deep in our code."""

    async def recv(self) -> dict[str, Any]:
        raise_deep(DEPTH)
        return {}


class FaultySideband(ScriptedSideband):
    """The first attachment is a `FaultyConnection`, the rest scripted as usual."""

    async def connect(self, kind: CallKind, call_id: str) -> SidebandConnection:
        if self.connections[call_id]:
            return await super().connect(kind, call_id)
        connection = FaultyConnection(self, call_id)
        self.connections[call_id].append(connection)
        self.changed.set()
        return connection


class TestBackoff:
    """Only a connection that worked (an event, `STABLE_S` up) starts the backoff over."""

    async def test_stable_connection_restarts_the_backoff(
        self,
        make_settings: MakeSettings,
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        attempts: list[int],
    ) -> None:
        """A drop after an event and 5 s waits from attempt 0; a drop at once, attempt 1."""
        clock = FakeClock()
        async with service(make_settings, upstream, sideband, clock):
            await sideband.attached(CALL_ID)
            sideband.emit(CALL_ID, {"type": "session.created", "session": {}})
            await sideband.until(lambda: sideband.current(CALL_ID).inbox.empty())
            clock.advance(reattach.STABLE_S * 1000)
            sideband.close(CALL_ID, "dropped")
            await sideband.attached(CALL_ID, 2)
            sideband.close(CALL_ID, "dropped")
            await sideband.attached(CALL_ID, 3)
        assert attempts == [0, 1]

    async def test_event_alone_does_not_make_a_connection_stable(
        self,
        make_settings: MakeSettings,
        upstream: respx.MockRouter,
        sideband: ScriptedSideband,
        attempts: list[int],
    ) -> None:
        """An event, then a drop before `STABLE_S`: the backoff keeps growing."""
        clock = FakeClock()
        async with service(make_settings, upstream, sideband, clock):
            for count in (1, 2):
                await sideband.attached(CALL_ID, count)
                sideband.emit(CALL_ID, {"type": "session.created", "session": {}})
                await sideband.until(lambda: sideband.current(CALL_ID).inbox.empty())
                sideband.close(CALL_ID, "dropped")
            await sideband.attached(CALL_ID, 3)
        assert attempts == [1, 2]


class TestFaults:
    """A fault in the loop's own handling: logged by type and place, supervision goes on."""

    async def test_fault_is_logged_with_its_type_and_place_not_its_stack(
        self,
        make_settings: MakeSettings,
        upstream: respx.MockRouter,
        attempts: list[int],
    ) -> None:
        """`call_supervision_fault` names RecursionError and this module's line, no trace."""
        sideband = FaultySideband()
        with captured_logs() as entries:
            async with service(make_settings, upstream, sideband, FakeClock()):
                await sideband.attached(CALL_ID, 2)
        faults = [e for e in entries if e["event"] == "call_supervision_fault"]
        line = raise_deep.__code__.co_firstlineno + 4
        assert [(e["error"], e["at"], "exc_info" in e) for e in faults] == [
            ("RecursionError", f"{__name__}:{line}", False)
        ]


class SlowClosingConnection(ScriptedConnection):
    """A sideband whose close takes a while, as one to a peer slow to answer the close."""

    async def close(self) -> None:
        await asyncio.sleep(SLOW_CLOSE_S)  # the peer's time, not a wait for a condition
        self.closed = True


class SlowClosingSideband(ScriptedSideband):
    """Every attachment closes slowly."""

    async def connect(self, kind: CallKind, call_id: str) -> SidebandConnection:
        connection = SlowClosingConnection(self, call_id)
        self.connections[call_id].append(connection)
        self.changed.set()
        return connection


class TestStopping:
    """Stopping waits for every call's task, also one ended just before."""

    async def test_stop_waits_for_a_call_just_ended_to_close_its_sideband(
        self, make_settings: MakeSettings, upstream: respx.MockRouter
    ) -> None:
        """An operator ends a call, the service stops at once: its sideband is closed by then.

        Ending a call takes it off the watched calls and cancels its task, which then
        closes the sideband; a stop that waited only for the watched calls' tasks left that
        close pending when the loop ended, the socket open and unread."""
        sideband = SlowClosingSideband()
        settings = admin_settings(make_settings)
        transport = httpx.MockTransport(upstream.async_handler)
        app = create_app(settings, transport=transport, sideband=sideband, clock=FakeClock())
        async with serving(app) as client:
            created = await create_call(client, ALICE)
            await sideband.attached(CALL_ID)
            ended = await client.post("/admin/callers/alice/hangup", headers=bearer(OPS))
            await sideband.until(lambda: upstream["hangup"].called)
        assert (created.status_code, ended.status_code, sideband.current(CALL_ID).closed) == (
            201,
            200,
            True,
        )
