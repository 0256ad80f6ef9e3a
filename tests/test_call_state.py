"""`GET /v1/realtime/calls/{call_id}` and `GET /v1/live/sessions/{session_id}`.

What the service does for a call, for its creator to poll: the fields the
policy fixed (names only), each override and its time to revert, the
deadline, the usage so far. Anyone else, and an unknown id, get hang-up's
404. The answer comes from the call's record in the shared store, which the
supervising worker keeps up to date, so with Redis any replica answers.

The sideband is scripted (tests/sidebands.py) and the service's clock is a
`FakeClock` the tests move: times in the answers are exact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
import respx

from service.api import create_app
from service.auth import new_api_key
from service.calls.records import OVERRIDES_KEPT
from service.calls.state import CallState
from service.config import Settings
from tests.clocks import START_MS, FakeClock
from tests.conftest import (
    CALL_ID,
    LIVE_ID,
    SDP_OFFER,
    SERVER_INSTRUCTIONS,
    MakeSettings,
    serving,
)
from tests.paths import LIVE_SESSIONS, REALTIME_CALLS
from tests.servers import RedisServer, redis_server
from tests.sidebands import ScriptedSideband
from tests.test_call_supervision import attached, eventually, session_updated

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]
REALTIME_STATE = f"{REALTIME_CALLS}/{CALL_ID}"
LIVE_STATE = f"{LIVE_SESSIONS}/{LIVE_ID}"
Open = Callable[..., Awaitable[httpx.AsyncClient]]
"""Opens a client on a fresh app (settings overrides as keywords) on the test's clock."""


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(name="keys")
def fixture_keys() -> dict[str, str]:
    """Two callers' keys (alice, bob); the `AUTH_API_KEYS` value is under `entries`."""
    alice, alice_entry = new_api_key("alice")
    bob, bob_entry = new_api_key("bob")
    return {"alice": alice, "bob": bob, "entries": f"{alice_entry},{bob_entry}"}


@pytest.fixture(name="clock")
def fixture_clock() -> FakeClock:
    """The service's clock: call times, deadlines and reverts are counted by it."""
    return FakeClock()


@pytest.fixture(name="open_app")
async def fixture_open_app(
    make_settings: MakeSettings,
    keys: dict[str, str],
    upstream: respx.MockRouter,
    sideband: ScriptedSideband,
    clock: FakeClock,
) -> AsyncIterator[Open]:
    """Apps with API-key callers, respx for OpenAI's HTTP side, the scripted sideband."""
    async with AsyncExitStack() as stack:

        async def open_app(**overrides: Any) -> httpx.AsyncClient:
            values = {"auth_mode": "api_key", "auth_api_keys": keys["entries"], **overrides}
            settings: Settings = make_settings(**values)
            transport = httpx.MockTransport(upstream.async_handler)
            app = create_app(settings, transport, sideband, clock)
            return await stack.enter_async_context(serving(app))

        yield open_app


@pytest.fixture(name="service")
async def fixture_service(open_app: Open) -> httpx.AsyncClient:
    """The service with the default policy."""
    return await open_app()


async def create_realtime(client: httpx.AsyncClient, key: str) -> None:
    response = await client.post(
        REALTIME_CALLS, content=SDP_OFFER, headers={**auth(key), "Content-Type": "application/sdp"}
    )
    assert response.status_code == 201, response.text


async def create_live(client: httpx.AsyncClient, key: str) -> None:
    response = await client.post(
        LIVE_SESSIONS,
        json={"session": {}, "transport": {"type": "webrtc", "sdp": SDP_OFFER}},
        headers=auth(key),
    )
    assert response.status_code == 200, response.text


async def state_of(client: httpx.AsyncClient, key: str, path: str = REALTIME_STATE) -> Any:
    response = await client.get(path, headers=auth(key))
    assert response.status_code == 200, response.text
    return response.json()


class TestOwner:
    """The caller who created the call sees it; the answer is the documented model."""

    async def test_owner_gets_the_realtime_call(
        self, service: httpx.AsyncClient, keys: dict[str, str], sideband: ScriptedSideband
    ) -> None:
        """Id, kind, active, the fixed fields by name, no overrides yet, nothing used yet."""
        await create_realtime(service, keys["alice"])
        await attached(sideband, CALL_ID)
        response = await service.get(REALTIME_STATE, headers=auth(keys["alice"]))
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        CallState.model_validate(body)
        assert (body["id"], body["kind"], body["state"]) == (CALL_ID, "realtime", "active")
        assert body["fixed"] == ["model", "audio.output.voice", "tracing", "tools"]
        assert body["overrides"] == []
        assert body["usage"] == {"tokens": 0, "seconds": 0, "usd": "0.000000"}

    async def test_owner_gets_the_live_session(
        self, service: httpx.AsyncClient, keys: dict[str, str]
    ) -> None:
        """GPT-Live's state is under its own path, with its own fixed fields."""
        await create_live(service, keys["alice"])
        body = await state_of(service, keys["alice"], LIVE_STATE)
        assert (body["id"], body["kind"]) == (LIVE_ID, "live")
        assert body["fixed"] == ["delegation"]

    async def test_fixed_values_are_never_shown(self, open_app: Open, keys: dict[str, str]) -> None:
        """Server instructions are fixed: the answer names the field, never its text."""
        service = await open_app(
            policy={"instructions": SERVER_INSTRUCTIONS, "instructions_mode": "server"}
        )
        await create_realtime(service, keys["alice"])
        response = await service.get(REALTIME_STATE, headers=auth(keys["alice"]))
        assert "instructions" in response.json()["fixed"]
        assert SERVER_INSTRUCTIONS not in response.text


