"""Transcription and translation tokens: the three doors that mint them, and round trips."""

from __future__ import annotations

import httpx
import pytest
import respx

from tests.conftest import CLIENT_SECRET, ClientFor, MakeSettings, sent_body
from tests.contract import ga_errors
from tests.paths import CLIENT_SECRETS, TRANSCRIPTION_SESSIONS, TRANSLATION_CLIENT_SECRETS

pytestmark = pytest.mark.anyio
TRANSCRIPTION = {
    "type": "transcription",
    "include": ["item.input_audio_transcription.logprobs"],
    "audio": {
        "input": {
            "format": {"type": "audio/pcmu"},
            "noise_reduction": {"type": "near_field", "strength": 0.7},
            "transcription": {"model": "gpt-live-transcribe", "language": "en"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
        }
    },
}


class TestGaTranscription:
    """POST /v1/realtime/client_secrets with `session.type: "transcription"`."""

    async def test_full_session_is_forwarded(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """Every transcription field the policy allows reaches OpenAI unchanged."""
        response = await client.post(CLIENT_SECRETS, json={"session": TRANSCRIPTION})
        assert response.status_code == 200, response.text
        assert sent_body(upstream)["session"] == TRANSCRIPTION
        assert response.json()["session"]["type"] == "transcription"

    async def test_returned_session_is_accepted_back(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """The session the service returned mints again when sent back as a request."""
        first = (await client.post(CLIENT_SECRETS, json={"session": TRANSCRIPTION})).json()
        again = await client.post(CLIENT_SECRETS, json={"session": first["session"]})
        assert again.status_code == 200, again.text
        assert sent_body(upstream)["session"] == TRANSCRIPTION


class TestBetaTranscriptionSessions:
    """POST /v1/realtime/transcription_sessions: the beta shape, minted as GA."""

    async def test_beta_shape_is_translated(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """Beta fields become the GA transcription session; the answer is beta-shaped."""
        response = await client.post(
            TRANSCRIPTION_SESSIONS,
            json={
                "input_audio_format": "g711_alaw",
                "input_audio_transcription": {"model": "gpt-transcribe", "prompt": "Acme"},
                "turn_detection": {"type": "server_vad", "threshold": 0.6},
                "input_audio_noise_reduction": {"type": "far_field"},
                "include": ["item.input_audio_transcription.logprobs"],
                "client_secret": {"expires_at": {"anchor": "created_at", "seconds": 90}},
            },
        )
        assert response.status_code == 200, response.text
        assert sent_body(upstream) == {
            "expires_after": {"anchor": "created_at", "seconds": 90},
            "session": {
                "type": "transcription",
                "include": ["item.input_audio_transcription.logprobs"],
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcma"},
                        "noise_reduction": {"type": "far_field"},
                        "transcription": {"model": "gpt-transcribe", "prompt": "Acme"},
                        "turn_detection": {"type": "server_vad", "threshold": 0.6},
                    }
                },
            },
        }
        body = response.json()
        assert body["client_secret"]["value"] == CLIENT_SECRET
        assert body["input_audio_format"] == "g711_alaw"
        assert body["turn_detection"] == {"type": "server_vad", "threshold": 0.6}

    async def test_other_vad_fields_are_a_400(self, client: httpx.AsyncClient) -> None:
        """A server-VAD field on semantic VAD is a 400: GA cannot carry it (found by fuzzing)."""
        response = await client.post(
            TRANSCRIPTION_SESSIONS,
            json={"turn_detection": {"type": "semantic_vad", "threshold": 0}},
        )
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "turn_detection.threshold"

    async def test_dry_run_mints_nothing(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """A dry run shows the beta view of the effective session and calls nobody."""
        response = await client.post(f"{TRANSCRIPTION_SESSIONS}?dry_run=true", json={})
        assert response.status_code == 200, response.text
        assert response.json()["session"]["input_audio_transcription"] == {
            "model": "gpt-transcribe"
        }
        assert not upstream.routes["mint"].called


class TestTranslationClientSecrets:
    """POST /v1/realtime/translations/client_secrets."""

    async def test_translation_is_minted_on_the_translation_endpoint(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """A translation session goes to OpenAI's translation endpoint, schema-valid."""
        session = {
            "model": "gpt-realtime-translate",
            "audio": {
                "input": {
                    "transcription": {"model": "gpt-transcribe"},
                    "noise_reduction": {"type": "near_field"},
                },
                "output": {"language": "es"},
            },
        }
        response = await client.post(
            TRANSLATION_CLIENT_SECRETS,
            json={"session": session, "expires_after": {"anchor": "created_at", "seconds": 60}},
        )
        assert response.status_code == 200, response.text
        assert sent_body(upstream, "translation") == {
            "expires_after": {"anchor": "created_at", "seconds": 60},
            "session": session,
        }
        answer = response.json()
        assert not ga_errors(answer, "RealtimeTranslationClientSecretCreateResponse")

    async def test_returned_session_is_accepted_back(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """The translation session returned (with id, type, expires_at) mints again."""
        session = {"model": "gpt-realtime-translate", "audio": {"output": {"language": "fr"}}}
        first = (await client.post(TRANSLATION_CLIENT_SECRETS, json={"session": session})).json()
        again = await client.post(TRANSLATION_CLIENT_SECRETS, json={"session": first["session"]})
        assert again.status_code == 200, again.text
        assert sent_body(upstream, "translation")["session"] == session

    async def test_dry_run_mints_nothing(
        self, client: httpx.AsyncClient, upstream: respx.MockRouter
    ) -> None:
        """A translation dry run shows the upstream body and its decisions, and calls nobody."""
        response = await client.post(
            f"{TRANSLATION_CLIENT_SECRETS}?dry_run=true",
            json={"session": {"model": "gpt-realtime-translate"}},
        )
        assert response.status_code == 200, response.text
        assert response.json()["session"] == {"model": "gpt-realtime-translate"}
        assert not upstream.routes["translation"].called

    async def test_model_is_required(self, client: httpx.AsyncClient) -> None:
        """A translation session without a model is a 400 naming it, as OpenAI answers."""
        response = await client.post(TRANSLATION_CLIENT_SECRETS, json={"session": {}})
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "session.model"

    async def test_counted_like_every_mint(
        self, client_for: ClientFor, make_settings: MakeSettings
    ) -> None:
        """Translation mints count against the caller's rate limit like any other mint."""
        client = await client_for(make_settings(rate_limit_per_identity="1/minute"))
        body = {"session": {"model": "gpt-realtime-translate"}}
        assert (await client.post(TRANSLATION_CLIENT_SECRETS, json=body)).status_code == 200
        assert (await client.post(CLIENT_SECRETS, json={})).status_code == 429
