"""Dollars: what supervised calls cost, counted per call, caller, profile and deployment, and the
budgets that stop them (CALLS_MAX_USD, QUOTA_USD_PER_DAY, QUOTA_USD_PER_DAY_TOTAL).

The sideband is scripted (tests/sidebands.py): the test sends OpenAI's usage events.
Prices are the shipped table's: gpt-realtime-2 at $4 (text in), $0.40 (cached
text in), $32 (audio in), $24 (text out) and $64 (audio out) per 1M tokens;
gpt-4o-transcribe at $2.50 in and $10 out; gpt-live-1 at $0.05 a minute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from service.api import create_app
from service.auth import new_api_key
from service.config import Settings
from tests.conftest import CALL_ID, LIVE_ID, SDP_OFFER, ClientFor, MakeSettings, serving
from tests.paths import LIVE_SESSIONS, REALTIME_CALLS
from tests.servers import redis_server
from tests.sidebands import ScriptedSideband
from tests.suite_logs import captured_logs
from tests.test_call_supervision import attached, eventually, metric, session_updated
from tests.test_realtime_calls_endpoint import multipart

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]
MINT = "/v1/realtime/client_secrets"
ALICE, ALICE_ENTRY = new_api_key("alice")
BOB, BOB_ENTRY = new_api_key("bob")
USAGE = {
    "total_tokens": 1500,
    "input_tokens": 1000,
    "output_tokens": 500,
    "input_token_details": {
        "text_tokens": 200,
        "audio_tokens": 800,
        "image_tokens": 0,
        "cached_tokens": 100,
        "cached_tokens_details": {"text_tokens": 100, "audio_tokens": 0, "image_tokens": 0},
    },
    "output_token_details": {"text_tokens": 100, "audio_tokens": 400},
}
"""One response on gpt-realtime-2: 100 text in ($0.0004), 100 cached text in ($0.00004),
800 audio in ($0.0256), 100 text out ($0.0024), 400 audio out ($0.0256): $0.05404."""
RESPONSE_USD = "0.054040"
COST_METRIC = 'rtp_cost_usd_total{kind="realtime",model="gpt-realtime-2"}'
ALICE_CALL, BOB_CALL = "rtc_alice_0123456789a", "rtc_bob_0123456789abc"


def distinct_ids(*ids: str) -> Any:
    """OpenAI's answer to call creations, one id each (the fixture's answers reuse one)."""
    left = iter(ids)

    def answer(request: httpx.Request) -> httpx.Response:
        location = f"/v1/realtime/calls/{next(left)}"
        return httpx.Response(201, content=b"v=0\r\n", headers={"Location": location})

    return answer


TRANSCRIPTION_USAGE = {
    "type": "tokens",
    "total_tokens": 300,
    "input_tokens": 200,
    "input_token_details": {"audio_tokens": 200, "text_tokens": 0},
    "output_tokens": 100,
}


def transcribed(usage: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's event for a completed input transcription, with its usage."""
    return {
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": "item_1",
        "content_index": 0,
        "transcript": "hello",
        "usage": usage,
    }


def done(usage: dict[str, Any] = USAGE) -> dict[str, Any]:
    return {"type": "response.done", "response": {"id": "resp_1", "usage": usage}}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def keyed(make_settings: MakeSettings, **overrides: Any) -> Settings:
    return make_settings(
        auth_mode="api_key", auth_api_keys=f"{ALICE_ENTRY},{BOB_ENTRY}", **overrides
    )


async def create(client: httpx.AsyncClient, key: str) -> httpx.Response:
    headers = {"Content-Type": "application/sdp", **bearer(key)}
    return await client.post(REALTIME_CALLS, content=SDP_OFFER, headers=headers)


async def usd_of(client: httpx.AsyncClient, key: str, call_id: str = CALL_ID) -> str:
    state = await client.get(f"{REALTIME_CALLS}/{call_id}", headers=bearer(key))
    return str(state.json()["usage"]["usd"])


