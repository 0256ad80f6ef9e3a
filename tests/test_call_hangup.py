"""`POST /v1/realtime/calls/{id}/hangup` and `POST /v1/live/sessions/{id}/hangup`.

Only the caller who created a call may end it; for anyone else, and for ids
the service never created, the answer is the same 404, so ids cannot be
probed. Ownership lives in the limits store: with Redis, any replica answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

from service.auth import new_api_key
from service.config import describe
from tests.conftest import CALL_ID, LIVE_ID, SDP_OFFER, ClientFor, MakeSettings
from tests.paths import LIVE_SESSIONS, REALTIME_CALLS
from tests.servers import RedisServer, redis_server
from tests.suite_logs import captured_logs

pytestmark = pytest.mark.anyio
REALTIME_HANGUP = f"{REALTIME_CALLS}/{CALL_ID}/hangup"
LIVE_HANGUP = f"{LIVE_SESSIONS}/{LIVE_ID}/hangup"
RECORD_KEY = f"rtp:call:realtime:{CALL_ID}"
"""Where the Redis store keeps the call's record (`service.calls.records`)."""


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def create_realtime(client: httpx.AsyncClient, key: str) -> None:
    response = await client.post(
        REALTIME_CALLS,
        content=SDP_OFFER,
        headers={**auth(key), "Content-Type": "application/sdp"},
    )
    assert response.status_code == 201, response.text


@pytest.fixture(name="keys")
def fixture_keys() -> dict[str, str]:
    """Two callers' keys (alice, bob); the `AUTH_API_KEYS` value is under `entries`."""
    alice, alice_entry = new_api_key("alice")
    bob, bob_entry = new_api_key("bob")
    return {"alice": alice, "bob": bob, "entries": f"{alice_entry},{bob_entry}"}


@pytest.fixture(name="callers")
async def fixture_callers(
    client_for: ClientFor, make_settings: MakeSettings, keys: dict[str, str]
) -> httpx.AsyncClient:
    return await client_for(make_settings(auth_mode="api_key", auth_api_keys=keys["entries"]))


class TestHangUp:
    """The creator ends the call through the service; OpenAI is asked with the server key."""

    async def test_creator_hangs_up_realtime_call(
        self, callers: httpx.AsyncClient, keys: dict[str, str], upstream: respx.MockRouter
    ) -> None:
        """200 `{}`, and OpenAI's hang-up for that call was called."""
        await create_realtime(callers, keys["alice"])
        response = await callers.post(REALTIME_HANGUP, headers=auth(keys["alice"]))
        assert (response.status_code, response.json()) == (200, {})
        hangup = upstream.routes["hangup"].calls.last.request
        assert hangup.url.path == f"/v1/realtime/calls/{CALL_ID}/hangup"

    async def test_creator_hangs_up_live_session(
        self, callers: httpx.AsyncClient, keys: dict[str, str], upstream: respx.MockRouter
    ) -> None:
        """The Live hang-up goes to OpenAI's Live hang-up for that session."""
        created = await callers.post(
            LIVE_SESSIONS,
            json={"session": {}, "transport": {"type": "webrtc", "sdp": SDP_OFFER}},
            headers=auth(keys["alice"]),
        )
        assert created.status_code == 200, created.text
        response = await callers.post(LIVE_HANGUP, headers=auth(keys["alice"]))
        assert response.status_code == 200, response.text
        hangup = upstream.routes["hangup"].calls.last.request
        assert hangup.url.path == f"/v1/live/sessions/{LIVE_ID}/hangup"

    async def test_a_hung_up_call_cannot_be_hung_up_again(
        self, callers: httpx.AsyncClient, keys: dict[str, str], upstream: respx.MockRouter
    ) -> None:
        """The record is forgotten at hang-up: the second one is a 404, not sent upstream."""
        await create_realtime(callers, keys["alice"])
        await callers.post(REALTIME_HANGUP, headers=auth(keys["alice"]))
        again = await callers.post(REALTIME_HANGUP, headers=auth(keys["alice"]))
        assert again.status_code == 404
        assert upstream.routes["hangup"].call_count == 1


class TestOwnership:
    """Anyone but the creator gets the 404 an unknown id gets; OpenAI is never asked."""

    async def test_another_caller_gets_404(
        self, callers: httpx.AsyncClient, keys: dict[str, str], upstream: respx.MockRouter
    ) -> None:
        """Bob cannot end Alice's call."""
        await create_realtime(callers, keys["alice"])
        response = await callers.post(REALTIME_HANGUP, headers=auth(keys["bob"]))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "call_not_found"
        assert not upstream.routes["hangup"].called

    async def test_wrong_kind_gets_404(
        self, callers: httpx.AsyncClient, keys: dict[str, str], upstream: respx.MockRouter
    ) -> None:
        """A Realtime call id on the Live hang-up path is unknown there."""
        await create_realtime(callers, keys["alice"])
        response = await callers.post(
            f"{LIVE_SESSIONS}/{CALL_ID}/hangup", headers=auth(keys["alice"])
        )
        assert response.status_code == 404
        assert not upstream.routes["hangup"].called

    @pytest.mark.parametrize("call_id", ["rtc_never_created", "a" * 200, "rtc%20x"])
    async def test_unknown_or_malformed_id_is_404(
        self,
        callers: httpx.AsyncClient,
        keys: dict[str, str],
        upstream: respx.MockRouter,
        call_id: str,
    ) -> None:
        """Ids the service never created, however they look: 404 in OpenAI's envelope."""
        response = await callers.post(
            f"{REALTIME_CALLS}/{call_id}/hangup", headers=auth(keys["alice"])
        )
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "invalid_request_error"
        assert not upstream.routes["hangup"].called

    async def test_unauthenticated_is_401(self, callers: httpx.AsyncClient) -> None:
        """A hang-up needs a caller like every endpoint."""
        response = await callers.post(REALTIME_HANGUP)
        assert response.status_code == 401


