"""A shared store that loses its data (FLUSHALL, a restart with no persistence) heals.

So does what happened while it was down: usage a call reported then is kept
by its worker and written once the store answers.

The worker that watches a call writes back whatever of the call the store
lost (its record, its live-call slot, its lease) within one keeper pass, so
the owner's hang-up works again, the per-caller cap counts the live call,
and another worker could adopt it. Real redis-server; the keeper runs every
third of a second (`CALLS_LEASE_SECONDS=1`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import respx

from service.api import create_app
from service.auth import new_api_key
from service.calls.keeper import Keeper
from service.calls.records import CallRecord, CallRecords
from service.calls.usage import UsageKeys
from service.calls.watched import Watched
from service.core.clock import day_of
from service.store import StoreUnavailable
from service.store.redis import RedisStore
from tests.clocks import FakeClock
from tests.conftest import CALL_ID, LIVE_ID, SDP_ANSWER, SDP_OFFER, MakeSettings, serving
from tests.paths import REALTIME_CALLS
from tests.servers import RedisServer, redis_server
from tests.sidebands import ScriptedSideband
from tests.suite_logs import captured_logs

pytestmark = [pytest.mark.anyio, pytest.mark.redis, pytest.mark.timeout(60)]
RECORD = f"rtp:call:realtime:{CALL_ID}"
LEASES = "rtp:calls:leases"


async def until(check: Callable[[], Awaitable[bool]], guard_s: float = 30.0) -> None:
    """Poll `check` until it holds; `guard_s` only bounds a hang."""
    async with asyncio.timeout(guard_s):
        while not await check():
            await asyncio.sleep(0.05)


class TestFlushall:
    """FLUSHALL under a live call."""

    async def test_record_slot_and_lease_come_back(
        self,
        make_settings: MakeSettings,
        sideband: ScriptedSideband,
        upstream: respx.MockRouter,
    ) -> None:
        """After a flush the owner hangs up, the cap holds, and the lease is held again."""
        key, entry = new_api_key("alice")
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/sdp"}
        with redis_server() as redis:
            settings = make_settings(
                auth_mode="api_key",
                auth_api_keys=entry,
                redis_url=redis.url,
                redis_timeout_seconds=2.0,
                calls_lease_seconds=1,
                calls_max_concurrent_per_identity=1,
            )
            app = create_app(settings, httpx.MockTransport(upstream.async_handler), sideband)
            store = redis.client()
            async with serving(app) as client:
                created = await client.post(REALTIME_CALLS, content=SDP_OFFER, headers=headers)
                assert created.status_code == 201, created.text
                await sideband.attached(CALL_ID)
                assert store.exists(RECORD)
                store.flushall()
                assert not store.exists(RECORD)

                async def healed() -> bool:
                    leased = store.zscore(LEASES, f"realtime:{CALL_ID}")
                    return bool(store.exists(RECORD)) and leased is not None

                await until(healed)
                # The cap counts the live call again: a second one is refused.
                second = await client.post(REALTIME_CALLS, content=SDP_OFFER, headers=headers)
                assert second.status_code == 429, second.text
                assert second.json()["error"]["code"] == "too_many_calls"
                # And its owner can end it through the service.
                hangup = await client.post(
                    f"{REALTIME_CALLS}/{CALL_ID}/hangup", headers={"Authorization": f"Bearer {key}"}
                )
                assert hangup.status_code == 200, hangup.text
            store.close()


@dataclass(frozen=True, slots=True)
class Outage:
    """A live call on a service whose Redis the test stops and starts."""

    client: httpx.AsyncClient
    redis: RedisServer
    logs: list[Any]
    """Every log line while the call lives (captured)."""


@asynccontextmanager
async def outage(
    make_settings: MakeSettings,
    sideband: ScriptedSideband,
    upstream: respx.MockRouter,
    **settings: Any,
) -> AsyncIterator[Outage]:
    """One call created and attached, its keeper passing every third of a second."""
    with redis_server() as redis, captured_logs() as logs:
        app = create_app(
            make_settings(
                redis_url=redis.url,
                redis_timeout_seconds=2.0,
                calls_lease_seconds=1,
                **settings,
            ),
            httpx.MockTransport(upstream.async_handler),
            sideband,
        )
        async with serving(app) as client:
            headers = {"Content-Type": "application/sdp"}
            created = await client.post(REALTIME_CALLS, content=SDP_OFFER, headers=headers)
            assert created.status_code == 201, created.text
            await sideband.attached(CALL_ID)
            yield Outage(client, redis, logs)


def response_done(tokens: int) -> dict[str, Any]:
    return {"type": "response.done", "response": {"usage": {"total_tokens": tokens}}}


async def tokens_during_outage(call: Outage, sideband: ScriptedSideband) -> None:
    """Stop Redis, report 300 tokens in three responses, start Redis again (empty)."""
    call.redis.stop()
    for _ in range(3):
        sideband.emit(CALL_ID, response_done(100))

    async def deferred() -> bool:
        return sum(1 for line in call.logs if line["event"] == "call_usage_deferred") == 3

    await until(deferred)
    call.redis.start()


async def tokens_today(client: httpx.AsyncClient) -> int:
    response = await client.get("/v1/usage")
    return int(response.json()["usage"]["tokens"]) if response.status_code == 200 else -1


class TestUsageDuringAnOutage:
    """Tokens reported while Redis is down are kept and written once it answers."""

    async def test_tokens_are_written_once_the_store_returns(
        self, make_settings: MakeSettings, sideband: ScriptedSideband, upstream: respx.MockRouter
    ) -> None:
        """300 tokens over three responses while Redis is down: the counter holds 300 after."""
        async with outage(make_settings, sideband, upstream) as call:
            await tokens_during_outage(call, sideband)

            async def written() -> bool:
                return await tokens_today(call.client) > 0

            await until(written)
            assert await tokens_today(call.client) == 300

    async def test_tokens_are_not_counted_twice(
        self, make_settings: MakeSettings, sideband: ScriptedSideband, upstream: respx.MockRouter
    ) -> None:
        """Two keeper passes after the write, the counter still holds 300."""
        async with outage(make_settings, sideband, upstream) as call:
            await tokens_during_outage(call, sideband)
            admin = call.redis.client()

            async def written() -> bool:
                return await tokens_today(call.client) == 300

            await until(written)
            for _ in range(2):
                before = admin.zscore(LEASES, f"realtime:{CALL_ID}") or 0.0

                async def renewed(since: float = before) -> bool:
                    return (admin.zscore(LEASES, f"realtime:{CALL_ID}") or 0.0) > since

                await until(renewed)
            assert await tokens_today(call.client) == 300
            admin.close()

    async def test_token_quota_applies_once_they_are_written(
        self, make_settings: MakeSettings, sideband: ScriptedSideband, upstream: respx.MockRouter
    ) -> None:
        """Past QUOTA_TOKENS_PER_DAY with the deferred tokens: the call is hung up for quota."""
        async with outage(make_settings, sideband, upstream, quota_tokens_per_day=250) as call:
            await tokens_during_outage(call, sideband)
            await sideband.until(lambda: upstream.routes["hangup"].called, timeout=30)
            [line] = [line for line in call.logs if line["event"] == "call_hung_up"]
            assert line["reason"] == "quota"


OPEN_CALLS = [f"rtc_test_open_{n}" for n in range(5)]


def numbered_answers() -> Callable[[httpx.Request], httpx.Response]:
    """OpenAI's answers to call creations, each naming the next of `OPEN_CALLS`."""
    ids = iter(OPEN_CALLS)

    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"Location": f"/v1/realtime/calls/{next(ids)}", "Content-Type": "application/sdp"}
        return httpx.Response(201, content=SDP_ANSWER.encode(), headers=headers)

    return answer


