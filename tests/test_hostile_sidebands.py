"""Supervision against a hostile upstream: sidebands that close, flood or talk nonsense.

The service runs in this process against `tests.hostile`, a real server over
real sockets (its HTTP routes through httpx, its sideband through
`WebSocketSideband`), with a clock the test moves. Nothing waits on wall time:
each test waits until the hostile side or the service has seen what it names.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from service.api import create_app
from service.upstream.sideband import FLOOD_SECONDS, WebSocketSideband
from tests.clocks import FakeClock
from tests.conftest import SDP_OFFER, MakeSettings, serving
from tests.hostile import UNREADABLE, UNREADABLE_FRAMES, HostileServer, Mode, hostile_upstream
from tests.paths import METRICS, REALTIME_CALLS
from tests.suite_logs import captured_logs

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]
WAIT_S = 30.0
"""Only a hang guard: every wait here ends on a condition."""


@pytest.fixture(name="hostile")
def fixture_hostile() -> Iterator[HostileServer]:
    """A hostile upstream, in `normal` mode until the test sets another."""
    with hostile_upstream() as server:
        yield server


@pytest.fixture(name="clock")
def fixture_clock() -> FakeClock:
    """The service's clock, moved only by the test."""
    return FakeClock()


@asynccontextmanager
async def service(
    make_settings: MakeSettings, hostile: HostileServer, clock: FakeClock, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The service with the hostile upstream as OpenAI (any key will do)."""
    app = create_app(make_settings(openai_base_url=hostile.url, **settings), clock=clock)
    async with serving(app) as client:
        yield client


async def create(client: httpx.AsyncClient, hostile: HostileServer, mode: Mode) -> str:
    """A call whose sideband behaves as `mode`; its id."""
    hostile.hostile.mode = mode
    response = await client.post(
        REALTIME_CALLS, content=SDP_OFFER, headers={"Content-Type": "application/sdp"}
    )
    assert response.status_code == 201, response.text
    return response.headers["location"].rsplit("/", 1)[-1]


async def until(condition: Callable[[], bool | Awaitable[bool]]) -> None:
    """Wait (yielding to the service and the server) until `condition` holds."""
    async with asyncio.timeout(WAIT_S):
        while True:
            held = condition()
            if not isinstance(held, bool):
                held = await held
            if held:
                return
            await asyncio.sleep(0.01)


async def metric(client: httpx.AsyncClient, sample: str) -> float:
    """One sample of the service's metrics (0 when absent)."""
    for line in (await client.get(METRICS)).text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


ENDED = 'rtp_calls_ended_total{how="%s"}'
DROPPED = 'rtp_sideband_events_dropped_total{why="%s"}'
DROPPED_TOTAL = "rtp_sideband_events_dropped_total"


class TestFailedAttachments:
    """A sideband that cannot be kept: the backoff grows, and the call is hung up in the end."""

    async def test_accepted_then_closed_sideband_backs_off_further_each_time(
        self,
        make_settings: MakeSettings,
        hostile: HostileServer,
        clock: FakeClock,
        attempts: list[int],
    ) -> None:
        """A connection accepted and closed at once does not restart the backoff."""
        async with service(make_settings, hostile, clock, calls_sideband_max_failures=4) as client:
            call_id = await create(client, hostile, "accept_close")
            await until(lambda: hostile.hostile.hangups[call_id] == 1)
        assert attempts == [1, 2, 3]

    async def test_call_is_hung_up_unsupervisable_after_the_bound(
        self,
        make_settings: MakeSettings,
        hostile: HostileServer,
        clock: FakeClock,
        attempts: list[int],
    ) -> None:
        """After CALLS_SIDEBAND_MAX_FAILURES failed attachments the call is hung up."""
        async with service(make_settings, hostile, clock, calls_sideband_max_failures=4) as client:
            before = await metric(client, ENDED % "unsupervisable")
            call_id = await create(client, hostile, "accept_close")
            await until(lambda: hostile.hostile.hangups[call_id] == 1)
            await until(lambda: _grew(client, ENDED % "unsupervisable", before))
        assert hostile.hostile.handshakes[call_id] == 4

    async def test_oversize_frame_counts_as_a_failed_attachment(
        self,
        make_settings: MakeSettings,
        hostile: HostileServer,
        clock: FakeClock,
        attempts: list[int],
    ) -> None:
        """A frame over the size limit drops the socket, unstable: bounded like the rest."""
        async with service(make_settings, hostile, clock, calls_sideband_max_failures=2) as client:
            call_id = await create(client, hostile, "oversize")
            await until(lambda: hostile.hostile.hangups[call_id] == 1)
        assert (hostile.hostile.handshakes[call_id], attempts) == (2, [1])

    async def test_failures_are_logged_in_aggregate(
        self,
        make_settings: MakeSettings,
        hostile: HostileServer,
        clock: FakeClock,
        attempts: list[int],
    ) -> None:
        """Six failures within an interval: the first line at once, one more with the rest."""
        with captured_logs() as entries:
            async with service(
                make_settings, hostile, clock, calls_sideband_max_failures=6
            ) as client:
                call_id = await create(client, hostile, "accept_close")
                await until(lambda: hostile.hostile.hangups[call_id] == 1)
        failing = [e for e in entries if e["event"] == "sideband_failing"]
        assert [(e["count"], e["total"]) for e in failing] == [(1, 1), (5, 6)]


class TestNormalClose:
    """A sideband closed with 1000 is not the call's end until the upstream says so."""

    async def test_normal_close_while_the_call_lives_is_reattached(
        self,
        make_settings: MakeSettings,
        hostile: HostileServer,
        clock: FakeClock,
        attempts: list[int],
    ) -> None:
        """The call is attached again, and its owner's hang-up still reaches it (200)."""
        async with service(make_settings, hostile, clock) as client:
            call_id = await create(client, hostile, "close_once")
            await until(lambda: hostile.hostile.handshakes[call_id] == 2)
            response = await client.post(f"{REALTIME_CALLS}/{call_id}/hangup")
        assert (response.status_code, hostile.hostile.hangups[call_id]) == (200, 1)

    async def test_ended_call_is_forgotten_once_the_reattach_is_refused(
        self,
        make_settings: MakeSettings,
        hostile: HostileServer,
        clock: FakeClock,
        attempts: list[int],
    ) -> None:
        """The call ends upstream: close 1000, then 4404 on reattaching, counted as `ended`."""
        async with service(make_settings, hostile, clock) as client:
            before = await metric(client, ENDED % "ended")
            call_id = await create(client, hostile, "normal")
            await until(lambda: hostile.hostile.handshakes[call_id] == 1)
            hostile.hostile.end(call_id)
            await until(lambda: _grew(client, ENDED % "ended", before))
        assert hostile.hostile.handshakes[call_id] == 2


class TestUnreadableFrames:
    """Frames that are not JSON objects: counted, one log line per call and interval."""

    async def test_unreadable_frames_are_one_line_with_count_and_bytes(
        self, make_settings: MakeSettings, hostile: HostileServer, clock: FakeClock
    ) -> None:
        """50 unreadable frames make one `sideband_unreadable_events` line, not 50."""
        with captured_logs() as entries:
            async with service(make_settings, hostile, clock) as client:
                before = await metric(client, DROPPED % "unreadable")
                call_id = await create(client, hostile, "unreadable")
                await until(
                    lambda: _grew(client, DROPPED % "unreadable", before + UNREADABLE_FRAMES - 1)
                )
                await client.post(f"{REALTIME_CALLS}/{call_id}/hangup")
        lines = [e for e in entries if e["event"] == "sideband_unreadable_events"]
        assert [(e["count"], e["bytes"]) for e in lines] == [
            (UNREADABLE_FRAMES, UNREADABLE_FRAMES * len(UNREADABLE))
        ]


class TestFlood:
    """Events past CALLS_SIDEBAND_MAX_EVENTS_PER_SECOND: dropped unread, then hung up."""

    async def test_events_past_the_budget_are_dropped_and_counted(
        self, make_settings: MakeSettings, hostile: HostileServer, clock: FakeClock
    ) -> None:
        """With a budget of 10 a second, a flood has dropped frames counted."""
        async with service(
            make_settings, hostile, clock, calls_sideband_max_events_per_second=10
        ) as client:
            before = await metric(client, DROPPED % "budget")
            call_id = await create(client, hostile, "flood")
            await until(lambda: _grew(client, DROPPED % "budget", before))
            await client.post(f"{REALTIME_CALLS}/{call_id}/hangup")

    async def test_dropped_frames_are_one_line_with_their_count(
        self, make_settings: MakeSettings, hostile: HostileServer, clock: FakeClock
    ) -> None:
        """Thousands of frames dropped within an interval make one log line with the count."""
        before = _dropped()
        with captured_logs() as entries:
            async with service(
                make_settings, hostile, clock, calls_sideband_max_events_per_second=10
            ) as client:
                call_id = await create(client, hostile, "flood")
                await until(lambda: _dropped() > before + 100)
                await client.post(f"{REALTIME_CALLS}/{call_id}/hangup")
        dropped = _dropped() - before  # the service stopped: every frame it dropped
        lines = [e for e in entries if e["event"] == "sideband_events_dropped"]
        assert [e["count"] for e in lines] == [dropped]

    async def test_flood_for_five_seconds_in_a_row_is_hung_up(
        self, make_settings: MakeSettings, hostile: HostileServer, clock: FakeClock
    ) -> None:
        """Over budget in five consecutive seconds (by the clock): hung up, `flood`."""
        async with service(
            make_settings, hostile, clock, calls_sideband_max_events_per_second=10
        ) as client:
            before = await metric(client, ENDED % "flood")
            call_id = await create(client, hostile, "flood")
            seconds = 0
            while not hostile.hostile.hangups[call_id]:
                dropped = _dropped()

                def flooded_or_hung_up(dropped: float = dropped) -> bool:
                    return _dropped() > dropped or hostile.hostile.hangups[call_id] > 0

                await until(flooded_or_hung_up)  # this second, over budget
                clock.advance(1000)
                seconds += 1
            await until(lambda: _grew(client, ENDED % "flood", before))
        assert (hostile.hostile.hangups[call_id], seconds >= FLOOD_SECONDS) == (1, True)


class TestLettingGo:
    """A sideband the service is done with is closed for good, however its close ends."""

    async def test_a_cancelled_close_still_lets_the_socket_go(
        self, hostile: HostileServer, clock: FakeClock
    ) -> None:
        """Cancelled while it waits for a flooding peer's close frame: the socket is shut."""
        hostile.hostile.mode = "flood"
        async with httpx.AsyncClient(base_url=hostile.url) as upstream:
            created = await upstream.post("/realtime/calls", content=SDP_OFFER)
        call_id = created.headers["location"].rsplit("/", 1)[-1]
        sideband = WebSocketSideband(hostile.url, {}, max_events_per_second=10, clock=clock)
        connection = await sideband.connect("realtime", call_id)
        await connection.recv()
        await until(lambda: hostile.hostile.frames_sent[call_id] > 0)
        closing = asyncio.create_task(connection.close())
        await asyncio.sleep(0)  # the close frame sent, the wait for the peer's begun
        closing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await closing
        await until(lambda: hostile.hostile.connected[call_id] == 0)


def _dropped() -> float:
    """Frames the service dropped over budget so far, from its registry (also once stopped)."""
    return REGISTRY.get_sample_value(DROPPED_TOTAL, {"why": "budget"}) or 0.0


async def _grew(client: httpx.AsyncClient, sample: str, before: float) -> bool:
    return await metric(client, sample) > before
