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
from tests.conftest import CALL_ID, SDP_OFFER, MakeSettings, serving
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