class TestUpstream:
    """What OpenAI says about the hang-up."""

    async def test_call_already_ended_upstream_is_404(
        self, callers: httpx.AsyncClient, keys: dict[str, str], upstream: respx.MockRouter
    ) -> None:
        """OpenAI's 404 (the call already ended) is a 404 call_not_found; the record goes."""
        upstream.routes["hangup"].mock(return_value=httpx.Response(404, json={"error": {}}))
        await create_realtime(callers, keys["alice"])
        response = await callers.post(REALTIME_HANGUP, headers=auth(keys["alice"]))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "call_not_found"
        upstream.routes["hangup"].mock(return_value=httpx.Response(200, json={}))
        again = await callers.post(REALTIME_HANGUP, headers=auth(keys["alice"]))
        assert again.status_code == 404
        assert upstream.routes["hangup"].call_count == 1

    async def test_upstream_failure_is_502(
        self, callers: httpx.AsyncClient, keys: dict[str, str], upstream: respx.MockRouter
    ) -> None:
        """OpenAI failing the hang-up: 502, and the call stays the caller's to retry."""
        upstream.routes["hangup"].mock(return_value=httpx.Response(503))
        await create_realtime(callers, keys["alice"])
        response = await callers.post(REALTIME_HANGUP, headers=auth(keys["alice"]))
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "upstream_server_error"
        upstream.routes["hangup"].mock(return_value=httpx.Response(200, json={}))
        retried = await callers.post(REALTIME_HANGUP, headers=auth(keys["alice"]))
        assert retried.status_code == 200


@pytest.fixture(name="redis")
def fixture_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


class TestSharedStore:
    """With Redis, the record is shared: any replica answers the creator's hang-up."""

    async def test_hang_up_on_another_replica(
        self,
        client_for: ClientFor,
        make_settings: MakeSettings,
        keys: dict[str, str],
        redis: RedisServer,
        upstream: respx.MockRouter,
    ) -> None:
        """Created on replica A, hung up on replica B (same Redis); Bob still gets 404."""
        settings: dict[str, Any] = {
            "auth_mode": "api_key",
            "auth_api_keys": keys["entries"],
            "redis_url": redis.url,
            "redis_timeout_seconds": 2.0,
        }
        replica_a = await client_for(make_settings(**settings))
        replica_b = await client_for(make_settings(**settings))
        await create_realtime(replica_a, keys["alice"])
        refused = await replica_b.post(REALTIME_HANGUP, headers=auth(keys["bob"]))
        assert refused.status_code == 404
        response = await replica_b.post(REALTIME_HANGUP, headers=auth(keys["alice"]))
        assert response.status_code == 200, response.text

    async def test_store_down_is_503(
        self,
        client_for: ClientFor,
        make_settings: MakeSettings,
        keys: dict[str, str],
        redis: RedisServer,
    ) -> None:
        """Redis unreachable at hang-up: 503 with Retry-After, never a 500."""
        client = await client_for(
            make_settings(auth_mode="api_key", auth_api_keys=keys["entries"], redis_url=redis.url)
        )
        redis.stop()
        response = await client.post(REALTIME_HANGUP, headers=auth(keys["alice"]))
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"

    async def test_call_created_while_store_down_still_answers(
        self,
        client_for: ClientFor,
        make_settings: MakeSettings,
        keys: dict[str, str],
        redis: RedisServer,
    ) -> None:
        """Redis down at creation: the call (already billed) is answered, and its record is
        written once Redis is back, so the caller's hang-up then works."""
        client = await client_for(
            make_settings(
                auth_mode="api_key",
                auth_api_keys=keys["entries"],
                redis_url=redis.url,
                redis_timeout_seconds=2.0,
                calls_lease_seconds=1,
            )
        )
        redis.stop()
        with captured_logs() as logs:
            await create_realtime(client, keys["alice"])
        assert [line["call_id"] for line in logs if line["event"] == "call_record_failed"] == [
            CALL_ID
        ]
        redis.start()
        with redis.client() as admin:  # the keeper writes it on its next pass (lease / 3)
            async with asyncio.timeout(30):  # only a hang guard
                while not admin.exists(RECORD_KEY):
                    await asyncio.sleep(0.05)
        response = await client.post(REALTIME_HANGUP, headers=auth(keys["alice"]))
        assert response.status_code == 200, response.text


class TestWithoutRedis:
    def test_several_workers_without_redis_are_refused(self, make_settings: MakeSettings) -> None:
        """WORKERS>1 and no REDIS_URL: start-up stops, naming both (hang-ups would miss)."""
        with pytest.raises(ValidationError) as refused:
            make_settings(workers=2)
        message = describe(refused.value)
        assert "WORKERS=2 needs REDIS_URL" in message
        assert "hang-up" in message