class TestNotFound:
    """Anyone but the creator gets the 404 an unknown id gets: ids leak nothing."""

    async def test_another_caller_gets_404(
        self, service: httpx.AsyncClient, keys: dict[str, str]
    ) -> None:
        """Bob cannot read Alice's call; the envelope is hang-up's call_not_found."""
        await create_realtime(service, keys["alice"])
        response = await service.get(REALTIME_STATE, headers=auth(keys["bob"]))
        assert response.status_code == 404
        assert response.json()["error"] == {
            "message": f"No open call with id '{CALL_ID}'.",
            "type": "invalid_request_error",
            "param": None,
            "code": "call_not_found",
        }

    @pytest.mark.parametrize("call_id", ["rtc_never_created", "a" * 200, "rtc%20x"])
    async def test_unknown_or_malformed_id_is_404(
        self, service: httpx.AsyncClient, keys: dict[str, str], call_id: str
    ) -> None:
        """Ids the service never created, however they look: the same 404."""
        response = await service.get(f"{REALTIME_CALLS}/{call_id}", headers=auth(keys["alice"]))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "call_not_found"

    async def test_wrong_kind_is_404(
        self, service: httpx.AsyncClient, keys: dict[str, str]
    ) -> None:
        """A Realtime call id under the Live path is unknown there."""
        await create_realtime(service, keys["alice"])
        response = await service.get(f"{LIVE_SESSIONS}/{CALL_ID}", headers=auth(keys["alice"]))
        assert response.status_code == 404

    async def test_ended_call_is_404(
        self, service: httpx.AsyncClient, keys: dict[str, str], sideband: ScriptedSideband
    ) -> None:
        """Once the call is over its record is gone, and so is its state."""
        await create_realtime(service, keys["alice"])
        await attached(sideband, CALL_ID)
        sideband.close(CALL_ID, "ended")

        async def gone() -> bool:
            response = await service.get(REALTIME_STATE, headers=auth(keys["alice"]))
            return response.status_code == 404

        await eventually(gone)

    async def test_unauthenticated_is_401(self, service: httpx.AsyncClient) -> None:
        """Reading a call needs a caller like every endpoint."""
        assert (await service.get(REALTIME_STATE)).status_code == 401


class TestDeadline:
    """The deadline is the start plus CALLS_MAX_SECONDS; time left counts down to it."""

    async def test_deadline_is_start_plus_max_seconds(
        self, open_app: Open, keys: dict[str, str], clock: FakeClock
    ) -> None:
        """CALLS_MAX_SECONDS=600: deadline 600 s after the start; 90 s on, 510 s are left."""
        service = await open_app(calls_max_seconds=600)
        await create_realtime(service, keys["alice"])
        body = await state_of(service, keys["alice"])
        assert body["started_at_ms"] == START_MS
        assert body["deadline_at_ms"] == START_MS + 600_000
        assert body["left_ms"] == 600_000
        clock.advance(90_000)
        body = await state_of(service, keys["alice"])
        assert body["left_ms"] == 510_000
        assert body["usage"]["seconds"] == 90