async def day_usd(client: httpx.AsyncClient, key: str) -> str:
    return str((await client.get("/v1/usage", headers=bearer(key))).json()["usage"]["usd"])


class TestCost:
    """Each usage report is priced at the call's model and summed exactly."""

    async def test_a_response_costs_what_its_token_kinds_cost(
        self, client_for: ClientFor, make_settings: MakeSettings, sideband: ScriptedSideband
    ) -> None:
        """One response.done: the call, the caller's day and the metric show $0.05404."""
        client = await client_for(keyed(make_settings, calls_lease_seconds=1))
        before = await metric(client, COST_METRIC)  # the registry is the process's
        assert (await create(client, ALICE)).status_code == 201
        await attached(sideband, CALL_ID)
        sideband.emit(CALL_ID, done())

        async def counted() -> bool:
            return await day_usd(client, ALICE) == RESPONSE_USD

        await eventually(counted)

        async def shown() -> bool:  # the record, written at the keeper's next pass
            return await usd_of(client, ALICE) == RESPONSE_USD

        await eventually(shown)
        assert await day_usd(client, BOB) == "0.000000"
        assert await metric(client, COST_METRIC) - before == pytest.approx(0.05404)

    async def test_responses_add_up_exactly(
        self, client_for: ClientFor, make_settings: MakeSettings, sideband: ScriptedSideband
    ) -> None:
        """Three responses of 1 text token in each ($0.000004 apiece) are $0.000012, not 0."""
        client = await client_for(keyed(make_settings))
        await create(client, ALICE)
        await attached(sideband, CALL_ID)
        tiny = {"total_tokens": 1, "input_tokens": 1, "input_token_details": {"text_tokens": 1}}
        for _ in range(3):
            sideband.emit(CALL_ID, done(tiny))

        async def counted() -> bool:
            return await day_usd(client, ALICE) == "0.000012"

        await eventually(counted)

    async def test_an_input_transcription_costs_at_its_model(
        self, client_for: ClientFor, make_settings: MakeSettings, sideband: ScriptedSideband
    ) -> None:
        """A transcription's tokens are priced at the session's transcription model."""
        client = await client_for(keyed(make_settings))
        await create(client, ALICE)
        await attached(sideband, CALL_ID)
        transcription = {"model": "gpt-4o-transcribe"}
        sideband.emit(CALL_ID, session_updated(audio={"input": {"transcription": transcription}}))
        # 200 audio in at $2.50/M ($0.0005) and 100 out at $10/M ($0.001).
        sideband.emit(CALL_ID, transcribed(TRANSCRIPTION_USAGE))

        async def counted() -> bool:
            return await day_usd(client, ALICE) == "0.001500"

        await eventually(counted)

    async def test_the_transcription_model_the_call_was_created_with_prices_it(
        self, client_for: ClientFor, make_settings: MakeSettings, sideband: ScriptedSideband
    ) -> None:
        """Before any `session.updated`, a transcription is priced at the model the call was
        created with (gpt-transcribe, by duration: 20 s at $0.0045 a minute)."""
        client = await client_for(keyed(make_settings))
        session = {
            "type": "realtime",
            "audio": {"input": {"transcription": {"model": "gpt-transcribe"}}},
        }
        created = await client.post(REALTIME_CALLS, files=multipart(session), headers=bearer(ALICE))
        assert created.status_code == 201
        await attached(sideband, CALL_ID)
        sideband.emit(CALL_ID, transcribed({"type": "duration", "seconds": 20}))

        async def counted() -> bool:
            return await day_usd(client, ALICE) == "0.001500"

        await eventually(counted)

    async def test_a_live_session_is_charged_its_start_at_once(
        self, client_for: ClientFor, make_settings: MakeSettings, sideband: ScriptedSideband
    ) -> None:
        """A GPT-Live WebRTC session costs 15 s ($0.0125) before any usage is reported, and
        its cumulative usage is counted once: 45 s then 60 s are $0.0375 then $0.05."""
        client = await client_for(keyed(make_settings, calls_lease_seconds=1))
        created = await client.post(
            LIVE_SESSIONS,
            json={"session": {}, "transport": {"type": "webrtc", "sdp": SDP_OFFER}},
            headers=bearer(ALICE),
        )
        assert created.status_code == 200
        await attached(sideband, LIVE_ID)

        async def costs(amount: str) -> bool:
            return await day_usd(client, ALICE) == amount

        await eventually(lambda: costs("0.012500"), timeout=15)
        for seconds, amount in ((45, "0.037500"), (60, "0.050000")):
            usage = {"seconds": seconds, "active_seconds": seconds, "paused_seconds": 0}
            sideband.emit(LIVE_ID, {"type": "session.usage.updated", "usage": usage})
            await eventually(lambda amount=amount: costs(amount))  # type: ignore[misc]


