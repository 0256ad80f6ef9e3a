"""The built-in upstream emulator: answers like OpenAI's GA endpoint, as strictly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from emulator import create_emulator
from service.server.compose import build_app
from tests.conftest import MakeSettings, serving
from tests.contract import ga_errors
from tests.paths import CLIENT_SECRETS, SESSIONS

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": "Bearer sk-anything"}


@pytest.fixture(name="emulator")
async def fixture_emulator() -> AsyncIterator[httpx.AsyncClient]:
    """A client on the emulator alone."""
    transport = httpx.ASGITransport(app=create_emulator())
    async with httpx.AsyncClient(transport=transport, base_url="http://emu/v1") as client:
        yield client


class TestEmulator:
    """Direct calls to the emulator."""

    async def test_answer_matches_openai_response_schema(self, emulator: httpx.AsyncClient) -> None:
        """A valid request gets a fake `ek_` secret in OpenAI's response shape."""
        response = await emulator.post(
            "/realtime/client_secrets",
            headers=AUTH,
            json={
                "expires_after": {"anchor": "created_at", "seconds": 30},
                "session": {"type": "realtime", "audio": {"output": {"voice": "ash"}}},
            },
        )
        body = response.json()
        assert response.status_code == 200
        assert body["value"].startswith("ek_emulator_")
        assert body["session"]["audio"]["output"]["voice"] == "ash"
        assert not ga_errors(body, "RealtimeCreateClientSecretResponse")

    async def test_unknown_parameter_is_refused(self, emulator: httpx.AsyncClient) -> None:
        """Like the live API, an unknown parameter is a 400 naming it."""
        response = await emulator.post(
            "/realtime/client_secrets",
            headers=AUTH,
            json={"session": {"type": "realtime", "temperature": 1}},
        )
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "session.temperature"

    async def test_missing_key_is_401(self, emulator: httpx.AsyncClient) -> None:
        """Without an Authorization header the emulator refuses, as OpenAI does."""
        response = await emulator.post("/realtime/client_secrets", json={})
        assert response.status_code == 401


class TestEndToEnd:
    """The service minting against the in-process emulator (UPSTREAM_EMULATOR=true)."""

    async def test_mint_through_emulator(self, make_settings: MakeSettings) -> None:
        """No key, emulator on: a beta request is translated, validated and minted."""
        settings = make_settings(openai_api_key=None, upstream_emulator=True)
        app = build_app(settings)
        async with serving(app) as client:
            response = await client.post(
                SESSIONS,
                json={
                    "voice": "coral",
                    "input_audio_format": "g711_alaw",
                    "turn_detection": {"type": "semantic_vad", "eagerness": "high"},
                    "input_audio_transcription": {"model": "gpt-transcribe"},
                    "tools": None,
                    "modalities": ["text"],
                },
            )
        body = response.json()
        assert response.status_code == 200, body
        assert body["client_secret"]["value"].startswith("ek_emulator_")
        assert body["voice"] == "coral"
        assert body["input_audio_format"] == "g711_alaw"
        assert body["modalities"] == ["text"]
        assert body["turn_detection"]["type"] == "semantic_vad"


class TestEmulatorSessionKinds:
    """The emulator answers transcription and translation mints as the GA API does."""

    async def test_transcription_session(self, emulator: httpx.AsyncClient) -> None:
        """A transcription session is answered with its defaults, in OpenAI's response shape."""
        response = await emulator.post(
            "/realtime/client_secrets", headers=AUTH, json={"session": {"type": "transcription"}}
        )
        body = response.json()
        assert response.status_code == 200, body
        assert body["session"]["type"] == "transcription"
        assert not ga_errors(body, "RealtimeCreateClientSecretResponse")

    async def test_translation_session(self, emulator: httpx.AsyncClient) -> None:
        """A translation session is answered on its own path, in OpenAI's response shape."""
        response = await emulator.post(
            "/realtime/translations/client_secrets",
            headers=AUTH,
            json={"session": {"model": "gpt-realtime-translate"}},
        )
        body = response.json()
        assert response.status_code == 200, body
        assert body["session"]["model"] == "gpt-realtime-translate"
        assert not ga_errors(body, "RealtimeTranslationClientSecretCreateResponse")

    async def test_ga_only_fields_are_accepted(self, emulator: httpx.AsyncClient) -> None:
        """Fields newer than the beta Session (idle timeout, strength, reasoning) are valid."""
        response = await emulator.post(
            "/realtime/client_secrets",
            headers=AUTH,
            json={
                "session": {
                    "type": "realtime",
                    "reasoning": {"effort": "low"},
                    "audio": {
                        "input": {
                            "noise_reduction": {"type": "near_field", "strength": 0.4},
                            "turn_detection": {"type": "server_vad", "idle_timeout_ms": 8000},
                        }
                    },
                }
            },
        )
        assert response.status_code == 200, response.text
        assert response.json()["session"]["reasoning"] == {"effort": "low"}


class TestRoundTripThroughTheEmulator:
    """Whatever the service returns as `session` is accepted back as a request."""

    @pytest.mark.parametrize(
        "session",
        [
            {"type": "realtime"},
            {"type": "realtime", "audio": {"output": {"voice": "marin"}}, "truncation": "auto"},
            {"type": "transcription"},
        ],
    )
    async def test_returned_session_mints_again(
        self, make_settings: MakeSettings, session: dict[str, object]
    ) -> None:
        """The emulator's full answer (defaults and nulls included) is a valid request."""
        settings = make_settings(upstream_emulator=True, openai_api_key=None)
        async with serving(build_app(settings)) as client:
            first = await client.post(CLIENT_SECRETS, json={"session": session})
            assert first.status_code == 200, first.text
            again = await client.post(CLIENT_SECRETS, json={"session": first.json()["session"]})
            assert again.status_code == 200, again.text
