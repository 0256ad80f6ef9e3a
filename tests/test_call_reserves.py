"""Admission reserves (#20): calls admitted at once cannot all pass on one total.

Each admitted call holds an amount of every daily budget it is checked
against (`service.calls.reserves`); admission checks spent plus held in one
atomic step, the hold shrinks as the call spends and the rest is released at
its end. Real Redis, as in production; the sideband is scripted.
Prices are the shipped table's: gpt-realtime-2's highest token price is $64
(audio out) per 1M tokens, so its default dollar reserve is 4096 of them:
$0.262144.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from service.api import create_app
from service.calls.admission import Admission
from service.calls.keeper import Keeper
from service.calls.records import CallRecord, CallRecords, owner_of
from service.calls.reserves import unheld_key
from service.calls.spend import Spend
from service.calls.usage import UsageKeys
from service.calls.watched import Watched
from service.config import Settings
from service.core.clock import DAY_MS, day_of
from service.core.errors import RateLimited
from service.store import MemoryStore, StoreUnavailable, held_key
from tests.clocks import FakeClock
from tests.conftest import MakeSettings, serving
from tests.servers import FaultyLink, redis_server
from tests.sidebands import ScriptedSideband
from tests.suite_logs import captured_logs
from tests.test_call_spend import ALICE, bearer, create, distinct_ids, done, keyed
from tests.test_call_supervision import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]
IDS = [f"rtc_reserve_{i:010d}" for i in range(60)]
FIRST, *OTHERS = IDS
UNPRICED = {"total_tokens": 1500}
"""A response's 1,500 tokens without their kinds: costs nothing, so this file leaves the
process's `rtp_cost_usd_total` as it found it (tests/test_call_spend.py reads it)."""