class TestBudgets:
    """A call, a caller and the deployment each stop at their dollar line."""

    async def test_a_call_crossing_calls_max_usd_is_hung_up_at_that_event(
        self,
        client_for: ClientFor,
        make_settings: MakeSettings,
        sideband: ScriptedSideband,
        upstream: respx.MockRouter,
    ) -> None:
        """At $0.10 a call: the first response ($0.054) goes on, the second crosses and ends it."""
        client = await client_for(keyed(make_settings, calls_max_usd="0.10"))
        await create(client, ALICE)
        await attached(sideband, CALL_ID)
        with captured_logs() as logs:
            sideband.emit(CALL_ID, done())

            async def first_counted() -> bool:
                return await usd_of(client, ALICE) == RESPONSE_USD

            await eventually(first_counted)
            assert not upstream.routes["hangup"].called
            sideband.emit(CALL_ID, done())
            await sideband.until(lambda: upstream.routes["hangup"].called)
        (audit,) = [line for line in logs if line["event"] == "call_budget_exceeded"]
        assert (audit["identity"], audit["cost_usd"], audit["limit_usd"]) == (
            "alice",
            "0.108080",
            "0.100000",
        )

        async def ended() -> bool:
            return await metric(client, 'rtp_calls_ended_total{how="budget"}') == 1

        await eventually(ended)

    async def test_a_caller_crossing_quota_usd_per_day_is_hung_up_then_refused(
        self,
        client_for: ClientFor,
        make_settings: MakeSettings,
        sideband: ScriptedSideband,
        upstream: respx.MockRouter,
    ) -> None:
        """At $0.05 a day: Alice's call is hung up at her first response; her next call is 429
        quota_exceeded until midnight; Bob calls."""
        client = await client_for(keyed(make_settings, quota_usd_per_day="0.05"))
        await create(client, ALICE)
        await attached(sideband, CALL_ID)
        sideband.emit(CALL_ID, done())
        await sideband.until(lambda: upstream.routes["hangup"].called)
        refused = await create(client, ALICE)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "quota_exceeded"
        assert int(refused.headers["retry-after"]) > 0
        assert (await create(client, BOB)).status_code == 201

    async def test_a_profiles_budget_applies_to_its_callers(
        self,
        client_for: ClientFor,
        make_settings: MakeSettings,
        sideband: ScriptedSideband,
        upstream: respx.MockRouter,
        tmp_path: Path,
    ) -> None:
        """Bob's profile spends $0.05 a day and his call is hung up at his first response;
        Alice, on the env's $10, spends on."""
        upstream.routes["call"].side_effect = distinct_ids(ALICE_CALL, BOB_CALL)
        profiles = tmp_path / "profiles.toml"
        profiles.write_text(
            '[callers]\nbob = "free"\n[profiles.free.budget]\nquota_usd_per_day = 0.05\n'
        )
        client = await client_for(
            keyed(make_settings, quota_usd_per_day="10", policy_profiles_file=profiles)
        )
        await create(client, ALICE)
        await create(client, BOB)
        for call_id in (ALICE_CALL, BOB_CALL):
            await attached(sideband, call_id)
            sideband.emit(call_id, done())
        await sideband.until(lambda: upstream.routes["hangup"].called)

        async def counted() -> bool:
            return await day_usd(client, ALICE) == RESPONSE_USD

        await eventually(counted)
        assert [call.request.url.path for call in upstream.routes["hangup"].calls] == [
            f"/v1/realtime/calls/{BOB_CALL}/hangup"
        ]

    async def test_the_deployment_ceiling_ends_every_call_and_refuses_everyone(
        self,
        make_settings: MakeSettings,
        sideband: ScriptedSideband,
        upstream: respx.MockRouter,
    ) -> None:
        """Two apps on one Redis, $0.05 for the deployment (each call reserving $0.02, so two
        are admitted): Alice's response crosses it on the first app; Bob's call on the
        second is hung up within its next pass; every new call and mint is refused; one log
        line per worker says so."""
        upstream.routes["call"].side_effect = distinct_ids(ALICE_CALL, BOB_CALL)
        with redis_server() as redis:
            settings = keyed(
                make_settings,
                redis_url=redis.url,
                redis_timeout_seconds=2.0,
                calls_lease_seconds=1,
                quota_usd_per_day_total="0.05",
                calls_reserve_usd="0.02",
            )
            transport = httpx.MockTransport(upstream.async_handler)
            with captured_logs() as logs:
                async with (
                    serving(create_app(settings, transport, sideband)) as first,
                    serving(create_app(settings, transport, sideband)) as second,
                ):
                    assert (await create(first, ALICE)).status_code == 201
                    assert (await create(second, BOB)).status_code == 201
                    await attached(sideband, ALICE_CALL)
                    await attached(sideband, BOB_CALL)
                    sideband.emit(ALICE_CALL, done())

                    def both_hung_up() -> bool:
                        return len(upstream.routes["hangup"].calls) == 2

                    await sideband.until(both_hung_up, timeout=15)
                    for client in (first, second):
                        refused = await create(client, BOB)
                        assert refused.status_code == 429
                        assert refused.json()["error"]["code"] == "quota_exceeded"
                        minted = await client.post(
                            MINT, json={"session": {"type": "realtime"}}, headers=bearer(BOB)
                        )
                        assert minted.status_code == 429
        lines = [line for line in logs if line["event"] == "deployment_budget_exceeded"]
        assert 1 <= len(lines) <= 2
        assert {line["limit_usd"] for line in lines} == {"0.050000"}