@asynccontextmanager
async def open_during_outage(
    make_settings: MakeSettings,
    sideband: ScriptedSideband,
    upstream: respx.MockRouter,
    **settings: Any,
) -> AsyncIterator[Outage]:
    """Five calls of one caller admitted open (cap 2) while Redis is down; Redis back."""
    upstream.routes["call"].side_effect = numbered_answers()
    with redis_server() as redis, captured_logs() as logs:
        app = create_app(
            make_settings(
                redis_url=redis.url,
                redis_timeout_seconds=2.0,
                calls_lease_seconds=1,
                calls_max_concurrent_per_identity=2,
                rate_limit_on_store_error="open",
                **settings,
            ),
            httpx.MockTransport(upstream.async_handler),
            sideband,
        )
        async with serving(app) as client:
            redis.stop()
            headers = {"Content-Type": "application/sdp"}
            for call_id in OPEN_CALLS:
                created = await client.post(REALTIME_CALLS, content=SDP_OFFER, headers=headers)
                assert created.status_code == 201, created.text
                await sideband.attached(call_id)
            redis.start()
            yield Outage(client, redis, logs)


def over_cap(logs: list[Any]) -> list[str]:
    return [line["call_id"] for line in logs if line["event"] == "call_over_cap_after_outage"]


class TestOpenAdmissionDuringAnOutage:
    """RATE_LIMIT_ON_STORE_ERROR=open: calls admitted while Redis was down take their slots."""

    async def test_every_open_call_takes_its_slot(
        self, make_settings: MakeSettings, sideband: ScriptedSideband, upstream: respx.MockRouter
    ) -> None:
        """Once Redis answers, the caller's five live calls hold five slots."""
        async with open_during_outage(make_settings, sideband, upstream) as calls:

            async def taken() -> bool:
                response = await calls.client.get("/v1/usage")
                return response.status_code == 200 and response.json()["usage"]["live_calls"] == 5

            await until(taken)

    async def test_the_cap_refuses_new_calls_until_enough_end(
        self, make_settings: MakeSettings, sideband: ScriptedSideband, upstream: respx.MockRouter
    ) -> None:
        """With the five slots taken, the caller's next call is 429 too_many_calls."""
        async with open_during_outage(make_settings, sideband, upstream) as calls:

            async def reported() -> bool:
                return len(over_cap(calls.logs)) == 3

            await until(reported)
            headers = {"Content-Type": "application/sdp"}
            refused = await calls.client.post(REALTIME_CALLS, content=SDP_OFFER, headers=headers)
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"]["code"] == "too_many_calls"

    async def test_the_calls_over_the_cap_are_reported_and_kept(
        self, make_settings: MakeSettings, sideband: ScriptedSideband, upstream: respx.MockRouter
    ) -> None:
        """The three latest get an audit line naming the caller; by default none is hung up."""
        async with open_during_outage(make_settings, sideband, upstream) as calls:

            async def reported() -> bool:
                return len(over_cap(calls.logs)) == 3

            await until(reported)
            assert over_cap(calls.logs) == OPEN_CALLS[2:]
            lines = [line for line in calls.logs if line["event"] == "call_over_cap_after_outage"]
            assert {(line["identity"], line["action"]) for line in lines} == {("anonymous", "keep")}
            assert not upstream.routes["hangup"].called

    async def test_hangup_mode_hangs_up_the_calls_over_the_cap(
        self, make_settings: MakeSettings, sideband: ScriptedSideband, upstream: respx.MockRouter
    ) -> None:
        """CALLS_OVER_CAP_AFTER_OUTAGE=hangup: the three over the cap are hung up, two stay."""
        async with open_during_outage(
            make_settings, sideband, upstream, calls_over_cap_after_outage="hangup"
        ) as calls:
            await sideband.until(lambda: upstream.routes["hangup"].call_count >= 3, timeout=30)
            hung_up = [call.request.url.path for call in upstream.routes["hangup"].calls]
            assert sorted(hung_up) == [
                f"/v1/realtime/calls/{call_id}/hangup" for call_id in OPEN_CALLS[2:]
            ]

            async def two_left() -> bool:
                response = await calls.client.get("/v1/usage")
                return bool(response.json()["usage"]["live_calls"] == 2)

            await until(two_left)