async def usage(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/v1/usage", headers=bearer(ALICE))).json()
    return body


async def create_many(clients: list[httpx.AsyncClient], count: int) -> list[httpx.Response]:
    """`count` creations at once, alternating between `clients`."""
    return list(
        await asyncio.gather(*(create(clients[i % len(clients)], ALICE) for i in range(count)))
    )


def codes(responses: list[httpx.Response]) -> dict[str, int]:
    """How many creations got each answer: `created` or the error's code."""
    found: dict[str, int] = {}
    for response in responses:
        code = "created" if response.status_code == 201 else response.json()["error"]["code"]
        found[code] = found.get(code, 0) + 1
    return found


@asynccontextmanager
async def apps(
    settings: Settings, upstream: respx.MockRouter, sideband: ScriptedSideband, count: int = 1
) -> AsyncIterator[list[httpx.AsyncClient]]:
    transport = httpx.MockTransport(upstream.async_handler)
    async with serving(create_app(settings, transport, sideband)) as first:
        if count == 1:
            yield [first]
            return
        async with serving(create_app(settings, transport, sideband)) as second:
            yield [first, second]


async def spend_tokens(
    client: httpx.AsyncClient, sideband: ScriptedSideband, call_id: str, tokens: int
) -> None:
    """One call that spends `tokens` and ends; wait until its hold is released."""
    assert (await create(client, ALICE)).status_code == 201
    await sideband.attached(call_id)
    sideband.emit(call_id, done({"total_tokens": tokens}))
    sideband.close(call_id, "ended")

    async def settled() -> bool:
        body = await usage(client)
        return bool(body["usage"]["tokens"] == tokens and body["held"]["tokens"] == 0)

    await eventually(settled)


class TestTokenReserves:
    """QUOTA_TOKENS_PER_DAY under concurrent admission."""

    async def test_fifty_creations_at_990_of_1000_tokens_admit_exactly_one(
        self, make_settings: MakeSettings, sideband: ScriptedSideband, upstream: respx.MockRouter
    ) -> None:
        """At 990 of 1,000 tokens, 50 simultaneous creations: one is admitted, 49 get 429."""
        upstream.routes["call"].side_effect = distinct_ids(*IDS)
        with redis_server() as redis:
            settings = keyed(make_settings, redis_url=redis.url, quota_tokens_per_day=1000)
            async with apps(settings, upstream, sideband) as clients:
                await spend_tokens(clients[0], sideband, FIRST, 990)
                answers = await create_many(clients, 50)
                assert codes(answers) == {"created": 1, "quota_exceeded": 49}
                assert (await usage(clients[0]))["held"]["tokens"] == 1000
                assert upstream.routes["call"].call_count == 2

    async def test_without_a_reserve_all_fifty_are_admitted(
        self, make_settings: MakeSettings, sideband: ScriptedSideband, upstream: respx.MockRouter
    ) -> None:
        """CALLS_RESERVE_TOKENS=0 is admission by reading the counter: all 50 pass on 990."""
        upstream.routes["call"].side_effect = distinct_ids(*IDS)
        with redis_server() as redis:
            settings = keyed(
                make_settings,
                redis_url=redis.url,
                quota_tokens_per_day=1000,
                calls_reserve_tokens=0,
            )
            async with apps(settings, upstream, sideband) as clients:
                await spend_tokens(clients[0], sideband, FIRST, 990)
                assert codes(await create_many(clients, 50)) == {"created": 50}

    async def test_a_hold_released_at_the_call_s_end_admits_the_next_call(
        self, make_settings: MakeSettings, sideband: ScriptedSideband, upstream: respx.MockRouter
    ) -> None:
        """The admitted call ends having spent nothing: its hold is given back, and the next
        creation is admitted again."""
        upstream.routes["call"].side_effect = distinct_ids(*IDS)
        with redis_server() as redis:
            settings = keyed(make_settings, redis_url=redis.url, quota_tokens_per_day=1000)
            async with apps(settings, upstream, sideband) as clients:
                client = clients[0]
                await spend_tokens(client, sideband, FIRST, 990)
                assert (await create(client, ALICE)).status_code == 201
                assert (await create(client, ALICE)).status_code == 429
                await sideband.attached(OTHERS[0])
                sideband.close(OTHERS[0], "ended")

                async def released() -> bool:
                    return bool((await usage(client))["held"]["tokens"] == 0)

                await eventually(released)
                assert (await create(client, ALICE)).status_code == 201

    async def test_a_call_s_spend_shrinks_its_hold(
        self, make_settings: MakeSettings, sideband: ScriptedSideband, upstream: respx.MockRouter
    ) -> None:
        """A response of 1,500 tokens on a 4,096-token hold leaves 2,596 held: spent plus held
        counts the call once."""
        upstream.routes["call"].side_effect = distinct_ids(*IDS)
        with redis_server() as redis:
            settings = keyed(make_settings, redis_url=redis.url, quota_tokens_per_day=100_000)
            async with apps(settings, upstream, sideband) as clients:
                client = clients[0]
                assert (await create(client, ALICE)).status_code == 201
                await sideband.attached(FIRST)
                sideband.emit(FIRST, done(UNPRICED))

                async def spent() -> bool:
                    return bool((await usage(client))["usage"]["tokens"] == 1500)

                await eventually(spent)
                assert (await usage(client))["held"]["tokens"] == 4096 - 1500


class TestDollarReserves:
    """QUOTA_USD_PER_DAY and the deployment's ceiling under concurrent admission."""

    async def test_fifty_creations_under_a_caller_s_dollars_admit_exactly_one(
        self, make_settings: MakeSettings, sideband: ScriptedSideband, upstream: respx.MockRouter
    ) -> None:
        """$0.05 a day: the first call holds all of it (its $0.262144 reserve, at most the
        budget), so of 50 simultaneous creations one is admitted."""
        upstream.routes["call"].side_effect = distinct_ids(*IDS)
        with redis_server() as redis:
            settings = keyed(make_settings, redis_url=redis.url, quota_usd_per_day="0.05")
            async with apps(settings, upstream, sideband) as clients:
                answers = await create_many(clients, 50)
                assert codes(answers) == {"created": 1, "quota_exceeded": 49}
                assert (await usage(clients[0]))["held"]["usd"] == "0.050000"

    async def test_the_deployment_ceiling_across_two_apps_admits_what_its_reserves_fit(
        self, make_settings: MakeSettings, sideband: ScriptedSideband, upstream: respx.MockRouter
    ) -> None:
        """$1 for the deployment, two apps on one Redis, 50 creations at once: four calls
        hold $0.262144 each (the fourth admitted at $0.786432 held), the rest are refused."""
        upstream.routes["call"].side_effect = distinct_ids(*IDS)
        with redis_server() as redis:
            settings = keyed(make_settings, redis_url=redis.url, quota_usd_per_day_total="1")
            async with apps(settings, upstream, sideband, count=2) as clients:
                answers = await create_many(clients, 50)
                assert codes(answers) == {"created": 4, "quota_exceeded": 46}


class TestTakeover:
    """A hold survives a hand-over and is released once."""

    async def test_the_adopting_worker_releases_what_is_still_held_once(
        self, make_settings: MakeSettings, sideband: ScriptedSideband, upstream: respx.MockRouter
    ) -> None:
        """4,096 tokens held, 1,500 spent on the first app, handed over; 1,500 more on the
        second: 1,096 held; the call ends: 3,000 spent, and the next call holds 4,096."""
        upstream.routes["call"].side_effect = distinct_ids(*IDS)
        with redis_server() as redis:

            def settings(lease_seconds: float) -> Settings:
                return keyed(
                    make_settings,
                    redis_url=redis.url,
                    redis_timeout_seconds=2.0,
                    calls_lease_seconds=lease_seconds,
                    quota_tokens_per_day=100_000,
                )

            transport = httpx.MockTransport(upstream.async_handler)
            async with serving(create_app(settings(1), transport, sideband)) as second:
                async with serving(create_app(settings(300), transport, sideband)) as first:
                    assert (await create(first, ALICE)).status_code == 201
                    await sideband.attached(FIRST)
                    sideband.emit(FIRST, done(UNPRICED))

                    async def first_counted() -> bool:
                        return bool((await usage(first))["held"]["tokens"] == 2596)

                    await eventually(first_counted)
                await sideband.attached(FIRST, count=2)
                sideband.emit(FIRST, done(UNPRICED))

                async def second_counted() -> bool:
                    return bool((await usage(second))["held"]["tokens"] == 1096)

                await eventually(second_counted)
                sideband.close(FIRST, "ended")

                async def released() -> bool:
                    return bool((await usage(second))["held"]["tokens"] == 0)

                await eventually(released)
                assert (await usage(second))["usage"]["tokens"] == 3000
                # Released once: a second release would leave -1,096 under the next hold.
                assert (await create(second, ALICE)).status_code == 201
                assert (await usage(second))["held"]["tokens"] == 4096


class TestReserveSettings:
    """CALLS_RESERVE_*: a reserve ops set must fit its budget."""

    @pytest.mark.parametrize(
        ("reserve", "quota"),
        [
            ({"calls_reserve_tokens": 2000}, {"quota_tokens_per_day": 1000}),
            ({"calls_reserve_seconds": 120}, {"quota_call_seconds_per_day": 60}),
            ({"calls_reserve_usd": "2"}, {"quota_usd_per_day": "1"}),
            ({"calls_reserve_usd": "2"}, {"quota_usd_per_day_total": "1"}),
        ],
    )
    def test_a_reserve_set_above_its_budget_is_refused_naming_both(
        self, make_settings: MakeSettings, reserve: dict[str, Any], quota: dict[str, Any]
    ) -> None:
        """A reserve larger than its budget refuses start-up, naming both variables."""
        with pytest.raises(ValueError, match="exceeds") as refused:
            make_settings(**reserve, **quota)
        for name in (*reserve, *quota):
            assert name.upper() in str(refused.value)

    def test_a_reserve_above_a_profile_s_budget_is_refused_naming_it(
        self, make_settings: MakeSettings, tmp_path: Path
    ) -> None:
        """CALLS_RESERVE_USD above a profile's quota_usd_per_day refuses start-up, naming
        the variable and the profile."""
        profiles = tmp_path / "profiles.toml"
        profiles.write_text(
            '[callers]\nbob = "free"\n[profiles.free.budget]\nquota_usd_per_day = 0.05\n'
        )
        with pytest.raises(ValueError, match=r"CALLS_RESERVE_USD=0\.1 exceeds") as refused:
            make_settings(calls_reserve_usd="0.1", policy_profiles_file=profiles)
        assert "free" in str(refused.value)

    def test_the_default_reserve_is_allowed_above_a_small_quota(
        self, make_settings: MakeSettings
    ) -> None:
        """Unset, CALLS_RESERVE_TOKENS (4096) starts under a 1,000-token quota: admission
        holds at most the quota."""
        assert make_settings(quota_tokens_per_day=1000).calls_reserve_tokens == 4096


class TestHoldDays:
    """A hold is given back against the day it was taken."""

    async def test_a_hold_taken_yesterday_is_released_against_yesterday(
        self, make_settings: MakeSettings
    ) -> None:
        """Admitted at 23:59:50 UTC, ended the next day: yesterday's hold goes to 0, today's
        is untouched."""
        day_start = 1_800_000_000_000 - 1_800_000_000_000 % DAY_MS
        clock = FakeClock(day_start + DAY_MS - 10_000)
        store = MemoryStore(clock)
        settings = make_settings(quota_tokens_per_day=10_000)
        owner = owner_of("alice")
        yesterday = UsageKeys(owner, day_of(clock())).tokens
        admitted = await Admission(settings, store, store, clock).admit(owner, "realtime")
        assert dict(admitted.held) == {held_key(yesterday): 4096}
        call = Watched(
            CallRecord("realtime", "rtc_1", owner, "alice", 0, 10**15, held=dict(admitted.held)),
            clock(),
            held={"tokens": 4096},
        )
        clock.advance(20_000)
        today = UsageKeys(owner, day_of(clock())).tokens
        keeper = Keeper(settings, store, store, store, CallRecords(store), "worker-a", clock)
        await keeper.release_holds(call)
        assert await store.counts([held_key(yesterday), held_key(today)]) == [0, 0]
        assert await store.counts([unheld_key(call.record.member, "tokens")]) == [4096]

    async def test_a_refused_slot_gives_its_hold_back(self, make_settings: MakeSettings) -> None:
        """At CALLS_MAX_CONCURRENT_PER_IDENTITY the refused creation holds nothing."""
        clock = FakeClock(1_800_000_000_000)
        store = MemoryStore(clock)
        settings = make_settings(quota_tokens_per_day=10_000, calls_max_concurrent_per_identity=1)
        admission = Admission(settings, store, store, clock)
        owner = owner_of("alice")
        await admission.admit(owner, "realtime")
        with pytest.raises(RateLimited):
            await admission.admit(owner, "realtime")
        held = held_key(UsageKeys(owner, day_of(clock())).tokens)
        assert await store.counts([held]) == [4096]


class TestEndDuringAnOutage:
    """A call that ends while the store fails its writes gives its hold back afterwards."""

    async def test_the_hold_is_released_once_the_store_answers(
        self, make_settings: MakeSettings, sideband: ScriptedSideband, upstream: respx.MockRouter
    ) -> None:
        """The end's writes fail (every script cut): the lease is left to expire, the call is
        adopted, found ended, and its 4,096 tokens released from the store's figures."""
        upstream.routes["call"].side_effect = distinct_ids(*IDS)
        with redis_server() as redis, captured_logs() as logs:
            link = FaultyLink(redis.port)
            settings = keyed(
                make_settings,
                redis_url=f"redis://127.0.0.1:{link.port}/0",
                redis_timeout_seconds=2.0,
                calls_lease_seconds=1,
                quota_tokens_per_day=100_000,
            )
            try:
                async with apps(settings, upstream, sideband) as clients:
                    client = clients[0]
                    assert (await create(client, ALICE)).status_code == 201
                    await sideband.attached(FIRST)
                    assert (await usage(client))["held"]["tokens"] == 4096
                    link.mode = "cut"
                    sideband.close(FIRST, "ended")

                    async def unrecorded() -> bool:
                        return any(line["event"] == "call_end_unrecorded" for line in logs)

                    await eventually(unrecorded)
                    link.mode = "pass"

                    async def released() -> bool:
                        body = await usage(client)
                        return bool(body.get("held", {}).get("tokens") == 0)

                    await eventually(released, timeout=15)
                    assert (await create(client, ALICE)).status_code == 201
                    assert (await usage(client))["held"]["tokens"] == 4096
            finally:
                link.close()


class TestReserveAmounts:
    """CALLS_RESERVE_USD unset: one response's worth at the call's model's price."""

    @pytest.mark.parametrize(
        ("kind", "model", "micro"),
        [
            ("realtime", "gpt-realtime-2", 262_144),  # 4096 audio-out tokens at $64 per 1M
            ("live", "gpt-live-1", 50_000),  # 60 seconds at $0.05 a minute
            ("realtime", "no-such-model", 0),
        ],
    )
    def test_the_default_is_one_response_at_the_model_s_price(
        self, make_settings: MakeSettings, kind: str, model: str, micro: int
    ) -> None:
        """4096 tokens at the highest token price, or 60 seconds at GPT-Live's active price."""
        spend = Spend(make_settings())
        assert spend.reserve_micro("live" if kind == "live" else "realtime", model) == micro

    def test_a_set_reserve_is_held_exactly(self, make_settings: MakeSettings) -> None:
        """CALLS_RESERVE_USD=0.123456 reserves 123,456 micro-dollars whatever the model."""
        spend = Spend(make_settings(calls_reserve_usd="0.123456"))
        assert spend.reserve_micro("realtime", "gpt-realtime-2") == 123_456


class TestSecondsHold:
    """Call seconds shrink a call's seconds hold as the keeper meters them."""

    async def test_metered_seconds_give_back_their_part_of_the_hold(
        self, make_settings: MakeSettings
    ) -> None:
        """A Realtime call holding 60 seconds, metered after 5: 55 held, 5 given back."""
        clock = FakeClock(1_800_000_000_000)
        store = MemoryStore(clock)
        settings = make_settings(quota_call_seconds_per_day=3600)
        owner = owner_of("alice")
        admitted = await Admission(settings, store, store, clock).admit(owner, "realtime")
        held = held_key(UsageKeys(owner, day_of(clock())).seconds)
        assert dict(admitted.held) == {held: 60}
        call = Watched(
            CallRecord("realtime", "rtc_1", owner, "alice", 0, 10**15, held=dict(admitted.held)),
            clock(),
            held={"seconds": 60},
        )
        clock.advance(5_000)
        keeper = Keeper(settings, store, store, store, CallRecords(store), "worker-a", clock)
        await keeper.meter([call])
        assert await store.counts([held, unheld_key(call.record.member, "seconds")]) == [55, 5]
        assert call.held == {"seconds": 55}


class TestSlotStoreDown:
    """The store fails between the hold and the live-call slot."""

    async def test_closed_gives_the_hold_back(self, make_settings: MakeSettings) -> None:
        """RATE_LIMIT_ON_STORE_ERROR=closed: the 503's call holds nothing."""
        clock = FakeClock(1_800_000_000_000)
        store = SlotsDown(clock)
        settings = make_settings(quota_tokens_per_day=10_000, calls_max_concurrent_per_identity=1)
        owner = owner_of("alice")
        with pytest.raises(StoreUnavailable):
            await Admission(settings, store, store, clock).admit(owner, "realtime")
        held = held_key(UsageKeys(owner, day_of(clock())).tokens)
        assert await store.counts([held]) == [0]

    async def test_open_keeps_the_hold_on_the_call(self, make_settings: MakeSettings) -> None:
        """RATE_LIMIT_ON_STORE_ERROR=open: the admitted call keeps what it held, to release at
        its end."""
        clock = FakeClock(1_800_000_000_000)
        store = SlotsDown(clock)
        settings = make_settings(
            quota_tokens_per_day=10_000,
            calls_max_concurrent_per_identity=1,
            rate_limit_on_store_error="open",
        )
        owner = owner_of("alice")
        admitted = await Admission(settings, store, store, clock).admit(owner, "realtime")
        held = held_key(UsageKeys(owner, day_of(clock())).tokens)
        assert dict(admitted.held) == {held: 4096}
        assert await store.counts([held]) == [4096]


class SlotsDown(MemoryStore):
    """A store whose live-call slots fail (after admission's hold succeeded)."""

    async def reserve(self, key: str, member: str, limit: int, ttl_ms: int) -> bool:
        raise StoreUnavailable("TimeoutError")