class TestTakeover:
    """A call adopted by another worker is neither counted twice nor loses its count."""

    async def test_the_adopting_worker_counts_on_from_the_store(
        self,
        make_settings: MakeSettings,
        sideband: ScriptedSideband,
        upstream: respx.MockRouter,
    ) -> None:
        """After a hand-over the call's cost goes on from $0.05404 to $0.10808, and a
        CALLS_MAX_USD of $0.15 still counts both responses."""
        with redis_server() as redis:

            def settings(lease_seconds: float) -> Settings:
                return keyed(
                    make_settings,
                    redis_url=redis.url,
                    redis_timeout_seconds=2.0,
                    calls_lease_seconds=lease_seconds,
                    calls_max_usd="0.15",
                )

            transport = httpx.MockTransport(upstream.async_handler)
            async with serving(create_app(settings(1), transport, sideband)) as second:
                async with serving(create_app(settings(300), transport, sideband)) as first:
                    await create(first, ALICE)
                    await attached(sideband, CALL_ID)
                    sideband.emit(CALL_ID, done())

                    async def first_counted() -> bool:
                        return await day_usd(first, ALICE) == RESPONSE_USD

                    await eventually(first_counted)
                await attached(sideband, CALL_ID, count=2)
                sideband.emit(CALL_ID, done())

                async def both_counted() -> bool:
                    return await usd_of(second, ALICE) == "0.108080"

                await eventually(both_counted)
                assert await day_usd(second, ALICE) == "0.108080"
                assert not upstream.routes["hangup"].called
                sideband.emit(CALL_ID, done())
                await sideband.until(lambda: upstream.routes["hangup"].called)
