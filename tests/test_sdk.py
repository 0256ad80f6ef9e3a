"""The official `openai` SDK as a client of the service: only base_url changes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import httpx2
import openai
import pytest
import respx

from service.api import create_app
from tests.conftest import CLIENT_SECRET, MakeSettings, running, sent_body

pytestmark = pytest.mark.anyio


@pytest.fixture(name="sdk")
async def fixture_sdk(
    make_settings: MakeSettings, upstream: respx.MockRouter
) -> AsyncIterator[openai.AsyncOpenAI]:
    """An AsyncOpenAI client whose base_url is this service (allowed voices: alloy, ash)."""
    settings = make_settings(policy={"allowed_voices": "alloy,ash"})
    app = create_app(settings, transport=httpx.MockTransport(upstream.async_handler))
    async with running(app) as manager:
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
                "model": "gpt-realtime-2",
                "audio": {"output": {"voice": "ash"}},
            },
            expires_after={"anchor": "created_at", "seconds": 300},
        )
        assert secret.value == CLIENT_SECRET
        assert secret.expires_at == 1_900_000_000
        assert sent_body(upstream)["expires_after"]["seconds"] == 300

    async def test_beta_sessions_create(self, sdk: openai.AsyncOpenAI) -> None:
        """`client.beta.realtime.sessions.create` mints through the beta endpoint."""
        session = await sdk.beta.realtime.sessions.create(voice="ash")
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

    async def test_ga_transcription_client_secret(
        self, sdk: openai.AsyncOpenAI, upstream: respx.MockRouter
    ) -> None:
        """`client_secrets.create` with a transcription session mints a transcription token."""
        secret = await sdk.realtime.client_secrets.create(
            session={
                "type": "transcription",
                "audio": {"input": {"transcription": {"model": "gpt-live-transcribe"}}},
            }
        )
        assert secret.value == CLIENT_SECRET
        assert secret.session.type == "transcription"
        assert sent_body(upstream)["session"]["type"] == "transcription"

    async def test_beta_transcription_sessions_create(
        self, sdk: openai.AsyncOpenAI, upstream: respx.MockRouter
    ) -> None:
        """`client.beta.realtime.transcription_sessions.create` mints through the beta door.

        No model is named: the beta SDK only knows models OpenAI retires on
        2027-02-26, so the policy's default transcription model is used.
        """
        session = await sdk.beta.realtime.transcription_sessions.create(
            input_audio_format="pcm16",
            input_audio_transcription={"language": "en"},
        )
        assert session.client_secret.value == CLIENT_SECRET
        sent = sent_body(upstream)["session"]
        assert sent["type"] == "transcription"
        assert sent["audio"]["input"]["transcription"]["model"] == "gpt-transcribe"

    async def test_translation_client_secrets_create(
        self, sdk: openai.AsyncOpenAI, upstream: respx.MockRouter
    ) -> None:
        """`client.realtime.translations.client_secrets.create` mints a translation token."""
        secret = await sdk.realtime.translations.client_secrets.create(
            session={"model": "gpt-realtime-translate", "audio": {"output": {"language": "es"}}}
        )
        assert secret.value == CLIENT_SECRET
        assert secret.session.audio.output is not None
        assert secret.session.audio.output.language == "es"
        assert sent_body(upstream, "translation")["session"]["model"] == "gpt-realtime-translate"

    async def test_sdk_model_dump_round_trips(self, sdk: openai.AsyncOpenAI) -> None:
        """The SDK's `session.model_dump()` of an answer, nulls included, mints again."""
        first = await sdk.realtime.client_secrets.create(
            session={
                "type": "realtime",
                "audio": {
                    "input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 6000}},
                    "output": {"voice": "ash"},
                },
                "truncation": "auto",
                "tools": [],
            }
        )
        again = await sdk.realtime.client_secrets.create(
            session=first.session.model_dump()  # type: ignore[arg-type]  # a dict with nulls
        )
        assert again.value == CLIENT_SECRET

    async def test_invalid_input_is_bad_request(self, sdk: openai.AsyncOpenAI) -> None:
        """An out-of-range value raises the SDK's BadRequestError naming the field."""
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk.beta.realtime.sessions.create(speed=3.0)
        assert caught.value.param == "speed"