class TestOverrides:
    """What the supervisor did about each override, timed on the service's clock."""

    async def test_reverted_override_shows_its_time_to_revert(
        self,
        service: httpx.AsyncClient,
        keys: dict[str, str],
        sideband: ScriptedSideband,
        clock: FakeClock,
    ) -> None:
        """Seen at t, reverted at once, confirmed by OpenAI 250 ms later: revert_ms 250."""
        await create_realtime(service, keys["alice"])
        await attached(sideband, CALL_ID)
        changed = session_updated()
        changed["session"]["audio"] = {"output": {"voice": "verse"}}
        sideband.emit(CALL_ID, changed)
        await sideband.until(lambda: len(sideband.sent[CALL_ID]) == 1)
        [pending] = (await state_of(service, keys["alice"]))["overrides"]
        assert pending == {
            "scope": "session",
            "field": "audio.output.voice",
            "at_ms": START_MS,
            "outcome": "reverting",
            "revert_ms": None,
        }
        clock.advance(250)
        sideband.emit(CALL_ID, session_updated())  # OpenAI's echo of the revert
        # Events are handled in order: once this one is reverted, the echo was handled.
        sideband.emit(CALL_ID, session_updated(tracing="auto"))
        await sideband.until(lambda: len(sideband.sent[CALL_ID]) == 2)
        voice, tracing = (await state_of(service, keys["alice"]))["overrides"]
        assert voice == {
            "scope": "session",
            "field": "audio.output.voice",
            "at_ms": START_MS,
            "outcome": "reverted",
            "revert_ms": 250,
        }
        assert (tracing["field"], tracing["outcome"]) == ("tracing", "reverting")

    async def test_a_field_changed_again_before_its_revert_is_one_entry(
        self, service: httpx.AsyncClient, keys: dict[str, str], sideband: ScriptedSideband
    ) -> None:
        """A client that keeps changing a field while it is reverted: one override, pending."""
        await create_realtime(service, keys["alice"])
        await attached(sideband, CALL_ID)
        for _ in range(3):
            sideband.emit(CALL_ID, session_updated(tracing="auto"))
        await sideband.until(lambda: len(sideband.sent[CALL_ID]) == 3)
        overrides = (await state_of(service, keys["alice"]))["overrides"]
        assert [(o["field"], o["outcome"]) for o in overrides] == [("tracing", "reverting")]

    async def test_only_the_latest_overrides_are_kept(
        self,
        service: httpx.AsyncClient,
        keys: dict[str, str],
        sideband: ScriptedSideband,
        clock: FakeClock,
    ) -> None:
        """More overrides than a record keeps: the latest OVERRIDES_KEPT, oldest first."""
        await create_realtime(service, keys["alice"])
        await attached(sideband, CALL_ID)
        count = OVERRIDES_KEPT + 5
        for sent in range(1, count + 1):
            # Each override reverted and confirmed, a minute apart (no revert loop).
            clock.advance(60_000)
            sideband.emit(CALL_ID, session_updated(tracing="auto"))
            sideband.emit(CALL_ID, session_updated())
            await sideband.until(lambda n=sent: len(sideband.sent[CALL_ID]) == n)
        sideband.emit(CALL_ID, session_updated(tracing="auto"))  # handled after the last echo
        await sideband.until(lambda: len(sideband.sent[CALL_ID]) == count + 1)
        overrides = (await state_of(service, keys["alice"]))["overrides"]
        assert len(overrides) == OVERRIDES_KEPT
        assert overrides[-1]["outcome"] == "reverting"
        assert overrides[0]["at_ms"] == START_MS + (count - OVERRIDES_KEPT + 2) * 60_000


class TestUsage:
    """The call's own usage, written by the keeper's pass when it changed."""

    async def test_realtime_tokens_show(
        self, open_app: Open, keys: dict[str, str], sideband: ScriptedSideband
    ) -> None:
        """`response.done` usage of this call adds up in its state."""
        service = await open_app(calls_lease_seconds=1)
        await create_realtime(service, keys["alice"])
        await attached(sideband, CALL_ID)
        for tokens in (120, 80):
            sideband.emit(
                CALL_ID, {"type": "response.done", "response": {"usage": {"total_tokens": tokens}}}
            )

        async def counted() -> bool:
            return bool((await state_of(service, keys["alice"]))["usage"]["tokens"] == 200)

        await eventually(counted)

    async def test_live_seconds_show(
        self, open_app: Open, keys: dict[str, str], sideband: ScriptedSideband
    ) -> None:
        """GPT-Live's reported usage seconds are the session's seconds, and its cost theirs:
        45 s of gpt-live-1 (no standby price: paused seconds at $0.05 a minute) is $0.0375."""
        service = await open_app(calls_lease_seconds=1)
        await create_live(service, keys["alice"])
        await attached(sideband, LIVE_ID)
        usage = {"seconds": 45, "active_seconds": 40, "paused_seconds": 5}
        sideband.emit(LIVE_ID, {"type": "session.usage.updated", "usage": usage})

        async def counted() -> bool:
            body = await state_of(service, keys["alice"], LIVE_STATE)
            return bool(body["usage"] == {"tokens": 0, "seconds": 45, "usd": "0.037500"})

        await eventually(counted)


@pytest.fixture(name="redis")
def fixture_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


class TestSharedStore:
    """With Redis, any replica answers for a call another replica supervises."""

    async def test_override_seen_on_another_replica(
        self,
        redis: RedisServer,
        open_app: Open,
        keys: dict[str, str],
        sideband: ScriptedSideband,
    ) -> None:
        """Created and supervised on replica A; replica B shows its override; Bob still 404."""
        shared = {"redis_url": redis.url, "redis_timeout_seconds": 2.0}
        replica_a = await open_app(**shared)
        replica_b = await open_app(**shared)
        await create_realtime(replica_a, keys["alice"])
        await attached(sideband, CALL_ID)
        sideband.emit(CALL_ID, session_updated(tracing="auto"))
        await sideband.until(lambda: sideband.sent[CALL_ID])

        async def shown_on_b() -> bool:
            body = await state_of(replica_b, keys["alice"])
            return bool(body["overrides"])

        await eventually(shown_on_b)  # replica A writes it to Redis right after the revert
        [override] = (await state_of(replica_b, keys["alice"]))["overrides"]
        assert (override["field"], override["outcome"]) == ("tracing", "reverting")
        refused = await replica_b.get(REALTIME_STATE, headers=auth(keys["bob"]))
        assert refused.status_code == 404