class TestReusedIdDuringAnOutage:
    """RATE_LIMIT_ON_STORE_ERROR=open, Redis down: a reused id is refused by the worker itself."""

    async def test_second_creation_with_a_watched_id_is_refused(
        self, make_settings: MakeSettings, sideband: ScriptedSideband, upstream: respx.MockRouter
    ) -> None:
        """With no record to find, the worker's own calls say the id is taken: 502, one task."""
        alice, alice_entry = new_api_key("alice")
        bob, bob_entry = new_api_key("bob")
        with redis_server() as redis:
            settings = make_settings(
                auth_mode="api_key",
                auth_api_keys=f"{alice_entry},{bob_entry}",
                redis_url=redis.url,
                redis_timeout_seconds=2.0,
                rate_limit_on_store_error="open",
            )
            app = create_app(settings, httpx.MockTransport(upstream.async_handler), sideband)
            async with serving(app) as client:
                redis.stop()
                for key, status in ((alice, 201), (bob, 502)):
                    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/sdp"}
                    created = await client.post(REALTIME_CALLS, content=SDP_OFFER, headers=headers)
                    assert created.status_code == status, created.text
                assert created.json()["error"]["code"] == "upstream_call_id_reused"
                assert (await client.get("/readyz")).json()["calls"] == {"supervised": 1}


class TestMeteringDuringAnOutage:
    """A usage write that fails keeps what it held for the next pass (real Redis, stopped)."""

    async def test_a_failed_write_is_kept_and_written_once(
        self, make_settings: MakeSettings
    ) -> None:
        """The write fails: tokens and seconds stay on the call; the next write counts them once."""
        clock = FakeClock()
        with redis_server() as redis:
            store = RedisStore(redis.url, 2.0)
            keeper = Keeper(make_settings(), store, store, store, CallRecords(store), "w", clock)
            record = CallRecord(
                kind="live",
                call_id=LIVE_ID,
                owner="owner",
                caller="caller",
                started_ms=clock(),
                deadline_ms=clock() + 1_800_000,
            )
            call = Watched(record, clock(), unmetered_ms=5_000, unwritten_tokens=100)
            redis.stop()
            with pytest.raises(StoreUnavailable):
                await keeper.meter([call])
            assert (call.unmetered_ms, call.unwritten_tokens) == (5_000, 100)
            redis.start()
            assert (await keeper.meter([call])).over_quota == []
            keys = UsageKeys("owner", day_of(clock()))
            assert await store.counts([keys.tokens, keys.seconds]) == [100, 5]
            assert (call.unmetered_ms, call.unwritten_tokens) == (0, 0)
            await store.aclose()
