"""The official `openai` SDK as a client of the service: only base_url changes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import httpx2
import openai
import pytest
import respx
from asgi_lifespan import LifespanManager

from service.api import create_app
from tests.conftest import CLIENT_SECRET, MakeSettings, sent_body

pytestmark = pytest.mark.anyio


@pytest.fixture(name="sdk")
async def fixture_sdk(
    make_settings: MakeSettings, upstream: respx.MockRouter
) -> AsyncIterator[openai.AsyncOpenAI]:
    """An AsyncOpenAI client whose base_url is this service (allowed voices: alloy, ash)."""
    settings = make_settings(policy={"allowed_voices": "alloy,ash"})
    app = create_app(settings, transport=httpx.MockTransport(upstream.async_handler))
    async with LifespanManager(app) as manager:
        http_client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=manager.app))
        client = openai.AsyncOpenAI(
            base_url="http://proxy.test/v1",
            api_key="caller-key",
            http_client=http_client,
            max_retries=0,
        )
        yield client
        await client.close()


class TestOfficialSdk:
    """Both endpoints through the SDK, and its typed errors."""

    async def test_ga_client_secrets_create(
        self, sdk: openai.AsyncOpenAI, upstream: respx.MockRouter
    ) -> None:
        """`client.realtime.client_secrets.create` mints through the GA endpoint."""
        secret = await sdk.realtime.client_secrets.create(
            session={
                "type": "realtime",
                "model": "gpt-realtime",
                "audio": {"output": {"voice": "ash"}},
            },
            expires_after={"anchor": "created_at", "seconds": 300},
        )
        assert secret.value == CLIENT_SECRET
        assert secret.expires_at == 1_900_000_000
        assert sent_body(upstream)["expires_after"]["seconds"] == 300

    async def test_beta_sessions_create(self, sdk: openai.AsyncOpenAI) -> None:
        """`client.beta.realtime.sessions.create` mints through the beta endpoint."""
        session = await sdk.beta.realtime.sessions.create(model="gpt-realtime", voice="ash")
        assert session.client_secret.value == CLIENT_SECRET
        assert session.voice == "ash"

    async def test_policy_error_is_permission_denied(self, sdk: openai.AsyncOpenAI) -> None:
        """A forbidden voice raises the SDK's PermissionDeniedError with our message."""
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await sdk.realtime.client_secrets.create(
                session={"type": "realtime", "audio": {"output": {"voice": "verse"}}}
            )
        assert caught.value.code == "policy_violation"
        assert caught.value.param == "session.audio.output.voice"

    async def test_invalid_input_is_bad_request(self, sdk: openai.AsyncOpenAI) -> None:
        """An out-of-range value raises the SDK's BadRequestError naming the field."""
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk.beta.realtime.sessions.create(speed=3.0)
        assert caught.value.param == "speed"
