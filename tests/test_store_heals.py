"""A shared store that loses its data (FLUSHALL, a restart with no persistence) heals.

The worker that watches a call writes back whatever of the call the store
lost (its record, its live-call slot, its lease) within one keeper pass, so
the owner's hang-up works again, the per-caller cap counts the live call,
and another worker could adopt it. Real redis-server; the keeper runs every
third of a second (`CALLS_LEASE_SECONDS=1`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest
import respx

from service.api import create_app
from service.auth import new_api_key
from tests.conftest import CALL_ID, SDP_OFFER, MakeSettings, serving
from tests.paths import REALTIME_CALLS
from tests.servers import redis_server
from tests.sidebands import ScriptedSideband

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
